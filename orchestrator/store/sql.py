"""SqlStore: the daemon's side of the status database, the one writer.

The rules it keeps (DESIGN.md, "SQLite"): WAL so readers never block the writer; synchronous=FULL so
a committed tuned-model id survives a power cut; one writer connection, used from one thread
(:class:`~orchestrator.store.connection.WriterThread`); ``BEGIN IMMEDIATE`` so a write transaction
takes the lock up front instead of failing half-way; a busy timeout; and no transaction is ever held
across an HTTP call (each method is one short transaction). The statements run per poll and per file
are plain SQL (:mod:`orchestrator.store.hotpath`); the rest are SQLAlchemy Core.

Every job write is a compare-and-set on (id, state, lease owner): a stale actor's write matches no
row and raises :class:`StaleWrite` instead of being applied.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Row, cast, func, insert, select, update
from sqlalchemy import literal as sql_literal
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from orchestrator.config import DatabaseSettings
from orchestrator.errors import OrchestratorError, StaleWrite
from orchestrator.jobs import TERMINAL, Job, JobState, Snapshot, can_transition, retry_attempt, retry_identity
from orchestrator.logs import scrub
from orchestrator.store import hotpath
from orchestrator.store.connection import WriterThread
from orchestrator.store.daemons import DaemonInfo
from orchestrator.store.outbox import INSERT_NOTIFICATION, Announced, notification_row
from orchestrator.store.protocol import (
    NO_CHANGES,
    DeliveryAttempt,
    DueNotification,
    DuplicateJob,
    JobChanges,
    NewJob,
    PruneResult,
    StoreObserver,
)
from orchestrator.store.rejections import NewRejection, Rejection, new_rejection_id, rejection_from_row
from orchestrator.store.schema import (
    api_pauses,
    daemons,
    db_time,
    events,
    job_specs,
    jobs,
    meta,
    notification_attempts,
    notifications,
    rejections,
    snapshots,
)


def job_from_row(row: Row[Any] | Mapping[str, Any]) -> Job:
    """A :class:`Job` from a ``jobs`` row."""
    values = dict(row._mapping) if isinstance(row, Row) else dict(row)
    values["state"] = JobState(values["state"])
    values["cancel_requested"] = bool(values["cancel_requested"])
    return Job(**values)


#: The states from which ``orchestrator retry`` starts a new attempt.
RETRYABLE: frozenset[JobState] = frozenset({JobState.FAILED, JobState.CANCELLED})


def new_job_id() -> str:
    """A short random id users can type (48 bits: collisions are negligible at millions of jobs)."""
    return secrets.token_hex(6)


@dataclass(slots=True)
class _PendingStep:
    """One ``commit_step`` waiting for the group commit."""

    job: Job
    owner: str
    now: datetime
    to: JobState | None
    detail: Mapping[str, Any] | None
    snapshots: Sequence[Snapshot]
    changes: dict[str, Any]
    soon_if_cancel_requested: bool
    done: asyncio.Future[Job]


def _fail(steps: Sequence[_PendingStep], exc: Exception | None = None) -> None:
    """Give waiting steps the error (cancel them when there is none: the writer itself was cancelled)."""
    for step in steps:
        if step.done.done():
            continue
        if exc is None:
            step.done.cancel()
        else:
            step.done.set_exception(exc)


#: ``[database] wal_checkpoint_bytes``' default.
DEFAULT_WAL_CHECKPOINT_BYTES = DatabaseSettings().wal_checkpoint_bytes


class Unobserved:
    """The observer of a store nobody watches (the CLI's)."""

    def committed(self) -> None:
        pass

    def claimed(self, now: datetime, jobs: Sequence[Job]) -> None:
        pass

    def snapshots_recorded(self, count: int) -> None:
        pass


class SqlStore:
    """The daemon's side of the database: the writer. ``open_store`` builds it after the migrations.

    A :class:`~orchestrator.store.protocol.JobStore`; ``observer`` hears of each commit, claim and
    recorded snapshots (the daemon's liveness stamp and metrics).
    """

    def __init__(
        self, path: Path, busy_timeout: float, observer: StoreObserver | None = None,
        announced: Announced | None = None, *, wal_checkpoint_bytes: int = DEFAULT_WAL_CHECKPOINT_BYTES,
    ) -> None:
        self._db = WriterThread(path, busy_timeout)
        self._wal = path.with_name(path.name + "-wal")
        self._wal_checkpoint_bytes = wal_checkpoint_bytes
        self._observer: StoreObserver = observer or Unobserved()
        #: The state changes that write a webhook notification in their own transaction.
        self._announced = announced or Announced()
        #: Steps waiting for the group commit, and the task that commits them (see ``commit_step``).
        self._pending_steps: list[_PendingStep] = []
        self._step_writer: asyncio.Task[None] | None = None

    async def dispose(self) -> None:
        """Finish the steps being committed, then close the connection."""
        if self._step_writer is not None:
            await asyncio.gather(self._step_writer, return_exceptions=True)
        await self._db.close()

    # -- installation -------------------------------------------------------------------------

    async def get_or_set_meta(self, key: str, default: str) -> str:
        """The value stored under ``key``, storing ``default`` first if there is none."""

        def work(conn: Connection) -> str:
            conn.execute(sqlite_insert(meta).values(key=key, value=default).on_conflict_do_nothing())
            return str(conn.scalar(select(meta.c.value).where(meta.c.key == key)))

        return await self._db.run(work)

    async def release_all_leases(self) -> int:
        """Forget every lease: called at start-up while we hold the daemon lock, so they are stale."""

        def work(conn: Connection) -> int:
            result = conn.execute(
                update(jobs).where(jobs.c.lease_owner.is_not(None)).values(lease_owner=None, lease_expires_at=None)
            )
            return int(result.rowcount or 0)

        return await self._db.run(work)

    async def heartbeat(self, daemon: DaemonInfo, now: datetime) -> None:
        """Record that ``daemon`` is alive (its row is written at the first heartbeat)."""
        await self._db.run(lambda conn: record_heartbeat(conn, daemon, now))

    async def daemon_stopped(self, daemon_id: str, now: datetime) -> None:
        """Record a clean stop of the daemon."""
        await self._db.run(lambda conn: record_daemon_stopped(conn, daemon_id, now))

    async def share_pause(self, api: str, until: datetime | None, by: str) -> datetime | None:
        """Raise the shared pause of ``api`` to ``until`` when given; the pause in force (None: never paused)."""
        return await self._db.run(lambda conn: share_pause(conn, api, until, by))

    # -- intake -------------------------------------------------------------------------------

    async def add_job(self, new: NewJob, now: datetime) -> Job:
        """Record a queued job, its spec and its first event in one transaction.

        Raises :class:`DuplicateJob` when the idempotency key or the tuned-model id is taken.
        """
        [result] = await self.add_jobs([new], now)
        if isinstance(result, DuplicateJob):
            raise result
        return result

    async def add_jobs(self, batch: Sequence[NewJob], now: datetime) -> list[Job | DuplicateJob]:
        """Record many jobs in one transaction (the intake's burst); a duplicate is refused alone.

        Each result is the recorded job or the :class:`DuplicateJob` that kept it out, in order; a
        duplicate of a job earlier in the same batch is caught like any other.
        """
        results = await self._db.run_on_driver(lambda driver: [_insert_job(driver, new, now) for new in batch])
        self._observer.committed()
        return results

    async def job_by_intake_id(self, intake_id: str) -> Job | None:
        """The job an intake claim recorded, if it got that far (for finishing a crashed intake)."""

        return await self._db.run(lambda conn: job_by_intake_id(conn, intake_id))

    async def add_rejection(self, new: NewRejection, now: datetime) -> Rejection:
        """Record one rejected file (see :meth:`add_rejections`)."""
        [rejection] = await self.add_rejections([new], now)
        return rejection

    async def add_rejections(self, batch: Sequence[NewRejection], now: datetime) -> list[Rejection]:
        """Record rejected files in one transaction; idempotent on the claim token (a crashed intake
        rejects a file again, and gets the row it made before).

        The intake calls this after writing each ``NAME.error.json`` and before moving the files into
        ``rejected/``: a file still in ``processing/`` whose claim has a row is moved to the row's
        ``rejected_file`` at the next start, so the rows and the files never disagree for long.
        """
        return await self._db.run(lambda conn: [add_rejection(conn, new, now) for new in batch])

    async def rejection_by_intake_id(self, intake_id: str) -> Rejection | None:
        """The rejection an intake claim recorded, if it got that far (for finishing a crashed intake)."""
        return await self._db.run(lambda conn: rejection_by_intake_id(conn, intake_id))

    # -- scheduler ----------------------------------------------------------------------------

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int, active_cap: int) -> list[Job]:
        """Lease up to ``limit`` jobs whose next check is due; queued ones only within ``active_cap``.

        ``active_cap`` is how many jobs may hold a remote tuning job once the claimed queued jobs are
        submitted: the active-job limit. Queued jobs are taken by priority, then age; counting the
        active jobs (a scan of 10,000 running rows) happens only when a queued job is due at all.
        A job leased by someone else is skipped until the lease expires. One transaction.
        """

        lease_to = {"now": now, "owner": owner, "expires": now + lease}

        def work(driver: sqlite3.Connection) -> list[Job]:
            claimed = hotpath.fetch_jobs(driver, hotpath.CLAIM_ACTIVE, {**lease_to, "limit": limit})
            room = limit - len(claimed)
            if room > 0 and driver.execute(hotpath.QUEUED_DUE, {"now": db_time(now)}).fetchone():
                room = min(room, active_cap - driver.execute(hotpath.COUNT_REMOTE_ACTIVE).fetchone()[0])
                if room > 0:
                    claimed += hotpath.fetch_jobs(driver, hotpath.CLAIM_QUEUED, {**lease_to, "limit": room})
            return claimed

        # Not fsync'ed: a lease matters only while this process lives (a restart forgets them all),
        # and the next durable commit writes it to disk anyway.
        claimed = await self._db.run_on_driver(work, durable=False)
        self._observer.committed()
        self._observer.claimed(now, claimed)
        return claimed

    async def next_due_at(self) -> datetime | None:
        """The earliest next check of any unfinished job not leased, to know how long the scheduler may sleep.

        A leased job is some step's: its own commit sets its next check (and wakes the scheduler). Were
        it counted, a step in flight (its row still showing the past check that made it due) would
        look like a due job the claim passed over, and the loop would sleep a whole idle tick past
        the next job that really falls due.
        """

        def work(driver: sqlite3.Connection) -> str | None:
            value: str | None = driver.execute(hotpath.NEXT_DUE).fetchone()[0]
            return value

        due = await self._db.run_on_driver(work)
        return hotpath.parse_time(due)

    async def request_body(self, job_id: str) -> dict[str, Any]:
        """The create request body recorded for the job."""
        return await self._db.run(lambda conn: request_body(conn, job_id))

    async def commit_step(
        self,
        job: Job,
        owner: str,
        now: datetime,
        changes: JobChanges = NO_CHANGES,
        *,
        to: JobState | None = None,
        detail: Mapping[str, Any] | None = None,
        snapshots_seen: Sequence[Snapshot] = (),
        release: bool = True,
        soon_if_cancel_requested: bool = False,
    ) -> Job:
        """Write the outcome of one step of ``job``: the one write primitive of the scheduler.

        Compare-and-set on (id, state, lease owner); optionally moves the state (with its event row),
        records snapshots idempotently (one row per job and step, first report wins), sets the
        ``changes``' columns, and releases the lease. All in one transaction. Texts are scrubbed of
        registered secrets on the way in, so no credential reaches the database (promise 7).

        ``soon_if_cancel_requested`` makes the row due at once when a user's cancel arrived while
        this step was under way (see ``_step_update``); without it the step's own next poll time
        would delay the cancel.
        """
        columns = step_columns(job, now, changes, to=to, release=release)
        step = _PendingStep(job, owner, now, to, detail, snapshots_seen, columns,
                            soon_if_cancel_requested and columns.get("next_check_at") is not None,
                            asyncio.get_running_loop().create_future())
        self._pending_steps.append(step)
        if self._step_writer is None or self._step_writer.done():
            self._step_writer = asyncio.create_task(self._write_steps())
        committed = await step.done
        self._observer.committed()
        if snapshots_seen:
            self._observer.snapshots_recorded(len(snapshots_seen))
        return committed

    async def _write_steps(self) -> None:
        """Group commit: every step that arrived meanwhile goes into one transaction.

        Steps that end together (10,000 running jobs: ~170 a second) share the transaction's fixed
        cost (the hop to the writer thread, ``BEGIN IMMEDIATE``, the fsync'ed commit) instead of
        paying it each. Each step is still its own compare-and-set; each caller gets its result only
        after the commit, so "committed before the side effect" holds. If the transaction fails, its
        steps are retried one transaction each, so one bad step fails alone.
        """
        while self._pending_steps:
            batch, self._pending_steps = self._pending_steps, []
            try:
                await self._write_batch(batch)
            except asyncio.CancelledError:
                _fail([*batch, *self._pending_steps])
                self._pending_steps = []
                raise
            except Exception as exc:
                if len(batch) == 1:
                    _fail(batch, exc)
                    continue
                for step in batch:  # one failing step must not fail the others with it
                    try:
                        await self._write_batch([step])
                    except Exception as alone:
                        _fail([step], alone)

    async def _write_batch(self, batch: list[_PendingStep]) -> None:
        announced = self._announced
        results = await self._db.run_on_driver(lambda driver: [_apply_step(driver, step, announced) for step in batch])
        for step, result in zip(batch, results, strict=True):
            if step.done.done():
                continue
            if isinstance(result, StaleWrite):
                step.done.set_exception(result)
            else:
                step.done.set_result(result)

    # -- users (CLI) --------------------------------------------------------------------------

    async def request_cancel(self, job_id: str, now: datetime) -> Job:
        """Cancel a job as a user asked: queued jobs at once, others through the scheduler.

        A queued job moves straight to cancelled (a compare-and-set on the state, so a scheduler
        that is just submitting it loses its own write instead). Submitting and running jobs get
        the ``cancel_requested`` flag and are looked at now; the scheduler sends ``:cancel`` once
        the operation exists.
        """
        return await self._db.run(lambda conn: cancel_job(conn, job_id, now, self._announced))

    async def retry_job(self, job_id: str, now: datetime, installation_id: str) -> Job:
        """A new attempt of a failed or cancelled job: a queued job with a new identity, linked by ``retry_of``.

        One transaction: the new row (its ``job_key`` and tuned-model id from :func:`retry_identity`),
        a copy of the original's spec, and the new job's first event. Refused, with the reason, for a
        job that is not failed or cancelled, or that has been retried already (retry the newest).
        """
        return await self._db.run(lambda conn: record_retry(conn, job_id, now, installation_id, {}))

    async def retry_marked_failures(self, now: datetime, installation_id: str) -> list[Job]:
        """Retry every failed job whose failing event asked for it (``auto_retry``) and that has no retry yet.

        The scheduler marks the failure's event in the transaction that fails the job, then calls
        this; a crash in between leaves the mark, and the call at the next start finds it. So an
        automatic retry is neither lost nor made twice (a job has at most one ``retry_of`` successor).
        """
        return await self._db.run(lambda conn: retry_marked(conn, now, installation_id))

    async def resolve_rejection(self, rejection_id: str, now: datetime, resubmitted_as: str) -> Rejection:
        """Mark a rejection resolved by the resubmission of a fixed file named ``resubmitted_as``.

        A compare-and-set on ``resolved_at IS NULL``: a rejection is resolved once.
        """
        return await self._db.run(lambda conn: resolve_rejection(conn, rejection_id, now, resubmitted_as))

    # -- webhook sender -----------------------------------------------------------------------

    async def claim_notifications(self, now: datetime, lease: timedelta, limit: int) -> list[DueNotification]:
        """Up to ``limit`` pending notifications that are due, each held for ``lease`` (oldest first).

        Holding one is moving its next attempt past the lease, so a sender that dies mid-attempt
        leaves it to be retried once the lease is over, and no second sender takes it meanwhile.
        """
        return await self._db.run(lambda conn: claim_notifications(conn, now, lease, limit))

    async def record_attempt(self, notification_id: str, attempt: DeliveryAttempt) -> None:
        """Record one delivery attempt and its consequence for the notification, in one transaction."""
        await self._db.run(lambda conn: record_attempt(conn, notification_id, attempt))

    async def prune(self, older_than: timedelta, now: datetime, *, dry_run: bool = False) -> PruneResult:
        """Delete the history of terminal jobs that finished more than ``older_than`` before ``now``.

        A retention rule for the status database: the job rows go with their specs (the training
        data, by far the biggest part), snapshots and events, in one transaction. Unfinished jobs are
        never touched. Freed pages are reused by later writes; the file shrinks only with VACUUM.
        """
        return await self._db.run(lambda conn: prune_jobs(conn, older_than, now, dry_run=dry_run))

    async def housekeeping(self) -> str | None:
        """Keep the WAL bounded (readers holding old snapshots can make it grow without limit)."""
        return "wal_checkpointed" if await self.checkpoint_wal(self._wal_checkpoint_bytes, self._wal) else None

    async def checkpoint_wal(self, max_bytes: int, wal_path: Path) -> bool:
        """Checkpoint and truncate the WAL when it has grown past ``max_bytes``; true when it was reset.

        Runs outside any transaction (inside one SQLite refuses with "database table is locked") and
        with the busy timeout at zero: a TRUNCATE checkpoint must wait for every reader, and a reader
        holding a read transaction for a minute would otherwise stall the daemon's one writer
        connection for the whole busy timeout. A reader in the way makes this a no-op that the next
        check repeats; the frames already copied stay copied.
        """
        try:
            size = (await asyncio.to_thread(wal_path.stat)).st_size
        except FileNotFoundError:
            return False
        if size <= max_bytes:
            return False

        def work(raw: sqlite3.Connection) -> bool:
            (busy_timeout_ms,) = raw.execute("PRAGMA busy_timeout").fetchone()
            raw.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _frames, _copied = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                raw.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            return not busy

        return await self._db.run_outside_transaction(work)


