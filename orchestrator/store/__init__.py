"""The status database: the only package that speaks SQL.

``open_store`` gives the daemon its job store (after applying migrations): the single SQLite writer,
or a PostgreSQL store several daemons share; ``open_reader`` gives the CLI and status pages
read-only connections that never block the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

import sqlalchemy.exc
from sqlalchemy.engine import URL, make_url

from orchestrator.config import DatabaseSettings
from orchestrator.errors import OrchestratorError
from orchestrator.logs import register_secret, scrub
from orchestrator.store.connection import postgres_reader_engine, reader_engine
from orchestrator.store.migration import HalfMadeSchema, alembic_config, head_revision, migrate
from orchestrator.store.outbox import Announced
from orchestrator.store.protocol import (
    KEEP,
    NO_CHANGES,
    DeliveryAttempt,
    DueNotification,
    DuplicateJob,
    JobChanges,
    JobStore,
    NewJob,
    PruneResult,
    StoreObserver,
)
from orchestrator.store.reader import JobDetail, StatusReader
from orchestrator.store.sql import SqlStore

if TYPE_CHECKING:
    from orchestrator.store.postgres import PostgresStore

__all__ = [
    "KEEP",
    "NO_CHANGES",
    "Announced",
    "DatabaseNotReady",
    "DatabaseUnreachable",
    "DeliveryAttempt",
    "DueNotification",
    "DuplicateJob",
    "HalfMadeSchema",
    "JobChanges",
    "JobDetail",
    "JobStore",
    "NewJob",
    "PruneResult",
    "SqlStore",
    "StatusReader",
    "StoreObserver",
    "alembic_config",
    "database_url",
    "describe",
    "migrate",
    "open_reader",
    "open_store",
]


class DatabaseNotReady(OrchestratorError):
    """The status database does not exist yet, or its schema is still being created or upgraded."""


def database_url(settings: DatabaseSettings) -> URL:
    """The SQLAlchemy URL of the configured database: ``url`` (PostgreSQL through psycopg 3) or ``path``.

    A password in the URL is registered as a secret first, so no log line or error text shows it.
    """
    if not settings.url:
        return make_url(f"sqlite:///{settings.path.resolve()}")
    url = make_url(settings.url)
    if url.password:
        register_secret(str(url.password))
    return url.set(drivername="postgresql+psycopg")


class DatabaseUnreachable(OrchestratorError):
    """The PostgreSQL server refused or did not answer (or its driver is not installed)."""


@contextmanager
def reaching(settings: DatabaseSettings) -> Iterator[None]:
    """Turn a failure to connect to the configured server into one line naming it (password masked).

    Only the first contact (the migrations, a reader's schema check) goes through this: once the
    daemon runs, a database that goes away is the scheduler's to retry, as with SQLite.
    """
    try:
        if settings.url:
            import psycopg  # noqa: F401 - only to say clearly that it is missing
        yield
    except ImportError:
        raise DatabaseUnreachable(
            "[database] url names a PostgreSQL database, and its driver is not installed: "
            "pip install 'orchestrator[postgresql]'"
        ) from None
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError) as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0] if str(exc.orig or exc).strip() else type(exc).__name__
        raise DatabaseUnreachable(f"cannot reach the database {describe(settings)}: {scrub(reason)}") from None


def describe(settings: DatabaseSettings) -> str:
    """The database for logs and messages: the path, or the URL with any password masked."""
    if not settings.url:
        return str(settings.path)
    return database_url(settings).set(drivername="postgresql").render_as_string(hide_password=True)


@asynccontextmanager
async def open_store(
    settings: DatabaseSettings, observer: StoreObserver | None = None, announced: Announced | None = None, *,
    upgrade: bool = True,
) -> AsyncIterator[JobStore]:
    """The database's job store, migrated first; ``observer`` hears what it commits (see :class:`StoreObserver`),
    and changes into ``announced`` states write webhook notifications.

    ``upgrade=False`` (the CLI's writes: cancel, prune) leaves the schema to the daemon, and fails with
    :class:`DatabaseNotReady` when there is no SQLite file yet. A PostgreSQL server that cannot be
    reached (or a missing driver) is a :class:`DatabaseUnreachable` naming it, whichever the case.
    """
    store: SqlStore | PostgresStore
    if settings.url:
        from orchestrator.store.postgres import PostgresStore

        url = database_url(settings)
        with reaching(settings):
            if upgrade:
                await asyncio.to_thread(migrate, url)
            store = PostgresStore(url, observer, announced)
            if not upgrade:
                await store.connect()
    else:
        if upgrade:
            await asyncio.to_thread(migrate, settings.path)
        elif not settings.path.exists():
            raise DatabaseNotReady(f"no status database at {settings.path} (has the daemon run yet?)")
        store = SqlStore(settings.path, settings.busy_timeout, observer, announced,
                         wal_checkpoint_bytes=settings.wal_checkpoint_bytes)
    try:
        yield store
    finally:
        await store.dispose()


@asynccontextmanager
async def open_reader(settings: DatabaseSettings) -> AsyncIterator[StatusReader]:
    """A read-only view of the database; fails clearly when the daemon has not created it yet."""
    if settings.url:
        with reaching(settings):
            engine = postgres_reader_engine(database_url(settings))
    elif not settings.path.exists():
        raise DatabaseNotReady(f"no status database at {settings.path} (has the daemon run yet?)")
    else:
        engine = reader_engine(settings.path, settings.busy_timeout)
    try:
        reader = StatusReader(engine)
        with reaching(settings):
            revision = await reader.schema_revision()
        head = head_revision()
        if revision is None:
            raise DatabaseNotReady(
                f"{describe(settings)} has no schema yet (the daemon is creating it; or run: orchestrator db upgrade)"
            )
        if revision < head:  # mid-upgrade (one revision at a time), or not upgraded yet: columns are missing
            raise DatabaseNotReady(
                f"{describe(settings)} is at schema revision {revision}, this build reads {head} (the daemon upgrades "
                "it as it starts; or run: orchestrator db upgrade)"
            )
        yield reader
    finally:
        await engine.dispose()
