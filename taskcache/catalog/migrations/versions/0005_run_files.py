"""Schema version 5: the files and folders each run read and wrote (issue 12).

A hit checks the files a run read and puts back the files it wrote. Runs from before have
none recorded, so they stay servable as before.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_files",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("runs.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("size", sa.BigInteger()),
        sa.Column("mtime_ns", sa.BigInteger()),
        sa.Column("ctime_ns", sa.BigInteger()),
        sa.Column("inode", sa.BigInteger()),
        sa.Column("mode", sa.Integer()),
        sa.Column("content_hash", sa.String(128)),
        sa.Column("racy", sa.Boolean(), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_run_files_run_id", "run_files", ["run_id"], if_not_exists=True)
