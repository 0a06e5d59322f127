"""The status database: the only package that speaks SQL.

``open_store`` gives the daemon its single writer (after applying migrations); ``open_reader``
gives the CLI and status pages read-only connections that never block the daemon.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from orchestrator.config import DatabaseSettings
from orchestrator.errors import OrchestratorError
from orchestrator.store.connection import reader_engine
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

__all__ = [
    "KEEP",
    "NO_CHANGES",
    "Announced",
    "DatabaseNotReady",
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
    "migrate",
    "open_reader",
    "open_store",
]


@asynccontextmanager
async def open_store(
    settings: DatabaseSettings, observer: StoreObserver | None = None, announced: Announced | None = None
) -> AsyncIterator[SqlStore]:
    """The migrated database's writer; ``observer`` hears what it commits (see :class:`StoreObserver`), and
    changes into ``announced`` states write webhook notifications."""
    await asyncio.to_thread(migrate, settings.path)
    store = SqlStore(settings.path, settings.busy_timeout, observer, announced)
    try:
        yield store
    finally:
        await store.dispose()


class DatabaseNotReady(OrchestratorError):
    """The status database does not exist yet, or its schema is still being created or upgraded."""


@asynccontextmanager
async def open_reader(settings: DatabaseSettings) -> AsyncIterator[StatusReader]:
    """A read-only view of the database; fails clearly when the daemon has not created it yet."""
    if not settings.path.exists():
        raise DatabaseNotReady(f"no status database at {settings.path} (has the daemon run yet?)")
    engine = reader_engine(settings.path, settings.busy_timeout)
    try:
        reader = StatusReader(engine)
        revision, head = await reader.schema_revision(), head_revision()
        if revision is None:
            raise DatabaseNotReady(
                f"{settings.path} has no schema yet (the daemon is creating it; or run: orchestrator db upgrade)"
            )
        if revision < head:  # mid-upgrade (one revision at a time), or not upgraded yet: columns are missing
            raise DatabaseNotReady(
                f"{settings.path} is at schema revision {revision}, this build reads {head} (the daemon upgrades "
                "it as it starts; or run: orchestrator db upgrade)"
            )
        yield reader
    finally:
        await engine.dispose()
