"""Alembic migrations; run them with ``flask db upgrade``."""