def step_columns(job: Job, now: datetime, changes: JobChanges, *, to: JobState | None, release: bool) -> dict[str, Any]:
    """Every column a step writes: its ``changes`` (texts scrubbed of secrets), the state, the lease.

    Raises :class:`StaleWrite` for a move the lifecycle does not allow from the state ``job`` shows.
    """
    if to is not None and not can_transition(job.state, to):
        raise StaleWrite(job.id, job.state.value, to.value)
    columns: dict[str, Any] = {k: scrub(v) if isinstance(v, str) else v for k, v in changes.columns().items()}
    columns["updated_at"] = now
    if to is not None:
        columns["state"] = to.value
        if to in TERMINAL:
            columns.update(finished_at=now, next_check_at=None, cancel_requested=False)
    if release:
        columns.update(lease_owner=None, lease_expires_at=None)
    return columns


def _upsert(conn: Connection) -> Any:
    """The dialect's INSERT with ``ON CONFLICT`` (SQLite and PostgreSQL spell it alike)."""
    return pg_insert if conn.dialect.name == "postgresql" else sqlite_insert


def record_heartbeat(conn: Connection, daemon: DaemonInfo, now: datetime) -> None:
    """The daemon's row: written whole at its first heartbeat, then only ``heartbeat_at`` moves."""
    statement = _upsert(conn)(daemons).values(
        id=daemon.id, host=daemon.host, pid=daemon.pid, spool=daemon.spool, started_at=now, heartbeat_at=now,
    )
    conn.execute(statement.on_conflict_do_update(index_elements=[daemons.c.id],
                                                 set_={"heartbeat_at": statement.excluded.heartbeat_at}))


