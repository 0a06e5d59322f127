"""dataset example count

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 18:50:00

A Vertex job whose training data is a ``gs://`` URI has no examples in its file: the daemon cannot count
them, and ``job_specs.example_count`` (NOT NULL until now) recorded 0. The column becomes nullable (null:
the examples are not in the file), existing zeros become null (no accepted file has 0 examples), and
``jobs.dataset_example_count`` records the count the service reports (Vertex
``tuningDataStats.supervisedTuningDataStats.tuningDatasetExampleCount``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FILE_COUNT = "training examples in the file; null for a dataset outside it (gs://)"


def upgrade() -> None:
    # ``job_specs`` is read by no view: a batch copy of it (SQLite cannot alter a column's nullability) is safe.
    with op.batch_alter_table("job_specs", schema=None) as batch_op:
        batch_op.alter_column("example_count", existing_type=sa.Integer(), nullable=True, comment=FILE_COUNT)
    op.execute("UPDATE job_specs SET example_count = NULL WHERE example_count = 0")
    # One plain ADD COLUMN on ``jobs``: a batch copy would break the views that read it.
    op.add_column("jobs", sa.Column(
        "dataset_example_count", sa.Integer(), nullable=True,
        comment="training examples as the service counted them (Vertex tuningDatasetExampleCount)",
    ))


def downgrade() -> None:
    op.execute("ALTER TABLE jobs DROP COLUMN dataset_example_count")
    op.execute("UPDATE job_specs SET example_count = 0 WHERE example_count IS NULL")
    with op.batch_alter_table("job_specs", schema=None) as batch_op:
        batch_op.alter_column("example_count", existing_type=sa.Integer(), nullable=False, comment=None,
                              existing_comment=FILE_COUNT)
