"""rejections

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 17:20:00.000000

A row for every job file the intake rejected, so the tools can list them and a fixed file can be
resubmitted in a rejection's place (`orchestrator rejected`, `orchestrator resubmit`).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rejections",
        sa.Column("id", sa.Text(), nullable=False, comment="short rejection id, shown by the CLI"),
        sa.Column("file", sa.Text(), nullable=False, comment="name of the dropped file"),
        sa.Column(
            "rejected_file", sa.Text(), nullable=False, comment="its name in spool/rejected/ (beside NAME.error.json)"
        ),
        sa.Column(
            "field", sa.Text(), nullable=False, comment="JSON path of the offending field; empty: the whole file"
        ),
        sa.Column("problem", sa.Text(), nullable=False, comment="the rule or limit that was broken"),
        sa.Column("duplicate_of", sa.Text(), nullable=True, comment="for a duplicate: the job id already recorded"),
        sa.Column(
            "intake_id", sa.Text(), nullable=False, comment="claim token of the intake that rejected it"
        ),
        sa.Column("rejected_at", sa.DateTime(), nullable=False),
        sa.Column(
            "resolved_at", sa.DateTime(), nullable=True, comment="when a fixed file was resubmitted in its place"
        ),
        sa.Column("resubmitted_as", sa.Text(), nullable=True, comment="the inbox file name of that resubmission"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("intake_id"),
    )
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.create_index("ix_rejections_rejected_at", ["rejected_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.drop_index("ix_rejections_rejected_at")
    op.drop_table("rejections")
