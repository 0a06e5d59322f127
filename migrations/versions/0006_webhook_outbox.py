"""webhook outbox

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 17:20:00

The notifications outbox (one row per announced state change, written in the transaction of the
change) and the record of every delivery attempt.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notifications",
        sa.Column("id", sa.Text(), nullable=False, comment="the webhook-id header: the same on every attempt"),
        sa.Column("job_id", sa.Text(), nullable=False),
        sa.Column(
            "event_id",
            sa.Integer(),
            nullable=False,
            comment="the state change announced: one notification per change, never two",
        ),
        sa.Column(
            "type", sa.Text(), nullable=False, comment="job.succeeded, job.failed, job.cancelled or job.running"
        ),
        sa.Column("payload", sa.Text(), nullable=False, comment="the JSON body, fixed when the change was committed"),
        sa.Column(
            "state", sa.Text(), server_default="pending", nullable=False, comment="pending | delivered | gave_up"
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at", sa.DateTime(), nullable=True, comment="when the sender tries next (null once finished)"
        ),
        sa.Column("last_error", sa.Text(), nullable=True, comment="why the latest attempt failed"),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("finished_at", sa.DateTime(), nullable=True, comment="delivered or given up"),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'gave_up')", name="ck_notifications_state"),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index("ix_notifications_due", ["state", "next_attempt_at"], unique=False)
        batch_op.create_index("ix_notifications_job", ["job_id"], unique=False)

    op.create_table(
        "notification_attempts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("notification_id", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column(
            "outcome",
            sa.Text(),
            nullable=False,
            comment="delivered | failed | gone (410: the receiver wants no more)",
        ),
        sa.Column(
            "status_code",
            sa.Integer(),
            nullable=True,
            comment="the receiver's HTTP status; null when there was no answer",
        ),
        sa.Column(
            "error", sa.Text(), nullable=True, comment="why it failed, in words (never the URL or the secret)"
        ),
        sa.Column("seconds", sa.Float(), nullable=False, comment="how long the attempt took"),
        sa.ForeignKeyConstraint(["notification_id"], ["notifications.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("notification_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_notification_attempts_notification", ["notification_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("notification_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_notification_attempts_notification")
    op.drop_table("notification_attempts")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_job")
        batch_op.drop_index("ix_notifications_due")
    op.drop_table("notifications")
