"""Alembic environment: synchronous, batch mode, our schema as the target, one transaction per revision.

Migrations run through the stdlib ``sqlite3`` driver even though the daemon uses aiosqlite: they
run once at start-up in a worker thread, and a synchronous env keeps Alembic's CLI (``alembic
check``, ``alembic upgrade``) working unchanged. The database URL comes from the Alembic config
(``config.attributes["database_url"]``, set by ``orchestrator.store.migrate``) or, for the plain
``alembic`` command, from the orchestrator settings (``ORCHESTRATOR_CONFIG`` file and ``ORCHESTRATOR_DATABASE_PATH``).

Every revision is applied in its own transaction together with the version stamp that records it
(``transaction_per_migration``, ``transactional_ddl``), on an engine whose transactions really do
include DDL on every backend (``orchestrator.store.migration.migration_engine``): a crash half-way
through a revision leaves the database at the revision before it, which the next start upgrades.
"""

from __future__ import annotations

import os
from pathlib import Path

from alembic import context

from orchestrator.store.migration import migration_engine
from orchestrator.store.schema import VIEW_NAMES, metadata

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if isinstance(url, str):
        return url
    from orchestrator.config import load_settings

    config_file = os.environ.get("ORCHESTRATOR_CONFIG")
    settings = load_settings(Path(config_file) if config_file else None)
    return f"sqlite:///{settings.database.path.resolve()}"


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """Views are created by hand in the migrations; autogenerate must not see them as tables."""
    return not (type_ == "table" and name in VIEW_NAMES)


def run_migrations() -> None:
    engine = migration_engine(_database_url())
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=True,
            include_object=_include_object,
            compare_type=True,
            transactional_ddl=True,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run_migrations()
