"""remote facts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 17:30:00

Columns a tuning service may fill (orchestrator.tuning.RemoteFacts): the Vertex tuning job, its
sub-state, billable tokens, the tuned model and its endpoint, the uploaded training data, and when
the latest submission was sent. ``job_status`` shows them; its ``tuned_model`` is now the service's
own name for the model (``model_name``), which existing Gemini rows get from their tuned-model id.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOB_STATUS_VIEW = """
CREATE VIEW job_status AS
SELECT
    j.id,
    j.state,
    j.display_name,
    j.model_name AS tuned_model,
    j.operation_name,
    j.remote_job,
    j.remote_state,
    j.remote_substate,
    j.completed_steps,
    j.total_steps,
    CASE WHEN j.total_steps > 0 THEN ROUND(100.0 * j.completed_steps / j.total_steps, 1) END AS progress_pct,
    j.last_loss,
    (SELECT COUNT(*) FROM snapshots s WHERE s.job_id = j.id) AS snapshot_count,
    j.billable_tokens,
    j.endpoint,
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

#: The view as revision 0001 made it, restored by the downgrade.
JOB_STATUS_VIEW_0001 = """
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


def _columns() -> tuple[sa.Column[object], ...]:
    """The new columns (fresh objects each call: a Column belongs to one table)."""
    return (
        sa.Column("remote_job", sa.Text(), nullable=True,
                  comment="Vertex: projects/{n}/locations/{l}/tuningJobs/{id} once the create landed"),
        sa.Column("remote_substate", sa.Text(), nullable=True,
                  comment="what the remote job waits for or does, e.g. Vertex TUNING_JOB_STATE_WAITING_FOR_QUOTA"),
        sa.Column("billable_tokens", sa.Integer(), nullable=True,
                  comment="training tokens billed: the dataset's billable tokens x epochs"),
        sa.Column("model_name", sa.Text(), nullable=True,
                  comment="the tuned model: tunedModels/{id} (Gemini) or projects/…/models/{m}@{v}"),
        sa.Column("endpoint", sa.Text(), nullable=True, comment="Vertex: the endpoint serving the tuned model"),
        sa.Column("training_data_uri", sa.Text(), nullable=True,
                  comment="Vertex: gs:// object of the uploaded training data"),
        sa.Column("validation_data_uri", sa.Text(), nullable=True,
                  comment="Vertex: gs:// object of the uploaded validation data"),
        sa.Column("submit_sent_at", sa.DateTime(), nullable=True,
                  comment="latest create sent (committed before it): looked for until settled"),
    )


def upgrade() -> None:
    op.execute("DROP VIEW job_status")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        for column in _columns():
            batch_op.add_column(column)
    # Every job so far is a Gemini job: its model is tunedModels/{id} once a create was sent.
    op.execute("UPDATE jobs SET model_name = 'tunedModels/' || tuned_model_id WHERE state != 'queued'")
    op.execute(JOB_STATUS_VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW job_status")
    # ALTER TABLE … DROP COLUMN (SQLite 3.35+) in place: a batch copy of ``jobs`` would break the
    # ``loss_curve`` view that reads it.
    for column in reversed(_columns()):
        op.execute(f"ALTER TABLE jobs DROP COLUMN {column.name}")
    op.execute(JOB_STATUS_VIEW_0001)
