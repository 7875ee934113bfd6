"""Schema version 2: an index on runs (task, status).

Filtering runs by task and status (the run browser, ``taskcache.runs``) used the task index
alone and scanned every run of the task.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_runs_task_status", "runs", ["task", "status"], if_not_exists=True)
