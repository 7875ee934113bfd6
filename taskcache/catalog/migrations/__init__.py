"""Alembic's script folder for the catalog schema: one revision per schema version, named by
the version number (``0002`` upgrades a catalog to schema version 2). ``catalog/schema.py``
runs them; add a revision with ``alembic revision`` pointed at this folder (see env.py)."""
