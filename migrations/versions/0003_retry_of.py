"""jobs.retry_of

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 17:20:00.000000

`orchestrator retry JOB` records a new attempt of a failed or cancelled job as a new job row (with
a new tuned-model id) that names the job it retries.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD/DROP COLUMN, not a batch (which on SQLite rebuilds the table under the views that read it).
    op.add_column("jobs", sa.Column(
        "retry_of", sa.Text(), nullable=True,
        comment="the failed or cancelled job this one retries (orchestrator retry)",
    ))
    op.create_index("ix_jobs_retry_of", "jobs", ["retry_of"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_jobs_retry_of", table_name="jobs")
    op.execute("ALTER TABLE jobs DROP COLUMN retry_of")
