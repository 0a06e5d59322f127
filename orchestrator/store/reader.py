"""StatusReader: the read side of the status database, for the CLI and status pages.

It opens the file read-only and keeps each read to one short transaction, so a person running
``orchestrator status`` in a loop never stalls the daemon.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, cast, func, inspect, or_, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.errors import OrchestratorError
from orchestrator.jobs import TERMINAL, Job, JobState, Snapshot
from orchestrator.store.daemons import DaemonRecord
from orchestrator.store.rejections import Rejection, rejection_from_row
from orchestrator.store.schema import (
    NOTIFICATION_STATES,
    daemons,
    events,
    job_specs,
    jobs,
    notification_attempts,
    notifications,
    rejections,
    snapshots,
)
from orchestrator.store.sql import job_from_row

#: An ambiguous id prefix lists at most this many of its matches.
MAX_MATCHES_SHOWN = 10
#: Where each service's stored body keeps its hyper-parameters: the ``tunedModels.create`` request, or
#: the Vertex contract's ``{"tuningJob": …}``.
_HYPERPARAMETER_PATHS = (("tuningTask", "hyperparameters"), ("tuningJob", "supervisedTuningSpec", "hyperParameters"))


def _one_match(kind: str, ref: str, matches: list[str]) -> None:
    """Raise unless exactly one row matched ``ref``; an ambiguous prefix names its matches."""
    if not matches:
        raise OrchestratorError(f"no {kind} matches {ref!r}")
    if len(matches) > 1:
        shown = matches[:MAX_MATCHES_SHOWN]
        more = " and more" if len(matches) > MAX_MATCHES_SHOWN else ""
        raise OrchestratorError(f"{ref!r} matches several {kind}s; give more of the id: {', '.join(shown)}{more}")


@dataclass(frozen=True, slots=True)
class Event:
    """One row of a job's timeline."""

    at: str
    from_state: str | None
    to_state: str
    detail: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class NotificationAttempt:
    """One try at delivering a webhook."""

    at: str
    outcome: str
    status_code: int | None
    error: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class Notification:
    """A webhook announcing one of the job's state changes, and how its delivery went."""

    id: str
    type: str
    state: str
    created_at: str
    finished_at: str | None
    next_attempt_at: str | None
    last_error: str | None
    attempts: tuple[NotificationAttempt, ...]


@dataclass(frozen=True, slots=True)
class JobDetail:
    """Everything ``orchestrator show`` prints about one job."""

    job: Job
    example_count: int | None  #: in the job file; None for a dataset outside it (a gs:// URI)
    file_bytes: int
    hyperparameters: Mapping[str, Any]
    events: tuple[Event, ...]
    snapshots: tuple[Snapshot, ...]
    retried_as: str | None = None  #: the job that is the next attempt of this one (``orchestrator retry``)
    notifications: tuple[Notification, ...] = ()