def record_daemon_stopped(conn: Connection, daemon_id: str, now: datetime) -> None:
    """Stamp a clean stop on the daemon's row."""
    conn.execute(update(daemons).where(daemons.c.id == daemon_id).values(stopped_at=now, heartbeat_at=now))


def share_pause(conn: Connection, api: str, until: datetime | None, by: str) -> datetime | None:
    """Raise the shared pause of ``api`` to ``until`` (never lowers it); the pause in force afterwards."""
    if until is not None:
        statement = _upsert(conn)(api_pauses).values(api=api, paused_until=until, set_by=by)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[api_pauses.c.api],
            set_={"paused_until": statement.excluded.paused_until, "set_by": statement.excluded.set_by},
            where=statement.excluded.paused_until > api_pauses.c.paused_until,
        ))
    paused_until: datetime | None = conn.scalar(select(api_pauses.c.paused_until).where(api_pauses.c.api == api))
    return paused_until


def add_rejection(conn: Connection, new: NewRejection, now: datetime) -> Rejection:
    """Record a rejected file in ``conn``'s transaction (see :meth:`SqlStore.add_rejection`)."""
    values = {
        "id": new_rejection_id(), "file": scrub(new.file), "rejected_file": new.rejected_file,
        "field": new.field, "problem": scrub(new.problem), "duplicate_of": new.duplicate_of,
        "intake_id": new.intake_id, "rejected_at": now,
    }
    conn.execute(_upsert(conn)(rejections).values(**values).on_conflict_do_nothing(
        index_elements=[rejections.c.intake_id]))
    return rejection_from_row(conn.execute(select(rejections).where(rejections.c.intake_id == new.intake_id)).one())


