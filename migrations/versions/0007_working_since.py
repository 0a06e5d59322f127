"""working since

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 18:40:00

``jobs.working_since``: when the tuning service was first seen working on a job, past any queue or
quota wait (a Vertex job can sit PENDING, waiting for quota, long after its create). The scheduler
measures the step rate that paces its polls from it, not from ``started_at``, which counts the wait.
Jobs that started before this revision get their ``started_at``: what the rate was measured from.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # One plain ADD COLUMN (no batch copy of ``jobs``, which the views read).
    op.add_column("jobs", sa.Column(
        "working_since", sa.DateTime(), nullable=True,
        comment="the service first seen working on the job, past any queue or quota wait: the origin of the step rate",
    ))
    op.execute("UPDATE jobs SET working_since = started_at WHERE started_at IS NOT NULL")


def downgrade() -> None:
    op.execute("ALTER TABLE jobs DROP COLUMN working_since")
