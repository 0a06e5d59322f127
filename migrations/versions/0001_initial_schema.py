"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-21 09:24:10.715609

The jobs queue and status tables, and the job_status and loss_curve views.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_STATUS_VIEW = """
CREATE VIEW job_status AS
SELECT
    j.id,
    j.state,
    j.display_name,
    'tunedModels/' || j.tuned_model_id AS tuned_model,
    j.operation_name,
    j.completed_steps,
    j.total_steps,
    CASE WHEN j.total_steps > 0 THEN ROUND(100.0 * j.completed_steps / j.total_steps, 1) END AS progress_pct,
    j.last_loss,
    (SELECT COUNT(*) FROM snapshots s WHERE s.job_id = j.id) AS snapshot_count,
    j.attempts,
    j.last_error,
    j.error_status,
    j.error_message,
    j.cancel_requested,
    j.priority,
    j.labels,
    j.job_key,
    j.source_file,
    j.created_at,
    j.started_at,
    j.updated_at,
    j.finished_at
FROM jobs j
"""

LOSS_CURVE_VIEW = """
CREATE VIEW loss_curve AS
SELECT s.job_id, j.display_name, s.step, s.epoch, s.mean_loss, s.compute_time
FROM snapshots s JOIN jobs j ON j.id = s.job_id
"""


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", sa.Text(), nullable=False, comment="short job id, shown by the CLI"),
        sa.Column("job_key", sa.Text(), nullable=False, comment="idempotency key: orchestrator.job_key or sha256"),
        sa.Column("state", sa.Text(), nullable=False, comment="lifecycle state (see jobs.JobState)"),
        sa.Column("priority", sa.Integer(), server_default="0", nullable=False),
        sa.Column("display_name", sa.Text(), nullable=True),
        sa.Column("base_model", sa.Text(), nullable=False),
        sa.Column("tuned_model_id", sa.Text(), nullable=False, comment="fixed before the first create"),
        sa.Column("labels", sa.Text(), server_default="{}", nullable=False, comment="JSON object of string labels"),
        sa.Column("source_file", sa.Text(), nullable=False, comment="name of the dropped file"),
        sa.Column("intake_id", sa.Text(), nullable=False, comment="claim token of the intake that recorded it"),
        sa.Column(
            "operation_name",
            sa.Text(),
            nullable=True,
            comment="tunedModels/{id}/operations/{op} once the create landed",
        ),
        sa.Column("remote_state", sa.Text(), nullable=True, comment="the API's TunedModel.state as last seen"),
        sa.Column("total_steps", sa.Integer(), nullable=True),
        sa.Column("completed_steps", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_loss", sa.Float(), nullable=True, comment="meanLoss of the latest snapshot"),
        sa.Column(
            "attempts",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="consecutive failed tries of this step",
        ),
        sa.Column(
            "next_check_at",
            sa.DateTime(),
            nullable=True,
            comment="when the scheduler next looks at the job (null: never)",
        ),
        sa.Column("last_error", sa.Text(), nullable=True, comment="the latest retried error, cleared on success"),
        sa.Column(
            "lease_owner", sa.Text(), nullable=True, comment="process instance working on the job's current step"
        ),
        sa.Column("lease_expires_at", sa.DateTime(), nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), server_default="0", nullable=False),
        sa.Column(
            "cancel_reason", sa.Text(), nullable=True, comment="user | deadline | stalled, once a cancel is under way"
        ),
        sa.Column("cancel_sent_at", sa.DateTime(), nullable=True),
        sa.Column("max_run_time", sa.Float(), nullable=True, comment="seconds; null: the daemon's default"),
        sa.Column("stall_timeout", sa.Float(), nullable=True, comment="seconds; null: the daemon's default"),
        sa.Column(
            "error_code", sa.Integer(), nullable=True, comment="google.rpc code or HTTP status of the final error"
        ),
        sa.Column("error_status", sa.Text(), nullable=True, comment="the API's status name, e.g. INVALID_ARGUMENT"),
        sa.Column("error_message", sa.Text(), nullable=True, comment="the API's own words, or the daemon's reason"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=True, comment="first create call"),
        sa.Column("started_at", sa.DateTime(), nullable=True, comment="create accepted (state running)"),
        sa.Column("last_progress_at", sa.DateTime(), nullable=True, comment="last time completed_steps grew"),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint(
            "NOT (cancel_requested AND state IN ('succeeded', 'failed', 'cancelled'))",
            name="ck_jobs_cancel_not_terminal",
        ),
        sa.CheckConstraint(
            "state IN ('queued', 'submitting', 'running', 'cancelling', 'succeeded', 'failed', 'cancelled')",
            name="ck_jobs_state",
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intake_id"),
        sa.UniqueConstraint("job_key"),
        sa.UniqueConstraint("tuned_model_id"),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_due", ["state", "next_check_at"], unique=False)

    op.create_table(
        "meta",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("from_state", sa.Text(), nullable=True, comment="null for the event that created the job"),
        sa.Column("to_state", sa.Text(), nullable=False),
        sa.Column("detail", sa.Text(), server_default="{}", nullable=False, comment="JSON: why, and the API's words"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_job", ["job_id", "id"], unique=False)

    op.create_table(
        "job_specs",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False, comment="the tunedModels.create request body (JSON)"),
        sa.Column("example_count", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.Text(), nullable=False),
        sa.Column("file_bytes", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )
    op.create_table(
        "snapshots",
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column("step", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("mean_loss", sa.Float(), nullable=False),
        sa.Column("compute_time", sa.Text(), nullable=True, comment="the API's computeTime (RFC 3339)"),
        sa.Column("recorded_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id", "step"),
    )
    op.execute(JOB_STATUS_VIEW)
    op.execute(LOSS_CURVE_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW loss_curve")
    op.execute("DROP VIEW job_status")
    op.drop_table("snapshots")
    op.drop_table("job_specs")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_job")

    op.drop_table("events")
    op.drop_table("meta")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_due")

    op.drop_table("jobs")