def rejection_by_intake_id(conn: Connection, intake_id: str) -> Rejection | None:
    """The rejection an intake claim recorded, if any."""
    row = conn.execute(select(rejections).where(rejections.c.intake_id == intake_id)).one_or_none()
    return None if row is None else rejection_from_row(row)


def resolve_rejection(conn: Connection, rejection_id: str, now: datetime, resubmitted_as: str) -> Rejection:
    """Mark a rejection resolved, once (see :meth:`SqlStore.resolve_rejection`)."""
    row = conn.execute(
        update(rejections).where(rejections.c.id == rejection_id, rejections.c.resolved_at.is_(None))
        .values(resolved_at=now, resubmitted_as=resubmitted_as).returning(*rejections.c)
    ).one_or_none()
    if row is None:
        raise OrchestratorError(f"rejection {rejection_id} does not exist or is resolved already")
    return rejection_from_row(row)


def retry_marked(conn: Connection, now: datetime, installation_id: str) -> list[Job]:
    """The retries of failed jobs marked ``auto_retry`` that have none yet (:meth:`SqlStore.retry_marked_failures`)."""
    later = jobs.alias("later")
    marked = conn.execute(
        select(jobs.c.id).join(events, events.c.job_id == jobs.c.id).where(
            jobs.c.state == JobState.FAILED.value, events.c.to_state == JobState.FAILED.value,
            _marked_auto_retry(conn),
            ~select(later.c.id).where(later.c.retry_of == jobs.c.id).exists(),
        ).order_by(jobs.c.finished_at)
    ).scalars().all()
    return [record_retry(conn, job_id, now, installation_id, {"automatic": True}) for job_id in marked]


