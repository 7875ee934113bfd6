"""Schema version 3: artifacts.restored_hash.

The hash of a value as decoding its file gives it back, when that differs from the hash of
the value that was stored (pickle drops some state of some types, such as scikit-learn's
``Bunch``): a hit that restores it tells the hasher, so runs downstream key as on the miss.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("artifacts")}
    if "restored_hash" not in columns:  # as 0002's if_not_exists: safe to run twice
        op.add_column("artifacts", sa.Column("restored_hash", sa.String(128), nullable=True))