class StatusReader:
    """Read-only queries over jobs, their events and snapshots."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._postgresql = engine.dialect.name == "postgresql"

    def _label(self, key: str) -> ColumnElement[Any]:
        """The value of label ``key`` (``labels`` is a JSON object stored as text, on either database)."""
        if self._postgresql:
            text_value: ColumnElement[Any] = cast(jobs.c.labels, JSONB)[key].astext
            return text_value
        value: ColumnElement[Any] = func.json_extract(jobs.c.labels, f'$."{key}"')
        return value

    def _hyperparameters(self) -> ColumnElement[Any]:
        """The first of :data:`_HYPERPARAMETER_PATHS` present in the stored body, as JSON text extracted by
        the database (NULL when neither is): SQLite's ``json_extract``, PostgreSQL's ``#>>``."""
        if self._postgresql:
            found = [cast(job_specs.c.body, JSONB)[path].astext for path in _HYPERPARAMETER_PATHS]
        else:
            found = [func.json_extract(job_specs.c.body, "$." + ".".join(path)) for path in _HYPERPARAMETER_PATHS]
        return func.coalesce(*found).label("hyperparameters")

    async def schema_revision(self) -> str | None:
        """The schema revision the migrations have reached; None before the first one is recorded."""
        async with self._engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
            if not {"jobs", "alembic_version"} <= tables:
                return None
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
        return str(versions[0]) if len(versions) == 1 else None

    async def list_jobs(
        self, states: Collection[JobState] = (), labels: Mapping[str, str] | None = None, limit: int = 1000
    ) -> list[Job]:
        """Jobs, newest first, optionally only in ``states`` and carrying every label in ``labels``."""
        query = select(jobs).order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit)
        if states:
            query = query.where(jobs.c.state.in_([s.value for s in states]))
        for key, value in (labels or {}).items():
            query = query.where(self._label(key) == value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [job_from_row(r) for r in rows]

    async def active_jobs(self, also: Collection[str] = (), labels: Mapping[str, str] | None = None) -> list[Job]:
        """Unfinished jobs (oldest first), plus the jobs whose ids are in ``also`` whatever their state.

        ``also`` is how a live view keeps showing the jobs it was following after they end.
        """
        unfinished = jobs.c.state.not_in([s.value for s in TERMINAL])
        query = select(jobs).where(or_(unfinished, jobs.c.id.in_(list(also))) if also else unfinished)
        for key, value in (labels or {}).items():
            query = query.where(self._label(key) == value)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query.order_by(jobs.c.created_at, jobs.c.id))).all()
        return [job_from_row(r) for r in rows]

    async def resolve(self, ref: str) -> Job:
        """The job named by an id, a unique id prefix, or a job key."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(jobs).where(or_(jobs.c.id.startswith(ref, autoescape=True), jobs.c.job_key == ref))
                    .order_by(jobs.c.id).limit(MAX_MATCHES_SHOWN + 1)
                )
            ).all()
        found = [job_from_row(r) for r in rows]
        _one_match("job", ref, [f"{j.id} ({j.display_name or j.tuned_model_id}, {j.state.value})" for j in found])
        return found[0]

    async def job_by_identity(self, job_key: str, tuned_model_id: str | None) -> Job | None:
        """The job already recorded with this idempotency key (or tuned-model id), if any.

        What the intake would call a duplicate, asked before a file is dropped (``submit``).
        """
        match = jobs.c.job_key == job_key
        if tuned_model_id is not None:
            match = or_(match, jobs.c.tuned_model_id == tuned_model_id)
        async with self._engine.connect() as conn:
            row = (await conn.execute(select(jobs).where(match).limit(1))).one_or_none()
        return None if row is None else job_from_row(row)

    async def detail(self, ref: str) -> JobDetail:
        """The full record of one job."""
        job = await self.resolve(ref)
        async with self._engine.connect() as conn:
            # The body can be 20 MB: the database picks the hyper-parameters out, so the event loop of
            # a status page never parses it.
            spec = (
                await conn.execute(
                    # Parsing the body here would hold the GIL, and so the status server's event loop,
                    # for most of a second.
                    select(job_specs.c.example_count, job_specs.c.file_bytes, self._hyperparameters()).where(
                        job_specs.c.job_id == job.id
                    )
                )
            ).one()
            event_rows = (
                await conn.execute(select(events).where(events.c.job_id == job.id).order_by(events.c.id))
            ).all()
            snapshot_rows = (
                await conn.execute(select(snapshots).where(snapshots.c.job_id == job.id).order_by(snapshots.c.step))
            ).all()
            retried_as = await conn.scalar(select(jobs.c.id).where(jobs.c.retry_of == job.id).limit(1))
            notification_rows = (
                await conn.execute(
                    select(notifications).where(notifications.c.job_id == job.id).order_by(notifications.c.created_at)
                )
            ).all()
            attempt_rows = (
                await conn.execute(
                    select(notification_attempts)
                    .where(notification_attempts.c.notification_id.in_([n.id for n in notification_rows]))
                    .order_by(notification_attempts.c.id)
                )
            ).all()
        return JobDetail(
            job=job,
            example_count=spec.example_count,
            file_bytes=spec.file_bytes,
            hyperparameters=_hyperparameters(spec.hyperparameters),
            events=tuple(
                Event(at=r.at.isoformat(), from_state=r.from_state, to_state=r.to_state, detail=json.loads(r.detail))
                for r in event_rows
            ),
            snapshots=tuple(
                Snapshot(step=r.step, epoch=r.epoch, mean_loss=r.mean_loss, compute_time=r.compute_time)
                for r in snapshot_rows
            ),
            retried_as=retried_as,
            notifications=tuple(_notification(n, attempt_rows) for n in notification_rows),
        )

    async def recent_losses(self, job_ids: Collection[str], points: int = 40) -> dict[str, list[float]]:
        """The last ``points`` losses of each job, oldest first: the dashboard's sparklines, in one query."""
        if not job_ids:
            return {}
        ranked = (
            select(snapshots.c.job_id, snapshots.c.step, snapshots.c.mean_loss,
                   func.row_number().over(partition_by=snapshots.c.job_id, order_by=snapshots.c.step.desc())
                   .label("rank"))
            .where(snapshots.c.job_id.in_(list(job_ids)))
            .subquery()
        )
        query = (select(ranked.c.job_id, ranked.c.mean_loss).where(ranked.c.rank <= points)
                 .order_by(ranked.c.job_id, ranked.c.step))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        found: dict[str, list[float]] = {}
        for job_id, loss in rows:
            found.setdefault(job_id, []).append(float(loss))
        return found

    async def count_notifications(self) -> dict[str, int]:
        """How many webhook notifications are pending, delivered and given up."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(select(notifications.c.state, func.count()).group_by(notifications.c.state))
            ).all()
        counts = dict.fromkeys(NOTIFICATION_STATES, 0)
        counts.update({state: int(count) for state, count in rows})
        return counts

    async def daemons(self, limit: int = 100) -> list[DaemonRecord]:
        """The daemons that use this database (live, stopped and dead), latest heartbeat first,
        each with the number of jobs it holds a lease on now (the steps it is taking)."""
        held = select(func.count()).select_from(jobs).where(jobs.c.lease_owner == daemons.c.id).scalar_subquery()
        query = select(*daemons.c, held.label("jobs_held")).order_by(daemons.c.heartbeat_at.desc()).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [DaemonRecord(**row._mapping) for row in rows]

    async def count_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state."""
        async with self._engine.connect() as conn:
            rows = (await conn.execute(select(jobs.c.state, func.count()).group_by(jobs.c.state))).all()
        return {JobState(state): int(count) for state, count in rows}

    async def list_rejections(self, include_resolved: bool = False, limit: int = 200) -> list[Rejection]:
        """Rejected files, newest first; those resolved by a resubmission only when asked for."""
        query = select(rejections).order_by(rejections.c.rejected_at.desc(), rejections.c.id).limit(limit)
        if not include_resolved:
            query = query.where(rejections.c.resolved_at.is_(None))
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [rejection_from_row(r) for r in rows]

    async def rejection(self, ref: str) -> Rejection:
        """The rejection named by an id or a unique id prefix."""
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(rejections).where(rejections.c.id.startswith(ref, autoescape=True))
                    .order_by(rejections.c.id).limit(MAX_MATCHES_SHOWN + 1)
                )
            ).all()
        found = [rejection_from_row(r) for r in rows]
        _one_match("rejection", ref, [f"{r.id} ({r.file})" for r in found])
        return found[0]


def _hyperparameters(extracted: str | None) -> Mapping[str, Any]:
    """The hyper-parameters the query extracted, in either service's shape (empty when absent)."""
    value = json.loads(extracted) if extracted else None
    return value if isinstance(value, Mapping) else {}


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())


def _notification(row: Any, attempt_rows: Any) -> Notification:
    return Notification(
        id=row.id, type=row.type, state=row.state, created_at=row.created_at.isoformat(),
        finished_at=_iso(row.finished_at), next_attempt_at=_iso(row.next_attempt_at), last_error=row.last_error,
        attempts=tuple(
            NotificationAttempt(at=a.at.isoformat(), outcome=a.outcome, status_code=a.status_code, error=a.error,
                                seconds=a.seconds)
            for a in attempt_rows if a.notification_id == row.id
        ),
    )
