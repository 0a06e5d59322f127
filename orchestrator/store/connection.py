"""How the status database is opened: pragmas, the readers' engines and the writer's thread.

Readers (the CLI, the status pages) use SQLAlchemy's async engine over aiosqlite, read-only. The
daemon's writer does not: every statement through aiosqlite is a round trip to its thread, and with
SQLAlchemy's async layer on top a three-statement transaction cost ~1.2 ms of CPU, several times the
HTTP poll it records (BENCHMARKS.md). So the writer is one synchronous SQLAlchemy connection owned by
one thread, and each transaction is a plain function run there: one hop per transaction, whatever
it contains, and nothing else ever touches that connection.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy
from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

T = TypeVar("T")


def sqlite_url(path: Path, *, driver: str = "pysqlite", read_only: bool = False) -> str:
    """The SQLAlchemy URL of the database file; read-only opens it with ``mode=ro``."""
    if read_only:
        return f"sqlite+{driver}:///file:{path.resolve()}?mode=ro&uri=true"
    return f"sqlite+{driver}:///{path.resolve()}"


def _configure(engine: Engine, busy_timeout: float, *, read_only: bool) -> None:
    """Pragmas on every new connection, and ``BEGIN IMMEDIATE`` for the writer.

    The driver's own transaction handling is switched off (``isolation_level = None``) so that the
    ``begin`` hook below decides how a transaction starts: a writer takes the lock up front instead
    of failing half-way through a transaction that another process started writing first.
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if not read_only:
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
        cursor.close()

    begin = "BEGIN" if read_only else "BEGIN IMMEDIATE"

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the driver's cursor: through SQLAlchemy's execution machinery this one statement cost
        # as much as the transaction's real work.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(begin)
        cursor.close()


def reader_engine(path: Path, busy_timeout: float) -> AsyncEngine:
    """A read-only async engine: it can never take the write lock, and never blocks the daemon."""
    engine = create_async_engine(sqlite_url(path, driver="aiosqlite", read_only=True), pool_size=2, max_overflow=0)
    _configure(engine.sync_engine, busy_timeout, read_only=True)
    return engine


def postgres_reader_engine(url: URL) -> AsyncEngine:
    """A read-only async engine on PostgreSQL (psycopg 3): every transaction is ``READ ONLY``."""
    return create_async_engine(url, pool_size=2, max_overflow=0, pool_pre_ping=True,
                               connect_args={"options": "-c default_transaction_read_only=on"})


class WriterThread:
    """The one writer connection, and the one thread that ever uses it.

    :meth:`run` executes a function in a transaction there (``BEGIN IMMEDIATE`` … ``COMMIT``, or
    ``ROLLBACK`` when it raises) and hands back its result; :meth:`run_on_driver` does the same with
    the ``sqlite3`` connection underneath, for the plain SQL of the hot path. The connection is opened
    on first use, in that thread; a connection SQLAlchemy invalidated (a disk error) is replaced on
    the next call. A caller cancelled while its transaction runs does not stop it: the transaction
    ends on its own.
    """

    def __init__(self, path: Path, busy_timeout: float) -> None:
        # StaticPool: exactly one connection, made in (and only ever used from) the writer thread.
        self._engine = sqlalchemy.create_engine(sqlite_url(path), poolclass=StaticPool)
        _configure(self._engine, busy_timeout, read_only=False)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="orchestrator-db-writer")
        self._connection: Connection | None = None

    async def run(self, work: Callable[[Connection], T]) -> T:
        """``work(connection)`` in one write transaction, in the writer thread."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._transaction, work)

    async def run_on_driver(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """Like :meth:`run`, but ``work`` gets the driver's ``sqlite3`` connection (the hot path's SQL).

        ``durable=False`` commits without the fsync (``synchronous = NORMAL`` for that transaction):
        for writes that need not survive a crash. A crash loses such a commit only if no durable
        commit followed it; it can never corrupt the database or reorder commits.
        """
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._driver_transaction, work, durable)

    async def run_outside_transaction(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """``work(driver_connection)`` in the writer thread, with no transaction open (a checkpoint)."""
        return await asyncio.get_running_loop().run_in_executor(self._thread, self._raw, work)

    def _open(self) -> Connection:
        if self._connection is None or self._connection.invalidated:
            if self._connection is not None:
                self._connection.close()
            self._connection = self._engine.connect()
        return self._connection

    def _transaction(self, work: Callable[[Connection], T]) -> T:
        connection = self._open()
        with connection.begin():
            return work(connection)

    def _driver_transaction(self, work: Callable[[sqlite3.Connection], T], durable: bool) -> T:
        driver = self._driver()
        with self._synchronous(durable):
            driver.execute("BEGIN IMMEDIATE")
            try:
                result = work(driver)
                driver.execute("COMMIT")
            except BaseException:
                if driver.in_transaction:
                    driver.execute("ROLLBACK")
                raise
            return result

    @contextmanager
    def _synchronous(self, durable: bool) -> Iterator[None]:
        """``synchronous = NORMAL`` (no fsync at commit) around a transaction that need not be durable."""
        if durable:
            yield
            return
        driver = self._driver()
        driver.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            driver.execute("PRAGMA synchronous = FULL")

    def _driver(self) -> sqlite3.Connection:
        driver = self._open().connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)
        return driver

    def _raw(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return work(self._driver())

    async def close(self) -> None:
        """Close the connection (in its thread) and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=True)

    def _close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._engine.dispose()
