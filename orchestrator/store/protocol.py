"""The store's front door: what the scheduler, the intake and the daemon may ask of a job store.

:class:`JobStore` is the one interface they depend on; :class:`~orchestrator.store.sql.SqlStore`
(SQLite, the embedded default) implements it, and so can a store on another database (DESIGN.md,
"Scale"). What crosses it is typed: a step's column changes are a :class:`JobChanges`, never loose
keywords, and what a store observes (a commit, a claim, recorded snapshots) goes to a
:class:`StoreObserver` the daemon passes in, so metrics never need a subclass of a store.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from orchestrator.errors import OrchestratorError
from orchestrator.jobs import Job, JobState, Snapshot
from orchestrator.store.daemons import DaemonInfo
from orchestrator.store.rejections import NewRejection, Rejection


class DuplicateJob(OrchestratorError):
    """A job with this idempotency key (or tuned-model id) is already recorded."""

    def __init__(self, what: str, value: str, existing_job_id: str) -> None:
        self.what = what
        self.existing_job_id = existing_job_id
        super().__init__(f"duplicate {what} {value!r}: already recorded as job {existing_job_id}")


@dataclass(frozen=True, slots=True)
class NewJob:
    """What the intake records for one accepted job file."""

    job_key: str
    priority: int
    display_name: str | None
    base_model: str
    tuned_model_id: str
    labels: Mapping[str, str]
    source_file: str
    intake_id: str
    max_run_time: float | None
    stall_timeout: float | None
    body_json: str  #: the ``tunedModels.create`` request body, serialized once (it can be 20 MB)
    example_count: int | None  #: None for a dataset outside the file, until the service counts it
    total_steps: int | None
    file_sha256: str
    file_bytes: int


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What :meth:`JobStore.prune` removed (or would remove, on a dry run)."""

    job_ids: tuple[str, ...]
    events: int
    snapshots: int


@dataclass(frozen=True, slots=True)
class DueNotification:
    """A webhook notification the sender is to attempt now (held for it for a lease)."""

    id: str
    job_id: str
    type: str
    payload: str
    attempts: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    """How one delivery attempt went, and what follows for its notification."""

    at: datetime
    outcome: str  #: delivered | failed | gone
    status_code: int | None
    error: str | None
    seconds: float
    #: The notification's state afterwards: ``pending`` (with ``next_attempt_at``), ``delivered`` or ``gave_up``.
    state: str
    next_attempt_at: datetime | None


class Keep(enum.Enum):
    """The value of a :class:`JobChanges` field that leaves its column as it is."""

    KEEP = enum.auto()


KEEP: Final = Keep.KEEP


@dataclass(frozen=True, slots=True)
class JobChanges:
    """The ``jobs`` columns a scheduler step may set; every field left at :data:`KEEP` is not written.

    ``None`` is a value like any other (``last_error=None`` clears the error). The state, the lease
    and the timestamps that go with them are the store's business (:meth:`JobStore.commit_step`'s
    ``to`` and ``release``), not fields here.
    """

    attempts: int | Keep = KEEP
    last_error: str | Keep | None = KEEP
    next_check_at: datetime | Keep | None = KEEP
    operation_name: str | Keep | None = KEEP
    remote_state: str | Keep | None = KEEP
    total_steps: int | Keep | None = KEEP
    completed_steps: int | Keep = KEEP
    last_loss: float | Keep | None = KEEP
    last_progress_at: datetime | Keep | None = KEEP
    submitted_at: datetime | Keep | None = KEEP
    started_at: datetime | Keep | None = KEEP
    cancel_requested: bool | Keep = KEEP
    cancel_reason: str | Keep | None = KEEP
    cancel_sent_at: datetime | Keep | None = KEEP
    error_code: int | Keep | None = KEEP
    error_status: str | Keep | None = KEEP
    error_message: str | Keep | None = KEEP
    #: Facts a tuning service may fill (``orchestrator.tuning.RemoteFacts``; ``operation_name`` and
    #: ``remote_state`` above are two of them) and when the latest submission was sent.
    remote_job: str | Keep | None = KEEP
    remote_substate: str | Keep | None = KEEP
    billable_tokens: int | Keep | None = KEEP
    model_name: str | Keep | None = KEEP
    endpoint: str | Keep | None = KEEP
    training_data_uri: str | Keep | None = KEEP
    validation_data_uri: str | Keep | None = KEEP
    submit_sent_at: datetime | Keep | None = KEEP
    working_since: datetime | Keep | None = KEEP
    dataset_example_count: int | Keep | None = KEEP

    def columns(self) -> dict[str, Any]:
        """The columns to write, by name (the fields not left at :data:`KEEP`)."""
        return {name: value for name in _CHANGE_COLUMNS if (value := getattr(self, name)) is not KEEP}


