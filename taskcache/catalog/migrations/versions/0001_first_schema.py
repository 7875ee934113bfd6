"""Schema version 1, the first released catalog: runs, tags, artifacts, inputs, state history.

Catalogs written before Alembic carry ``schema_info.version`` and no ``alembic_version``:
they are stamped at the revision of their version, then upgraded. A new catalog is created
from the models and stamped at the head, so this revision only builds tables for a database
someone upgrades from nothing by hand.

Revision ID: 0001
Revises:
"""

from alembic import op

from taskcache.catalog.tables import Base

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    Base.metadata.create_all(op.get_bind())