def _marked_auto_retry(conn: Connection) -> Any:
    """``events.detail`` (JSON text) holds ``"auto_retry": true``, in the dialect's JSON functions."""
    if conn.dialect.name == "postgresql":
        return cast(events.c.detail, JSONB)["auto_retry"].astext == "true"
    return func.json_extract(events.c.detail, "$.auto_retry") == 1


def record_retry(conn: Connection, job_id: str, now: datetime, installation_id: str, detail: Mapping[str, Any]) -> Job:
    """The rows of a retry of ``job_id`` (see :meth:`SqlStore.retry_job`), inside the caller's transaction."""
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
    if row is None:
        raise OrchestratorError(f"no job {job_id}")
    original = job_from_row(row)
    if original.state not in RETRYABLE:
        raise OrchestratorError(f"job {job_id} is {original.state.value}: only failed or cancelled jobs can be retried")
    later = conn.execute(select(jobs.c.id, jobs.c.state).where(jobs.c.retry_of == job_id)).first()
    if later is not None:
        raise OrchestratorError(f"job {job_id} was retried already as job {later.id} ({later.state}); retry that one")
    attempt = retry_attempt(original) + 1
    while True:
        job_key, tuned_model_id = retry_identity(original, attempt, installation_id)
        taken = conn.scalar(select(func.count()).select_from(jobs).where(
            (jobs.c.job_key == job_key) | (jobs.c.tuned_model_id == tuned_model_id)))
        if not taken:
            break
        attempt += 1
    new_id = new_job_id()
    inserted = conn.execute(insert(jobs).values(
        id=new_id, job_key=job_key, state=JobState.QUEUED.value, priority=original.priority,
        display_name=original.display_name, base_model=original.base_model, tuned_model_id=tuned_model_id,
        labels=original.labels, source_file=original.source_file, intake_id=f"retry-{new_id}",
        total_steps=original.total_steps, max_run_time=original.max_run_time, stall_timeout=original.stall_timeout,
        next_check_at=now, created_at=now, updated_at=now, retry_of=original.id,
    ).returning(*jobs.c)).one()
    conn.execute(insert(job_specs).from_select(
        ["job_id", "body", "example_count", "file_sha256", "file_bytes"],
        select(sql_literal(new_id), job_specs.c.body, job_specs.c.example_count, job_specs.c.file_sha256,
               job_specs.c.file_bytes).where(job_specs.c.job_id == original.id),
    ))
    conn.execute(insert(events), {
        "job_id": new_id, "at": now, "from_state": None, "to_state": JobState.QUEUED.value,
        "detail": json.dumps({"retry_of": original.id, "source_file": original.source_file, **detail}),
    })
    return job_from_row(inserted)


