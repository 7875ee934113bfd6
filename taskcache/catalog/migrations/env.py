"""Alembic environment: taskcache hands over the connection (already in the one write
transaction that creates or migrates the catalog: BEGIN IMMEDIATE on SQLite, the write lock
on PostgreSQL), so every revision runs under the lock that makes concurrent first opens
safe. SQLite alters tables in batch mode."""

from alembic import context

from taskcache.catalog.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
