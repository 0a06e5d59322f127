"""The status database schema: tables as SQLAlchemy Core objects, views as SQL.

This is the schema Alembic compares the migrations against (``alembic check``), and the one the
README documents: people query it directly, so it changes only through migrations. Timestamps are
ISO-8601 UTC text (``2026-11-21 09:30:00.123456``) so that sqlite3, Datasette and pandas read them
without help. Training data lives in ``job_specs``, apart from ``jobs``, so status queries stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect

from orchestrator.jobs import JobState


def db_time(value: datetime) -> str:
    """An aware datetime as stored: naive UTC text, the same text :class:`UtcDateTime` writes.

    That is SQLAlchemy's SQLite ``DateTime`` format, ``2026-11-21 09:30:00.123456``: always with the
    microseconds, which ``isoformat`` writes when asked for them (and at a fifth of ``strftime``'s cost).
    """
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def db_loss(value: float) -> float | str:
    """A loss as stored: NaN as the text ``'NaN'`` (see :class:`Loss`)."""
    return "NaN" if math.isnan(value) else value


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC ISO text in SQLite (what SQL tools expect)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use an aware UTC datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


class Loss(TypeDecorator[float]):
    """A training loss: a float, with NaN (which SQLite would store as NULL) kept as the text ``'NaN'``.

    A diverging run reports ``meanLoss: "NaN"``; binding it as a float would hit the NOT NULL
    constraint and wedge every poll of the job. The impl's own bind processor would turn the text
    back into a float, so this replaces it rather than adding to it.
    """

    impl = Float
    cache_ok = True

    def bind_processor(self, dialect: Dialect) -> Callable[[float | None], float | str | None]:
        def process(value: float | None) -> float | str | None:
            return None if value is None else db_loss(value)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> float | None:
        return None if value is None else float(value)


metadata = MetaData()

_STATES = ", ".join(f"'{s.value}'" for s in JobState)
_TERMINAL = ", ".join(f"'{s.value}'" for s in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED))

jobs = Table(
    "jobs",
    metadata,
    Column("id", Text, primary_key=True, comment="short job id, shown by the CLI"),
    Column("job_key", Text, nullable=False, unique=True, comment="idempotency key: orchestrator.job_key or sha256"),
    Column("state", Text, nullable=False, comment="lifecycle state (see jobs.JobState)"),
    Column("priority", Integer, nullable=False, server_default="0"),
    Column("display_name", Text),
    Column("base_model", Text, nullable=False),
    Column("tuned_model_id", Text, nullable=False, unique=True, comment="fixed before the first create"),
    Column("labels", Text, nullable=False, server_default="{}", comment="JSON object of string labels"),
    Column("source_file", Text, nullable=False, comment="name of the dropped file"),
    Column("intake_id", Text, nullable=False, unique=True, comment="claim token of the intake that recorded it"),
    Column("operation_name", Text, comment="Gemini: tunedModels/{id}/operations/{op} once the create landed"),
    Column("remote_state", Text, comment="the service's state as last seen: TunedModel.state, JOB_STATE_…"),
    Column("total_steps", Integer),
    Column("completed_steps", Integer, nullable=False, server_default="0"),
    Column("last_loss", Loss, comment="meanLoss of the latest snapshot"),
    Column("attempts", Integer, nullable=False, server_default="0", comment="consecutive failed tries of this step"),
    Column("next_check_at", UtcDateTime, comment="when the scheduler next looks at the job (null: never)"),
    Column("last_error", Text, comment="the latest retried error, cleared on success"),
    Column("lease_owner", Text, comment="process instance working on the job's current step"),
    Column("lease_expires_at", UtcDateTime),
    Column("cancel_requested", Boolean, nullable=False, server_default="0"),
    Column("cancel_reason", Text, comment="user | deadline | stalled, once a cancel is under way"),
    Column("cancel_sent_at", UtcDateTime),
    Column("max_run_time", Float, comment="seconds; null: the daemon's default"),
    Column("stall_timeout", Float, comment="seconds; null: the daemon's default"),
    Column("error_code", Integer, comment="google.rpc code or HTTP status of the final error"),
    Column("error_status", Text, comment="the API's status name, e.g. INVALID_ARGUMENT"),
    Column("error_message", Text, comment="the API's own words, or the daemon's reason"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("submitted_at", UtcDateTime, comment="first create call"),
    Column("started_at", UtcDateTime, comment="create accepted (state running)"),
    Column("last_progress_at", UtcDateTime, comment="last time completed_steps grew"),
    Column("finished_at", UtcDateTime),
    Column("retry_of", Text, comment="the failed or cancelled job this one retries (orchestrator retry)"),
    # Facts a tuning service may fill (orchestrator.tuning.RemoteFacts), added by revision 0004.
    Column("remote_job", Text, comment="Vertex: projects/{n}/locations/{l}/tuningJobs/{id} once the create landed"),
    Column("remote_substate", Text, comment="what the remote job waits for or does, e.g. Vertex "
           "TUNING_JOB_STATE_WAITING_FOR_QUOTA"),
    Column("billable_tokens", Integer, comment="training tokens billed: the dataset's billable tokens x epochs"),
    Column("model_name", Text, comment="the tuned model: tunedModels/{id} (Gemini) or projects/…/models/{m}@{v}"),
    Column("endpoint", Text, comment="Vertex: the endpoint serving the tuned model"),
    Column("training_data_uri", Text, comment="Vertex: gs:// object of the uploaded training data"),
    Column("validation_data_uri", Text, comment="Vertex: gs:// object of the uploaded validation data"),
    Column("submit_sent_at", UtcDateTime, comment="latest create sent (committed before it): looked for until settled"),
    # Added by revision 0007.
    Column("working_since", UtcDateTime, comment="the service first seen working on the job, past any queue or "
           "quota wait: the origin of the step rate"),
    # Added by revision 0008.
    Column("dataset_example_count", Integer, comment="training examples as the service counted them (Vertex "
           "tuningDatasetExampleCount)"),
    CheckConstraint(f"state IN ({_STATES})", name="ck_jobs_state"),
    CheckConstraint(f"NOT (cancel_requested AND state IN ({_TERMINAL}))", name="ck_jobs_cancel_not_terminal"),
)
Index("ix_jobs_due", jobs.c.state, jobs.c.next_check_at)
Index("ix_jobs_retry_of", jobs.c.retry_of)

job_specs = Table(
    "job_specs",
    metadata,
    Column("job_id", Text, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("body", Text, nullable=False, comment="the tunedModels.create request body (JSON)"),
    Column("example_count", Integer, comment="training examples in the file; null for a dataset outside it (gs://)"),
    Column("file_sha256", Text, nullable=False),
    Column("file_bytes", Integer, nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("job_id", Text, ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("step", Integer, primary_key=True),
    Column("epoch", Integer, nullable=False),
    Column("mean_loss", Loss, nullable=False),
    Column("compute_time", Text, comment="the API's computeTime (RFC 3339)"),
    Column("recorded_at", UtcDateTime, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job_id", Text, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("from_state", Text, comment="null for the event that created the job"),
    Column("to_state", Text, nullable=False),
    Column("detail", Text, nullable=False, server_default="{}", comment="JSON: why, and the API's words"),
)
Index("ix_events_job", events.c.job_id, events.c.id)

rejections = Table(
    "rejections",
    metadata,
    Column("id", Text, primary_key=True, comment="short rejection id, shown by the CLI"),
    Column("file", Text, nullable=False, comment="name of the dropped file"),
    Column("rejected_file", Text, nullable=False, comment="its name in spool/rejected/ (beside NAME.error.json)"),
    Column("field", Text, nullable=False, comment="JSON path of the offending field; empty: the whole file"),
    Column("problem", Text, nullable=False, comment="the rule or limit that was broken"),
    Column("duplicate_of", Text, comment="for a duplicate: the job id already recorded"),
    Column("intake_id", Text, nullable=False, unique=True, comment="claim token of the intake that rejected it"),
    Column("rejected_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, comment="when a fixed file was resubmitted in its place"),
    Column("resubmitted_as", Text, comment="the inbox file name of that resubmission"),
)
Index("ix_rejections_rejected_at", rejections.c.rejected_at)
#: What became of a notification: waiting for (another) attempt, delivered, or given up.
NOTIFICATION_STATES = ("pending", "delivered", "gave_up")

notifications = Table(
    "notifications",
    metadata,
    Column("id", Text, primary_key=True, comment="the webhook-id header: the same on every attempt"),
    Column("job_id", Text, ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False),
    Column("event_id", Integer, ForeignKey("events.id", ondelete="CASCADE"), nullable=False, unique=True,
           comment="the state change announced: one notification per change, never two"),
    Column("type", Text, nullable=False, comment="job.succeeded, job.failed, job.cancelled or job.running"),
    Column("payload", Text, nullable=False, comment="the JSON body, fixed when the change was committed"),
    Column("state", Text, nullable=False, server_default="pending", comment="pending | delivered | gave_up"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UtcDateTime, comment="when the sender tries next (null once finished)"),
    Column("last_error", Text, comment="why the latest attempt failed"),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, comment="delivered or given up"),
    CheckConstraint(f"state IN ({', '.join(repr(s) for s in NOTIFICATION_STATES)})", name="ck_notifications_state"),
)
Index("ix_notifications_due", notifications.c.state, notifications.c.next_attempt_at)
Index("ix_notifications_job", notifications.c.job_id)

notification_attempts = Table(
    "notification_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("notification_id", Text, ForeignKey("notifications.id", ondelete="CASCADE"), nullable=False),
    Column("at", UtcDateTime, nullable=False),
    Column("outcome", Text, nullable=False, comment="delivered | failed | gone (410: the receiver wants no more)"),
    Column("status_code", Integer, comment="the receiver's HTTP status; null when there was no answer"),
    Column("error", Text, comment="why it failed, in words (never the URL or the secret)"),
    Column("seconds", Float, nullable=False, comment="how long the attempt took"),
)
Index("ix_notification_attempts_notification", notification_attempts.c.notification_id, notification_attempts.c.id)

daemons = Table(
    "daemons",
    metadata,
    Column("id", Text, primary_key=True, comment="the daemon instance (host:pid:random), as in jobs.lease_owner"),
    Column("host", Text, nullable=False),
    Column("pid", Integer, nullable=False),
    Column("spool", Text, nullable=False, comment="the spool folder it takes job files from"),
    Column("started_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False, comment="its last sign of life (every few seconds)"),
    Column("stopped_at", UtcDateTime, comment="a clean stop; null while it runs, or after it died"),
)

api_pauses = Table(
    "api_pauses",
    metadata,
    Column("api", Text, primary_key=True, comment="the API the pause holds for (its base URL)"),
    Column("paused_until", UtcDateTime, nullable=False, comment="no daemon calls it before this time"),
    Column("set_by", Text, nullable=False, comment="the daemon that was answered 429"),
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

#: Views, created by the migrations (their SQL lives there, frozen with the revision that made them):
#: ``job_status`` answers "what is happening" in one SELECT; ``loss_curve`` lists every snapshot.
VIEW_NAMES: tuple[str, ...] = ("job_status", "loss_curve")