def job_by_intake_id(conn: Connection, intake_id: str) -> Job | None:
    """The job an intake claim recorded, if any."""
    row = conn.execute(select(jobs).where(jobs.c.intake_id == intake_id)).one_or_none()
    return None if row is None else job_from_row(row)


def request_body(conn: Connection, job_id: str) -> dict[str, Any]:
    """The create request body recorded for the job."""
    body = conn.scalar(select(job_specs.c.body).where(job_specs.c.job_id == job_id))
    if body is None:
        raise OrchestratorError(f"job {job_id} has no recorded spec")
    result: dict[str, Any] = json.loads(body)
    return result


def cancel_job(conn: Connection, job_id: str, now: datetime, announced: Announced) -> Job:
    """A user's cancel of one job, in ``conn``'s transaction (see :meth:`SqlStore.request_cancel`)."""
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
    if row is None:
        raise OrchestratorError(f"no job {job_id}")
    job = job_from_row(row)
    if job.state in TERMINAL or job.state is JobState.CANCELLING or job.cancel_requested:
        return job
    if job.state is JobState.QUEUED:
        changes: dict[str, Any] = {
            "state": JobState.CANCELLED.value, "finished_at": now, "next_check_at": None,
            "lease_owner": None, "lease_expires_at": None,
        }
        to_state = JobState.CANCELLED.value
    else:
        changes = {"cancel_requested": True, "next_check_at": now}
        to_state = job.state.value
    changes["updated_at"] = now
    updated = conn.execute(
        update(jobs).where(jobs.c.id == job_id, jobs.c.state == job.state.value)
        .values(**changes).returning(*jobs.c)
    ).one()
    event_id = conn.execute(insert(events).returning(events.c.id), {
        "job_id": job_id, "at": now, "from_state": job.state.value, "to_state": to_state,
        "detail": json.dumps({"reason": "cancel requested by user"}),
    }).scalar_one()
    cancelled = job_from_row(updated)
    if cancelled.state is not job.state and cancelled.state in announced:
        conn.execute(insert(notifications), notification_row(cancelled, event_id, now))
    return cancelled


