"""PostgresStore: the job store on a PostgreSQL server that several daemons share.

The same schema as SQLite (the same Alembic migrations build both) and the same
:class:`~orchestrator.store.protocol.JobStore` door; what differs is who else writes. Several daemons
claim from one queue, so:

- a claim is ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)``: two daemons claiming at the
  same instant take different rows and never wait on each other, and a lease (owner = the daemon
  instance's id, expiry ``lease_seconds``) keeps a job one daemon's until its step ends or the lease
  runs out (the daemon died): then any daemon takes it over;
- every job write is a compare-and-set on (id, state, lease owner), as on SQLite, so a daemon whose
  lease was taken over changes nothing (:class:`~orchestrator.errors.StaleWrite`);
- the active-job cap (the Google project's tuning quota) holds across all daemons at every instant:
  a claim of queued jobs takes a transaction-scoped advisory lock, so counting the jobs that hold (or
  are about to take) a remote tuning and leasing new queued jobs is serialized across daemons; a
  queued job counts from the moment it is leased, before its create is sent;
- the same job file dropped on two machines is one job: ``job_key`` and ``tuned_model_id`` are unique
  in the database, and an insert that loses the race is reported as the duplicate it is.

Driver: psycopg 3 through SQLAlchemy's synchronous engine, each transaction a plain function run in a
small thread pool (as the SQLite writer runs in its thread), so the Core statements of
:mod:`orchestrator.store.sql` that are not on the hot path are shared, not rewritten. Unlike SQLite,
PostgreSQL takes writes from several connections at once, so there is no single writer and no group
commit: each step commits in its own short transaction.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import URL

from orchestrator.errors import StaleWrite
from orchestrator.jobs import REMOTE_ACTIVE, TERMINAL, Job, JobState, Snapshot
from orchestrator.logs import scrub
from orchestrator.store.daemons import DaemonInfo
from orchestrator.store.outbox import Announced, notification_row
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
from orchestrator.store.rejections import NewRejection, Rejection
from orchestrator.store.schema import events, job_specs, jobs, meta, notifications, snapshots
from orchestrator.store.sql import (
    Unobserved,
    add_rejection,
    cancel_job,
    claim_notifications,
    job_by_intake_id,
    job_from_row,
    new_job_id,
    prune_jobs,
    record_attempt,
    record_daemon_stopped,
    record_heartbeat,
    record_retry,
    rejection_by_intake_id,
    request_body,
    resolve_rejection,
    retry_marked,
    share_pause,
    step_columns,
)

T = TypeVar("T")

#: The advisory lock that serializes the active-job count and the claim of queued jobs across daemons
#: (``pg_advisory_xact_lock``; an arbitrary constant, "orch" in ASCII).
ACTIVE_CAP_LOCK = 0x6F726368
#: Connections (and threads) per daemon: claims, steps and intake run side by side.
POOL_SIZE = 8

_DUE = (JobState.SUBMITTING.value, JobState.RUNNING.value, JobState.CANCELLING.value)
_UNFINISHED = tuple(s.value for s in JobState if s not in TERMINAL)
_REMOTE_ACTIVE = tuple(s.value for s in REMOTE_ACTIVE)


def _free(now: datetime) -> Any:
    return sqlalchemy.or_(jobs.c.lease_owner.is_(None), jobs.c.lease_expires_at < now)


class PostgresStore:
    """A :class:`~orchestrator.store.protocol.JobStore` on PostgreSQL; ``open_store`` builds it after the migrations."""

    def __init__(
        self, url: URL, observer: StoreObserver | None = None, announced: Announced | None = None, *,
        pool_size: int = POOL_SIZE,
    ) -> None:
        self._engine = sqlalchemy.create_engine(url, pool_size=pool_size, max_overflow=0, pool_pre_ping=True)
        self._threads = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="orchestrator-pg")
        self._observer: StoreObserver = observer or Unobserved()
        #: The state changes that write a webhook notification in their own transaction.
        self._announced = announced or Announced()

    async def _run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one transaction, in a pool thread."""
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._transaction, work)

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        with self._engine.begin() as conn:
            return work(conn)

    async def connect(self) -> None:
        """Open one connection now, so that a server that cannot be reached says so at once."""
        await self._run(lambda conn: conn.exec_driver_sql("SELECT 1"))

    async def dispose(self) -> None:
        """Let the transactions under way finish, then close the connections."""
        await asyncio.get_running_loop().run_in_executor(None, self._threads.shutdown, True)
        self._engine.dispose()

    # -- installation -------------------------------------------------------------------------

    async def get_or_set_meta(self, key: str, default: str) -> str:
        """The value stored under ``key``, storing ``default`` first if there is none."""

        def work(conn: Connection) -> str:
            conn.execute(pg_insert(meta).values(key=key, value=default).on_conflict_do_nothing())
            return str(conn.scalar(select(meta.c.value).where(meta.c.key == key)))

        return await self._run(work)

    async def release_all_leases(self) -> int:
        """Nothing: the other daemons' leases are theirs, and a dead daemon's expire after ``lease_seconds``."""
        return 0

    async def housekeeping(self) -> None:
        """Nothing: PostgreSQL's autovacuum keeps the tables in shape."""
        return None

    async def heartbeat(self, daemon: DaemonInfo, now: datetime) -> None:
        """Record that ``daemon`` is alive (its row is written at the first heartbeat)."""
        await self._run(lambda conn: record_heartbeat(conn, daemon, now))

    async def daemon_stopped(self, daemon_id: str, now: datetime) -> None:
        """Record a clean stop of the daemon."""
        await self._run(lambda conn: record_daemon_stopped(conn, daemon_id, now))

    async def share_pause(self, api: str, until: datetime | None, by: str) -> datetime | None:
        """Raise the shared pause of ``api`` to ``until`` when given; the pause in force (None: never paused)."""
        return await self._run(lambda conn: share_pause(conn, api, until, by))

    # -- intake -------------------------------------------------------------------------------

    async def add_job(self, new: NewJob, now: datetime) -> Job:
        """Record one queued job; raises :class:`DuplicateJob` when its key or tuned-model id is taken."""
        [result] = await self.add_jobs([new], now)
        if isinstance(result, DuplicateJob):
            raise result
        return result

    async def add_jobs(self, batch: Sequence[NewJob], now: datetime) -> list[Job | DuplicateJob]:
        """Record many jobs in one transaction; a duplicate (also one another daemon just inserted) alone is refused."""
        results = await self._run(lambda conn: [_insert_job(conn, new, now) for new in batch])
        self._observer.committed()
        return results

    async def job_by_intake_id(self, intake_id: str) -> Job | None:
        """The job an intake claim recorded, if it got that far."""
        return await self._run(lambda conn: job_by_intake_id(conn, intake_id))

    async def add_rejection(self, new: NewRejection, now: datetime) -> Rejection:
        """Record one rejected file (see :meth:`add_rejections`)."""
        [rejection] = await self.add_rejections([new], now)
        return rejection

    async def add_rejections(self, batch: Sequence[NewRejection], now: datetime) -> list[Rejection]:
        """Record rejected files in one transaction, idempotent on the claim token (:meth:`SqlStore.add_rejections`)."""
        return await self._run(lambda conn: [add_rejection(conn, new, now) for new in batch])

    async def rejection_by_intake_id(self, intake_id: str) -> Rejection | None:
        """The rejection an intake claim recorded, if it got that far."""
        return await self._run(lambda conn: rejection_by_intake_id(conn, intake_id))

    # -- scheduler ----------------------------------------------------------------------------

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int, active_cap: int) -> list[Job]:
        """Lease up to ``limit`` due jobs for ``owner``, skipping rows other daemons are claiming.

        Queued jobs are taken (by priority, then age) only within ``active_cap``, counted under
        :data:`ACTIVE_CAP_LOCK` across every daemon: jobs in a remote-active state plus queued jobs
        another claim leased and has not submitted yet.
        """
        lease_to = {"lease_owner": owner, "lease_expires_at": now + lease}

        def claim(conn: Connection, candidates: Any) -> list[Job]:
            ids = candidates.with_for_update(skip_locked=True).scalar_subquery()
            rows = conn.execute(update(jobs).where(jobs.c.id.in_(ids)).values(**lease_to).returning(*jobs.c)).all()
            return [job_from_row(row) for row in rows]

        def work(conn: Connection) -> list[Job]:
            due = select(jobs.c.id).where(jobs.c.state.in_(_DUE), jobs.c.next_check_at <= now, _free(now))
            claimed = claim(conn, due.order_by(jobs.c.next_check_at).limit(limit))
            room = limit - len(claimed)
            queued = select(jobs.c.id).where(
                jobs.c.state == JobState.QUEUED.value, jobs.c.next_check_at <= now, _free(now)
            )
            if room <= 0 or conn.execute(queued.limit(1)).first() is None:
                return claimed
            conn.execute(select(func.pg_advisory_xact_lock(ACTIVE_CAP_LOCK)))
            holding = conn.scalar(select(func.count()).select_from(jobs).where(sqlalchemy.or_(
                jobs.c.state.in_(_REMOTE_ACTIVE),
                sqlalchemy.and_(jobs.c.state == JobState.QUEUED.value, jobs.c.lease_expires_at >= now),
            )))
            room = min(room, active_cap - int(holding or 0))
            if room > 0:
                order = (jobs.c.priority.desc(), jobs.c.created_at, jobs.c.id)
                claimed += claim(conn, queued.order_by(*order).limit(room))
            return claimed

        claimed = await self._run(work)
        self._observer.committed()
        self._observer.claimed(now, claimed)
        return claimed

    async def next_due_at(self) -> datetime | None:
        """The earliest next check of an unfinished job no step holds (see :meth:`SqlStore.next_due_at`)."""
        query = select(func.min(jobs.c.next_check_at)).where(
            jobs.c.state.in_(_UNFINISHED), jobs.c.lease_owner.is_(None)
        )
        due: datetime | None = await self._run(lambda conn: conn.scalar(query))
        return due

    async def request_body(self, job_id: str) -> dict[str, Any]:
        """The create request body recorded for the job."""
        return await self._run(lambda conn: request_body(conn, job_id))

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
        """Write the outcome of one step of ``job`` (see :meth:`SqlStore.commit_step`), in its own transaction.

        Started writes are shielded: a caller cancelled meanwhile does not cut the transaction off.
        """
        columns: dict[str, Any] = step_columns(job, now, changes, to=to, release=release)
        if soon_if_cancel_requested and columns.get("next_check_at") is not None:
            columns["next_check_at"] = case((jobs.c.cancel_requested, now), else_=columns["next_check_at"])

        def work(conn: Connection) -> Job:
            row = conn.execute(
                update(jobs)
                .where(jobs.c.id == job.id, jobs.c.state == job.state.value, jobs.c.lease_owner == owner)
                .values(**columns).returning(*jobs.c)
            ).one_or_none()
            if row is None:
                raise StaleWrite(job.id, job.state.value, (to or job.state).value)
            if snapshots_seen:
                conn.execute(pg_insert(snapshots).on_conflict_do_nothing(), [
                    {"job_id": job.id, "step": s.step, "epoch": s.epoch, "mean_loss": s.mean_loss,
                     "compute_time": s.compute_time, "recorded_at": now} for s in snapshots_seen
                ])
            updated = job_from_row(row)
            if to is not None:
                event_id = conn.execute(events.insert().returning(events.c.id), {
                    "job_id": job.id, "at": now, "from_state": job.state.value, "to_state": to.value,
                    "detail": scrub(json.dumps(dict(detail or {}), default=str)),
                }).scalar_one()
                if to in self._announced:
                    conn.execute(notifications.insert(), notification_row(updated, event_id, now))
            return updated

        committed = await asyncio.shield(self._run(work))
        self._observer.committed()
        if snapshots_seen:
            self._observer.snapshots_recorded(len(snapshots_seen))
        return committed

    # -- users (CLI) --------------------------------------------------------------------------

    async def request_cancel(self, job_id: str, now: datetime) -> Job:
        """Cancel a job as a user asked (see :meth:`SqlStore.request_cancel`)."""
        return await self._run(lambda conn: cancel_job(conn, job_id, now, self._announced))

    async def retry_job(self, job_id: str, now: datetime, installation_id: str) -> Job:
        """A new queued attempt of a failed or cancelled job (see :meth:`SqlStore.retry_job`)."""
        return await self._run(lambda conn: record_retry(conn, job_id, now, installation_id, {}))

    async def retry_marked_failures(self, now: datetime, installation_id: str) -> list[Job]:
        """The automatic retries failures asked for, not made yet (see :meth:`SqlStore.retry_marked_failures`)."""
        return await self._run(lambda conn: retry_marked(conn, now, installation_id))

    async def resolve_rejection(self, rejection_id: str, now: datetime, resubmitted_as: str) -> Rejection:
        """Mark a rejection resolved by the resubmission of a fixed file named ``resubmitted_as``."""
        return await self._run(lambda conn: resolve_rejection(conn, rejection_id, now, resubmitted_as))

    # -- webhook sender -----------------------------------------------------------------------

    async def claim_notifications(self, now: datetime, lease: timedelta, limit: int) -> list[DueNotification]:
        """Up to ``limit`` due pending notifications, each held for ``lease`` (rows other senders hold skipped)."""
        return await self._run(lambda conn: claim_notifications(conn, now, lease, limit))

    async def record_attempt(self, notification_id: str, attempt: DeliveryAttempt) -> None:
        """Record one delivery attempt and its consequence for the notification, in one transaction."""
        await self._run(lambda conn: record_attempt(conn, notification_id, attempt))

    async def prune(self, older_than: timedelta, now: datetime, *, dry_run: bool = False) -> PruneResult:
        """Delete the history of terminal jobs that finished more than ``older_than`` before ``now``."""
        return await self._run(lambda conn: prune_jobs(conn, older_than, now, dry_run=dry_run))


