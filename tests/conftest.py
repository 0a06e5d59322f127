"""Fixtures shared by every test layer: a fast emulator, settings in a temporary tree, a running daemon.

Everything binds to 127.0.0.1 on a free port and lives under pytest's ``tmp_path``; waits are
bounded in time and end as soon as the awaited condition holds.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import Connection

from orchestrator.config import Settings
from orchestrator.daemon import run_daemon
from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.jobs import TERMINAL, Job
from orchestrator.store import DatabaseNotReady, JobDetail, JobStore, SqlStore, open_reader
from orchestrator.store.postgres import PostgresStore
from tests.postgres import PostgresServer, running_postgres

T = TypeVar("T")

#: Emulator speed for tests: 2 s simulated steps at 40x speed, so 50 ms of real time per step.
TEST_TIME_SCALE = 40.0


def fast_settings(root: Path, base_url: str) -> Settings:
    """Daemon settings for tests: everything under ``root``, short poll and back-off bounds."""
    base = Settings()
    return replace(
        base,
        spool=replace(base.spool, path=root / "spool", rescan_interval=0.5, settle_seconds=0.5),
        database=replace(base.database, path=root / "orchestrator.db"),
        api=replace(base.api, base_url=base_url, timeout=5.0),
        scheduler=replace(
            base.scheduler, poll_min_interval=0.1, poll_max_interval=0.5, backoff_base=0.05, backoff_cap=0.5,
            lease_seconds=10.0,
        ),
        daemon=replace(base.daemon, shutdown_grace=1.0),
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL cluster for the whole session (fails, never skips, when it cannot start)."""
    with running_postgres() as server:
        yield server


#: The database every test database is copied from: migrated to head once per session.
MIGRATED_TEMPLATE = "orchestrator_migrated"
_database_numbers = itertools.count()


@pytest.fixture(scope="session")
def postgres_template(postgres_server: PostgresServer) -> str:
    """The name of a database migrated to head, to copy test databases from."""
    from alembic import command

    from orchestrator.store import alembic_config

    postgres_server.create_database(MIGRATED_TEMPLATE)
    command.upgrade(alembic_config(postgres_server.url(MIGRATED_TEMPLATE)), "head")
    return MIGRATED_TEMPLATE


@pytest.fixture
def postgres_empty_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a fresh, empty database of its own; dropped after the test."""
    name = f"test_{next(_database_numbers)}"
    postgres_server.create_database(name)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_template: str) -> Iterator[str]:
    """The URL of a fresh migrated database of its own (a copy of the template); dropped after the test."""
    name = f"test_{next(_database_numbers)}"
    postgres_server.create_database(name, template=postgres_template)
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (for a server whose port must be known before it starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def emulator_url() -> AsyncIterator[str]:
    """A time-scaled emulator on a free loopback port."""
    async with running_emulator(EmulatorSettings(time_scale=TEST_TIME_SCALE), host="127.0.0.1", port=0) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, emulator_url: str) -> Settings:
    """Settings pointing at the test emulator."""
    return fast_settings(tmp_path, emulator_url)


@dataclass
class RunningDaemon:
    """A daemon running in this event loop, with helpers to wait on what it records."""

    settings: Settings
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def wait_for_jobs(self, count: int, *, terminal: bool = True, within: float = 30.0) -> list[Job]:
        """The jobs once ``count`` exist (and are all terminal, unless told otherwise)."""
        found: list[Job] = []

        async def ready() -> bool:
            nonlocal found
            if self.task.done():
                self.task.result()
            try:
                async with open_reader(self.settings.database) as reader:
                    found = await reader.list_jobs()
            except DatabaseNotReady:
                return False
            return len(found) >= count and (not terminal or all(job.state in TERMINAL for job in found))

        await wait_until(ready, within=within)
        return found

    async def detail(self, ref: str) -> JobDetail:
        """The full record of one job."""
        async with open_reader(self.settings.database) as reader:
            return await reader.detail(ref)


async def sql_rows(store: JobStore, sql: str) -> Sequence[Any]:
    """The rows of one SQL query, read through the store's own connection (SQLite's writer, or a pooled one)."""
    return await run_on_store(store, lambda conn: conn.exec_driver_sql(sql).all())


async def run_on_store(store: JobStore, work: Callable[[Connection], T]) -> T:
    """``work(connection)`` in a transaction of the store's own engine, whichever store it is."""
    if isinstance(store, SqlStore):
        return await store._db.run(work)
    assert isinstance(store, PostgresStore)
    return await store._run(work)


async def wait_until(condition: Callable[[], Awaitable[bool]], *, within: float, interval: float = 0.05) -> None:
    """Re-check ``condition`` every ``interval`` until it holds; fail after ``within`` seconds.

    The conditions read the status database, which another connection writes: there is no event
    to await, so this is a bounded poll.
    """
    async with asyncio.timeout(within):
        while not await condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(interval)


@pytest.fixture
async def daemon(settings: Settings) -> AsyncIterator[RunningDaemon]:
    """The daemon running against the test emulator; stopped (gracefully) at teardown."""
    stop = asyncio.Event()
    task = asyncio.create_task(run_daemon(settings, stop))
    running = RunningDaemon(settings, stop, task)
    try:
        yield running
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)