def claim_notifications(conn: Connection, now: datetime, lease: timedelta, limit: int) -> list[DueNotification]:
    """Hold up to ``limit`` due pending notifications for ``lease`` (see :meth:`SqlStore.claim_notifications`)."""
    due = (
        select(notifications.c.id)
        .where(notifications.c.state == "pending", notifications.c.next_attempt_at <= now)
        .order_by(notifications.c.next_attempt_at)
        .limit(limit)
    )
    if conn.dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)  # several daemons' senders take different rows
    held = (
        update(notifications)
        .where(notifications.c.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + lease)
        .returning(notifications.c.id, notifications.c.job_id, notifications.c.type, notifications.c.payload,
                   notifications.c.attempts, notifications.c.created_at)
    )
    rows = conn.execute(held).all()
    return sorted((DueNotification(*row) for row in rows), key=lambda n: n.created_at)


def record_attempt(conn: Connection, notification_id: str, attempt: DeliveryAttempt) -> None:
    """One delivery attempt and its consequence for the notification (see :meth:`SqlStore.record_attempt`)."""
    finished = attempt.state != "pending"
    conn.execute(insert(notification_attempts), {
        "notification_id": notification_id, "at": attempt.at, "outcome": attempt.outcome,
        "status_code": attempt.status_code, "error": attempt.error and scrub(attempt.error),
        "seconds": attempt.seconds,
    })
    conn.execute(
        update(notifications)
        .where(notifications.c.id == notification_id, notifications.c.state == "pending")
        .values(
            state=attempt.state, attempts=notifications.c.attempts + 1,
            next_attempt_at=None if finished else attempt.next_attempt_at,
            last_error=attempt.error and scrub(attempt.error),
            finished_at=attempt.at if finished else None,
        )
    )


