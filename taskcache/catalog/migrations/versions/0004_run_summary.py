"""Schema version 4: the ``run_summary`` table.

The summary (runs by status and task, hits, time saved, disk used) scanned every run and
artifact, which took most of a second on a million runs; it is now a small table, one row
per (task, status), kept in the same transactions as the runs (``catalog/summary.py``) and
computed here once from the runs already there.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

from taskcache.catalog import summary

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_summary",
        sa.Column("task", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(16), primary_key=True),
        sa.Column("runs", sa.BigInteger, nullable=False),
        sa.Column("hits", sa.BigInteger, nullable=False),
        sa.Column("time_saved", sa.Float, nullable=False),
        sa.Column("disk_bytes", sa.BigInteger, nullable=False),
        if_not_exists=True,
    )
    summary.recompute(op.get_bind())
