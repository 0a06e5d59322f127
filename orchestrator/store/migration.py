"""Schema migrations that are all of a revision or nothing, on every backend.

Alembic runs each revision in its own transaction (``transaction_per_migration``) and stamps the
new version inside it, so a crash at any instant leaves the schema at the previous revision, never
between two. PostgreSQL makes DDL transactional by itself. SQLite can roll DDL back too, but
Python's ``sqlite3`` driver (before 3.12's ``autocommit``) commits implicitly around it; so, as
SQLAlchemy documents for pysqlite, the driver's own transaction handling is switched off and every
transaction is begun explicitly (``BEGIN IMMEDIATE``: the write lock is taken before the current
version is read, so two migrators cannot both apply the same revision).

Older builds did not do this, and a SIGKILL during their first start could leave some tables and
no recorded version. :func:`clear_interrupted_first_start` tells that case apart from a database
that holds anything of value (see its docstring for the rule), and either clears it or refuses.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Connection, Engine, create_engine, event, func, inspect, literal, pool, select, table
from sqlalchemy.engine import URL

from orchestrator.errors import OrchestratorError
from orchestrator.store.connection import sqlite_url
from orchestrator.store.schema import VIEW_NAMES, metadata

if TYPE_CHECKING:
    from alembic.config import Config

log = structlog.get_logger(__name__)

#: The table Alembic records the applied revision in.
VERSION_TABLE = "alembic_version"
#: The PostgreSQL advisory lock held while one daemon migrates a shared database (an arbitrary constant).
MIGRATION_LOCK = 0x6F72636D


class HalfMadeSchema(OrchestratorError):
    """The database has some of the orchestrator's tables but no recorded schema version."""


def scripts_folder() -> Path:
    """The Alembic scripts (``env.py``, ``versions/``), wherever this copy of the code runs from.

    An installed package has them as ``orchestrator.migrations`` (``setup.py`` maps the top-level
    ``migrations/`` there). A source checkout has them only at its top: that is what Python imports
    when it runs from the checkout (``python -m orchestrator``, ``python -m bench.…``), even with a
    regular ``pip install .`` in the environment, because the current folder comes first on
    ``sys.path``. So the package is asked first, and only when it has no such module (which happens
    only in a checkout) the folder beside the ``orchestrator`` package is used.
    """
    try:
        return Path(str(resources.files("orchestrator.migrations")))
    except ModuleNotFoundError:
        checkout = Path(__file__).resolve().parents[2] / "migrations"
        if not (checkout / "env.py").is_file():
            raise
        return checkout


def head_revision() -> str:
    """The newest schema revision this build knows, without importing Alembic (readers need it fast).

    Revision files are named after their revision, ``0003_retry_of.py`` for revision ``0003``, in
    one numbered chain, so the head is the largest number (a test holds this to Alembic's own head).
    """
    versions = scripts_folder() / "versions"
    return max(entry.name.partition("_")[0] for entry in versions.iterdir() if entry.name[:1].isdigit())


def migration_engine(url: str) -> Engine:
    """An engine whose transactions include DDL, whatever the backend (see the module docstring)."""
    engine = create_engine(url, poolclass=pool.NullPool)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _no_driver_transactions(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def alembic_config(database_url: str) -> Config:
    """The Alembic configuration of our migrations against ``database_url`` (a SQLAlchemy URL)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(scripts_folder()))
    config.attributes["database_url"] = database_url
    return config


def migrate(path: Path | URL, revision: str = "head") -> None:
    """Apply the migrations up to ``revision`` to a SQLite file or a PostgreSQL URL (blocking: run in a thread).

    Alembic is imported here, not at module level: the read-only CLI commands never need it, and
    it is a noticeable share of the daemon's start-up time.
    """
    from alembic import command

    if isinstance(path, URL):
        _migrate_shared(path, revision)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    url = sqlite_url(path)
    engine = migration_engine(url)
    try:
        cleared = clear_interrupted_first_start(engine, str(path))
    finally:
        engine.dispose()
    if cleared:
        log.warning("interrupted_first_start_cleared", database=str(path), dropped=cleared)
    command.upgrade(alembic_config(url), revision)


def _migrate_shared(url: URL, revision: str) -> None:
    """Migrate a database several daemons share, one daemon at a time.

    Daemons started together would otherwise run the same revision at once. A session-level advisory
    lock, held on a connection of its own for the whole upgrade, makes the others wait; they then find
    the schema at head and do nothing. (PostgreSQL's DDL is transactional: no half-made schema to clear.)
    """
    from alembic import command

    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as lock:
            lock.execute(select(func.pg_advisory_lock(MIGRATION_LOCK)))
            lock.commit()
            try:
                command.upgrade(alembic_config(url.render_as_string(hide_password=False)), revision)
            finally:
                lock.execute(select(func.pg_advisory_unlock(MIGRATION_LOCK)))
                lock.commit()
    finally:
        engine.dispose()


def clear_interrupted_first_start(engine: Engine, where: str) -> list[str]:
    """Drop what an interrupted first migration of an older build left behind; the names dropped.

    The rule: when no version is recorded, some of the objects present are the orchestrator's, and
    *every* object present is one of the orchestrator's tables or views and every such table is empty,
    the database can only be a first start that died while creating the schema: the daemon writes
    nothing before the migration has committed its version. Dropping those empty objects loses
    nothing, and the migration then builds them whole. Anything else (rows in a table, a table that
    is not ours) might be someone's data, so it raises :class:`HalfMadeSchema` naming the file and
    what to do, and changes nothing. The check and the drops are one transaction.
    """
    with engine.begin() as conn:
        inspector = inspect(conn)
        tables = set(inspector.get_table_names()) - {VERSION_TABLE}
        views = set(inspector.get_view_names())
        ours = set(metadata.tables) | set(VIEW_NAMES)
        if not (tables | views) & ours or _recorded_version(conn, inspector.has_table(VERSION_TABLE)):
            return []
        found = sorted((tables | views) & ours)
        present = f"{', '.join(found)} {'exists' if len(found) == 1 else 'exist'}"
        reasons = [f"{name} is not ours" for name in sorted((tables | views) - ours)]
        reasons += [f"{name} holds rows" for name in sorted(tables & ours) if _has_rows(conn, name)]
        if reasons:
            raise HalfMadeSchema(
                f"{where}: half-made schema ({present} but no schema version is recorded, as after an older "
                f"build was killed during its first start) and {'; '.join(reasons)}, so it was left untouched: "
                "move the file aside and start again, or remove those tables by hand"
            )
        quote = conn.dialect.identifier_preparer.quote
        for view in sorted(views):
            conn.exec_driver_sql(f"DROP VIEW {quote(view)}")
        for name in sorted(tables):
            conn.exec_driver_sql(f"DROP TABLE {quote(name)}")
    return sorted(tables | views)


def _recorded_version(conn: Connection, has_version_table: bool) -> bool:
    return has_version_table and _has_rows(conn, VERSION_TABLE)


def _has_rows(conn: Connection, name: str) -> bool:
    return conn.execute(select(literal(1)).select_from(table(name)).limit(1)).first() is not None