_CHANGE_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(JobChanges))
#: A step that changes no column besides what ``to`` and ``release`` imply.
NO_CHANGES: Final = JobChanges()


class StoreObserver(Protocol):
    """What a store reports as it works: the daemon's liveness stamp and metrics hang off these."""

    def committed(self) -> None:
        """A write transaction committed (jobs added, a claim, a step)."""

    def claimed(self, now: datetime, jobs: Sequence[Job]) -> None:
        """``jobs`` were leased by a claim that looked at the table at ``now``."""

    def snapshots_recorded(self, count: int) -> None:
        """A committed step carried ``count`` snapshots (each recorded at most once)."""


class JobStore(Protocol):
    """The durable job queue and status record, as the daemon's parts use it.

    Every job write is a compare-and-set on (id, state, lease owner): a write by an actor that lost
    the job changes nothing and raises :class:`~orchestrator.errors.StaleWrite`.
    """

    async def dispose(self) -> None:
        """Finish the writes under way, then close the connections."""

    async def get_or_set_meta(self, key: str, default: str) -> str:
        """The value stored under ``key``, storing ``default`` first if there is none."""

    async def release_all_leases(self) -> int:
        """Forget every lease left by an earlier run of this daemon; how many there were."""

    async def housekeeping(self) -> str | None:
        """Periodic upkeep, every few seconds; what it did, as a log event name (None: nothing)."""

    async def heartbeat(self, daemon: DaemonInfo, now: datetime) -> None:
        """Record that ``daemon`` is alive (the ``daemons`` row; written whole the first time)."""

    async def daemon_stopped(self, daemon_id: str, now: datetime) -> None:
        """Record a clean stop of the daemon."""

    async def share_pause(self, api: str, until: datetime | None, by: str) -> datetime | None:
        """Raise the pause every daemon keeps before calling ``api`` to ``until`` (when given, and later);
        the pause in force afterwards, None when there never was one."""

    async def add_job(self, new: NewJob, now: datetime) -> Job:
        """Record one queued job; raises :class:`DuplicateJob` when its key or tuned-model id is taken."""

    async def add_jobs(self, batch: Sequence[NewJob], now: datetime) -> list[Job | DuplicateJob]:
        """Record many jobs in one transaction; each result is the job or the duplicate that kept it out."""

    async def job_by_intake_id(self, intake_id: str) -> Job | None:
        """The job an intake claim recorded, if it got that far."""

    async def add_rejection(self, new: NewRejection, now: datetime) -> Rejection:
        """Record a rejected file; idempotent on the claim token."""

    async def add_rejections(self, batch: Sequence[NewRejection], now: datetime) -> list[Rejection]:
        """Record rejected files in one transaction; idempotent on each claim token."""

    async def rejection_by_intake_id(self, intake_id: str) -> Rejection | None:
        """The rejection an intake claim recorded, if it got that far."""

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int, active_cap: int) -> list[Job]:
        """Lease up to ``limit`` due jobs for ``owner``; queued ones only within ``active_cap``."""

    async def next_due_at(self) -> datetime | None:
        """The earliest next check of an unfinished job that no step holds."""

    async def request_body(self, job_id: str) -> dict[str, Any]:
        """The create request body recorded for the job."""

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
        """Write the outcome of one step of ``job`` (see :meth:`SqlStore.commit_step`)."""

    async def request_cancel(self, job_id: str, now: datetime) -> Job:
        """Cancel a job as a user asked: queued jobs at once, others through the scheduler."""

    async def retry_job(self, job_id: str, now: datetime, installation_id: str) -> Job:
        """A new attempt of a failed or cancelled job, under a new identity, linked by ``retry_of``."""

    async def retry_marked_failures(self, now: datetime, installation_id: str) -> list[Job]:
        """The retries that failures marked ``auto_retry`` asked for and that are not made yet (made now)."""

    async def resolve_rejection(self, rejection_id: str, now: datetime, resubmitted_as: str) -> Rejection:
        """Mark a rejection resolved by the resubmission of a fixed file named ``resubmitted_as``."""

    async def prune(self, older_than: timedelta, now: datetime, *, dry_run: bool = False) -> PruneResult:
        """Delete the history of terminal jobs that finished more than ``older_than`` before ``now``."""

    async def claim_notifications(self, now: datetime, lease: timedelta, limit: int) -> list[DueNotification]:
        """Hold up to ``limit`` due webhook notifications for ``lease`` (the outbox: ``store.outbox``)."""

    async def record_attempt(self, notification_id: str, attempt: DeliveryAttempt) -> None:
        """Record one delivery attempt and what follows for its notification, in one transaction."""
