"""column comments on PostgreSQL

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:30:00.000000

Revision 0004 changed the comments of ``jobs.operation_name`` and ``jobs.remote_state`` in the schema
but not in the database: SQLite keeps no column comments, PostgreSQL does (and ``alembic check``
compares them), so on PostgreSQL this revision brings them in line. On SQLite it does nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COMMENTS = {  # column: (before, after)
    "operation_name": ("tunedModels/{id}/operations/{op} once the create landed",
                       "Gemini: tunedModels/{id}/operations/{op} once the create landed"),
    "remote_state": ("the API's TunedModel.state as last seen",
                     "the service's state as last seen: TunedModel.state, JOB_STATE_…"),
}


def _comment(which: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite stores no column comments
    for column, texts in COMMENTS.items():
        op.alter_column("jobs", column, existing_type=sa.Text(), existing_nullable=True, comment=texts[which],
                        existing_comment=texts[1 - which])


def upgrade() -> None:
    _comment(1)


def downgrade() -> None:
    _comment(0)