def _insert_job(conn: Connection, new: NewJob, now: datetime) -> Job | DuplicateJob:
    """The rows of one accepted job file, or the duplicate that keeps it out.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same key by another daemon to end;
    if that one committed, nothing is inserted here and the lookup that follows names it.
    """
    duplicate = _existing(conn, new)
    if duplicate is not None:
        return duplicate
    row = conn.execute(pg_insert(jobs).values(
        id=new_job_id(), job_key=new.job_key, state=JobState.QUEUED.value, priority=new.priority,
        display_name=new.display_name, base_model=new.base_model, tuned_model_id=new.tuned_model_id,
        labels=json.dumps(dict(new.labels), sort_keys=True), source_file=new.source_file,
        intake_id=new.intake_id, total_steps=new.total_steps, max_run_time=new.max_run_time,
        stall_timeout=new.stall_timeout, next_check_at=now, created_at=now, updated_at=now,
    ).on_conflict_do_nothing().returning(*jobs.c)).one_or_none()
    if row is None:
        raced = _existing(conn, new)
        if raced is None:  # the conflict was on the intake claim token: the same claim recorded twice
            raced = DuplicateJob("intake claim", new.intake_id, str(conn.scalar(
                select(jobs.c.id).where(jobs.c.intake_id == new.intake_id))))
        return raced
    job = job_from_row(row)
    conn.execute(job_specs.insert(), {"job_id": job.id, "body": new.body_json, "example_count": new.example_count,
                                      "file_sha256": new.file_sha256, "file_bytes": new.file_bytes})
    conn.execute(events.insert(), {"job_id": job.id, "at": now, "from_state": None, "to_state": JobState.QUEUED.value,
                                   "detail": json.dumps({"source_file": new.source_file})})
    return job


def _existing(conn: Connection, new: NewJob) -> DuplicateJob | None:
    for column, value, what in ((jobs.c.job_key, new.job_key, "job key"),
                                (jobs.c.tuned_model_id, new.tuned_model_id, "tuned model id")):
        existing = conn.scalar(select(jobs.c.id).where(column == value))
        if existing is not None:
            return DuplicateJob(what, value, existing)
    return None