def prune_jobs(conn: Connection, older_than: timedelta, now: datetime, *, dry_run: bool) -> PruneResult:
    """The history of terminal jobs finished before ``now - older_than``, removed in ``conn``'s transaction."""
    doomed = select(jobs.c.id).where(
        jobs.c.state.in_([s.value for s in TERMINAL]), jobs.c.finished_at < now - older_than
    )
    job_ids = tuple(conn.execute(doomed.order_by(jobs.c.finished_at)).scalars().all())
    counts = {
        table.name: int(
            conn.scalar(select(func.count()).select_from(table).where(table.c.job_id.in_(doomed))) or 0
        )
        for table in (events, snapshots)
    }
    if job_ids and not dry_run:
        for table in (events, snapshots, job_specs):
            conn.execute(table.delete().where(table.c.job_id.in_(doomed)))
        conn.execute(jobs.delete().where(jobs.c.id.in_(doomed)))
        # Daemons silent (stopped, or dead) for as long: their rows only record who ran once.
        conn.execute(daemons.delete().where(daemons.c.heartbeat_at < now - older_than))
    return PruneResult(job_ids, counts["events"], counts["snapshots"])


def _insert_job(driver: sqlite3.Connection, new: NewJob, now: datetime) -> Job | DuplicateJob:
    """The rows of one accepted job file (see :meth:`SqlStore.add_jobs`), or why it is a duplicate."""
    for query, value, what in (
        (hotpath.JOB_BY_KEY, new.job_key, "job key"),
        (hotpath.JOB_BY_TUNED_MODEL, new.tuned_model_id, "tuned model id"),
    ):
        existing = driver.execute(query, (value,)).fetchone()
        if existing is not None:
            return DuplicateJob(what, value, existing[0])
    values = {
        "id": new_job_id(), "job_key": new.job_key, "state": JobState.QUEUED.value, "priority": new.priority,
        "display_name": new.display_name, "base_model": new.base_model, "tuned_model_id": new.tuned_model_id,
        "labels": json.dumps(dict(new.labels), sort_keys=True), "source_file": new.source_file,
        "intake_id": new.intake_id, "total_steps": new.total_steps, "max_run_time": new.max_run_time,
        "stall_timeout": new.stall_timeout, "next_check_at": now, "created_at": now, "updated_at": now,
    }
    [job] = hotpath.fetch_jobs(driver, hotpath.insert_job(values), values)
    driver.execute(hotpath.INSERT_SPEC, (job.id, new.body_json, new.example_count, new.file_sha256, new.file_bytes))
    detail = json.dumps({"source_file": new.source_file})
    driver.execute(hotpath.INSERT_EVENT, (job.id, db_time(now), None, JobState.QUEUED.value, detail))
    return job


def _apply_step(driver: sqlite3.Connection, step: _PendingStep, announced: Announced) -> Job | StaleWrite:
    """One step's writes inside the group's transaction; a lost compare-and-set writes nothing.

    A change into an ``announced`` state also writes its webhook notification, in this transaction.
    """
    job, to, now = step.job, step.to, step.now
    parameters = {f"v_{name}": value for name, value in step.changes.items()}
    parameters.update(w_id=job.id, w_state=job.state.value, w_owner=step.owner, w_now=now)
    statement = hotpath.step_update(tuple(sorted(step.changes)), step.soon_if_cancel_requested)
    updated = hotpath.fetch_jobs(driver, statement, parameters)
    if not updated:
        return StaleWrite(job.id, job.state.value, (to or job.state).value)
    if step.snapshots:
        driver.executemany(hotpath.INSERT_SNAPSHOTS, hotpath.snapshot_rows(job.id, step.snapshots, now))
    if to is not None:
        detail = scrub(json.dumps(dict(step.detail or {}), default=str))
        event = driver.execute(hotpath.INSERT_EVENT, (job.id, db_time(now), job.state.value, to.value, detail))
        if to in announced and event.lastrowid is not None:
            row = notification_row(updated[0], event.lastrowid, now)
            driver.execute(INSERT_NOTIFICATION, hotpath.driver_parameters(row))
    return updated[0]
