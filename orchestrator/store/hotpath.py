"""The statements the scheduler runs on every poll (and the intake on every file), as SQL for the driver.

With 10,000 running jobs the daemon claims, polls and commits ~170 jobs a second, and a burst of
dropped files asks for a thousand inserts a second; a Core statement
through SQLAlchemy's execution layer cost 0.1 to 0.4 ms of CPU, more than the SQLite work it asks for,
and the HTTP poll itself is ~0.6 ms. So these few statements are plain SQL on the writer's
``sqlite3`` connection, with values converted here exactly as the schema's types convert them
(:func:`~orchestrator.store.schema.db_time`, :func:`~orchestrator.store.schema.db_loss`; tests compare
both ways). Every other statement stays a Core statement in :mod:`orchestrator.store.sql`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from orchestrator.jobs import REMOTE_ACTIVE, TERMINAL, Job, JobState, Snapshot
from orchestrator.store.schema import Loss, UtcDateTime, db_loss, db_time, jobs

_COLUMNS = tuple(column.name for column in jobs.c)
_RETURNING = f"RETURNING {', '.join(_COLUMNS)}"


def _states(states: Iterable[JobState]) -> str:
    return ", ".join(f"'{state.value}'" for state in states)


_DUE = _states((JobState.SUBMITTING, JobState.RUNNING, JobState.CANCELLING))
_UNFINISHED = _states(s for s in JobState if s not in TERMINAL)
_QUEUED = _states((JobState.QUEUED,))
_FREE = "(lease_owner IS NULL OR lease_expires_at < :now)"

CLAIM_ACTIVE = f"""
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :expires
WHERE id IN (
    SELECT id FROM jobs WHERE state IN ({_DUE}) AND next_check_at <= :now AND {_FREE}
    ORDER BY next_check_at LIMIT :limit
) {_RETURNING}"""
QUEUED_DUE = f"SELECT 1 FROM jobs WHERE state = {_QUEUED} AND next_check_at <= :now AND {_FREE} LIMIT 1"
COUNT_REMOTE_ACTIVE = f"SELECT COUNT(*) FROM jobs WHERE state IN ({_states(REMOTE_ACTIVE)})"
CLAIM_QUEUED = f"""
UPDATE jobs SET lease_owner = :owner, lease_expires_at = :expires
WHERE id IN (
    SELECT id FROM jobs WHERE state = {_QUEUED} AND next_check_at <= :now AND {_FREE}
    ORDER BY priority DESC, created_at, id LIMIT :limit
) {_RETURNING}"""
# The states are listed (``IN``), not excluded (``NOT IN``): that lets SQLite read the minimum from
# ``ix_jobs_due`` per state (20 µs with 10,000 running jobs, 64 of them leased) instead of scanning
# it (1.5 ms).
NEXT_DUE = f"SELECT MIN(next_check_at) FROM jobs WHERE state IN ({_UNFINISHED}) AND lease_owner IS NULL"
INSERT_SNAPSHOTS = (
    "INSERT INTO snapshots (job_id, step, epoch, mean_loss, compute_time, recorded_at)"
    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
INSERT_EVENT = "INSERT INTO events (job_id, at, from_state, to_state, detail) VALUES (?, ?, ?, ?, ?)"
JOB_BY_KEY = "SELECT id FROM jobs WHERE job_key = ?"
JOB_BY_TUNED_MODEL = "SELECT id FROM jobs WHERE tuned_model_id = ?"
INSERT_SPEC = (
    "INSERT INTO job_specs (job_id, body, example_count, file_sha256, file_bytes) VALUES (?, ?, ?, ?, ?)"
)


def insert_job(values: Mapping[str, Any]) -> str:
    """The INSERT of a ``jobs`` row with ``values``' columns (the others take their defaults)."""
    return _insert_job(tuple(values))


@lru_cache(maxsize=8)
def _insert_job(columns: tuple[str, ...]) -> str:
    unknown = set(columns) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"no column {sorted(unknown)} in jobs")
    return (
        f"INSERT INTO jobs ({', '.join(columns)}) VALUES ({', '.join(f':{name}' for name in columns)}) {_RETURNING}"
    )


@lru_cache(maxsize=256)
def step_update(columns: tuple[str, ...], soon_if_cancel_requested: bool) -> str:
    """The compare-and-set UPDATE of a step that sets ``columns``: one text per distinct set.

    With ``soon_if_cancel_requested`` the next check is ``:w_now`` when a user's cancel arrived
    while the step was under way: the flag is set by another connection, so only the UPDATE itself
    can see it.
    """
    assignments = []
    for name in columns:
        if name not in _COLUMNS:
            raise ValueError(f"no column {name!r} in jobs")
        value = f":v_{name}"
        if name == "next_check_at" and soon_if_cancel_requested:
            value = f"CASE WHEN cancel_requested THEN :w_now ELSE {value} END"
        assignments.append(f"{name} = {value}")
    return (
        f"UPDATE jobs SET {', '.join(assignments)}"
        f" WHERE id = :w_id AND state = :w_state AND lease_owner = :w_owner {_RETURNING}"
    )


def driver_value(value: Any) -> Any:
    """A Python value as the schema's types store it: timestamps as UTC text, NaN as ``'NaN'``."""
    if isinstance(value, datetime):
        return db_time(value)
    if isinstance(value, float):
        return db_loss(value)
    return value


def driver_parameters(values: Mapping[str, Any]) -> dict[str, Any]:
    """Named parameters for the driver, converted by :func:`driver_value`."""
    return {name: driver_value(value) for name, value in values.items()}


def parse_time(text: str | None) -> datetime | None:
    """A stored timestamp (naive UTC text) as an aware datetime; the reverse of ``db_time``."""
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=UTC)


def _parse_loss(value: float | str | None) -> float | None:
    return None if value is None else float(value)  # 'NaN' → nan


def _column_reader(column: Any) -> Callable[[Any], Any]:
    if isinstance(column.type, UtcDateTime):
        return parse_time
    if isinstance(column.type, Loss):
        return _parse_loss
    if column.name == "state":
        return JobState
    if column.name == "cancel_requested":
        return bool
    return _identity


def _identity(value: Any) -> Any:
    return value


_READERS = tuple(_column_reader(column) for column in jobs.c)


def job_from_driver_row(row: tuple[Any, ...]) -> Job:
    """A :class:`Job` from a ``RETURNING`` row of the statements above (columns in table order)."""
    return Job(*(read(value) for read, value in zip(_READERS, row, strict=True)))


def fetch_jobs(driver: sqlite3.Connection, sql: str, parameters: Mapping[str, Any]) -> list[Job]:
    """Run one of the ``RETURNING`` statements above and read its rows as jobs."""
    return [job_from_driver_row(row) for row in driver.execute(sql, driver_parameters(parameters))]


def snapshot_rows(job_id: str, snapshots: Iterable[Snapshot], recorded_at: datetime) -> list[tuple[Any, ...]]:
    """The ``snapshots`` rows of one step, for :data:`INSERT_SNAPSHOTS`."""
    at = db_time(recorded_at)
    return [(job_id, s.step, s.epoch, db_loss(s.mean_loss), s.compute_time, at) for s in snapshots]

