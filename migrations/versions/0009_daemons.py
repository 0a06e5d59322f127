"""daemons and api_pauses

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 17:40:00.000000

Several daemons may share one (PostgreSQL) database: ``daemons`` records each one with its heartbeat,
so people and ``/metrics`` can tell a dead daemon from a live one; ``api_pauses`` holds the pause a
429 imposes on every daemon calling the same API.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "daemons",
        sa.Column("id", sa.Text(), nullable=False,
                  comment="the daemon instance (host:pid:random), as in jobs.lease_owner"),
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("spool", sa.Text(), nullable=False, comment="the spool folder it takes job files from"),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(), nullable=False, comment="its last sign of life (every few seconds)"),
        sa.Column("stopped_at", sa.DateTime(), nullable=True,
                  comment="a clean stop; null while it runs, or after it died"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "api_pauses",
        sa.Column("api", sa.Text(), nullable=False, comment="the API the pause holds for (its base URL)"),
        sa.Column("paused_until", sa.DateTime(), nullable=False, comment="no daemon calls it before this time"),
        sa.Column("set_by", sa.Text(), nullable=False, comment="the daemon that was answered 429"),
        sa.PrimaryKeyConstraint("api"),
    )


def downgrade() -> None:
    op.drop_table("api_pauses")
    op.drop_table("daemons")
