"""Alembic migrations of the status database (shipped in the wheel as ``orchestrator.migrations``)."""
