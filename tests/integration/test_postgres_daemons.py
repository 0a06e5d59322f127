"""Several daemons on one PostgreSQL queue (a real server): one job per file, the cap across all of them.

Two daemons run in this event loop, each with its own spool folder, against one emulator that does
*not* enforce a quota itself: the only thing keeping its peak of concurrently active jobs within
``scheduler.max_active_jobs`` is the daemons' shared count in the database.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.clock import SystemClock
from orchestrator.config import DatabaseSettings, Settings
from orchestrator.daemon import run_daemon
from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.intake import drop_job_file
from orchestrator.jobs import TERMINAL, Job, JobState
from orchestrator.peers import PeerLink
from orchestrator.store import DatabaseUnreachable, open_reader, open_store
from orchestrator.store.daemons import DaemonInfo
from tests.conftest import TEST_TIME_SCALE, fast_settings, wait_until
from tests.corpus import good_job
from tests.postgres import PostgresServer

CAP = 2


def daemon_settings(root: Path, emulator: str, database_url: str) -> Settings:
    base = fast_settings(root, emulator)
    return replace(base, database=replace(base.database, url=database_url),
                   scheduler=replace(base.scheduler, max_active_jobs=CAP))


@contextlib.asynccontextmanager
async def running_daemons(*settings: Settings) -> AsyncIterator[None]:
    stop = asyncio.Event()
    tasks = [asyncio.create_task(run_daemon(each, stop)) for each in settings]
    try:
        yield
        for task in tasks:
            if task.done():
                task.result()
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)


async def emulator_admin(url: str, path: str) -> Any:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/_emulator/{path}") as response:
        return await response.json()


async def all_terminal(settings: Settings, count: int) -> list[Job]:
    found: list[Job] = []

    async def done() -> bool:
        nonlocal found
        async with open_reader(settings.database) as reader:
            found = await reader.list_jobs()
        return len(found) == count and all(job.state in TERMINAL for job in found)

    await wait_until(done, within=90, interval=0.2)
    return found


async def test_two_daemons_share_the_queue_and_the_active_job_cap(tmp_path: Path, postgres_url: str) -> None:
    async with running_emulator(EmulatorSettings(time_scale=TEST_TIME_SCALE), host="127.0.0.1", port=0) as url:
        first = daemon_settings(tmp_path / "a", url, postgres_url)
        second = daemon_settings(tmp_path / "b", url, postgres_url)
        async with running_daemons(first, second):
            for index in range(8):
                spool = (first if index % 2 else second).spool.path
                drop_job_file(spool, f"job-{index}.json", good_job(display_name=f"job {index}"))
            # The same file dropped on both machines is one job.
            same = good_job(display_name="twice", orchestrator={"job_key": "nightly-1"})
            drop_job_file(first.spool.path, "twice.json", same)
            drop_job_file(second.spool.path, "twice.json", same)
            jobs = await all_terminal(first, 9)
            async with open_reader(first.database) as reader:
                running = await reader.daemons()
        stats = await emulator_admin(url, "stats")
        async with open_reader(second.database) as reader:
            stopped = await reader.daemons()
            # What `orchestrator show` and `status --label` read, on PostgreSQL too.
            detail = await reader.detail(jobs[0].id)
            labelled = await reader.list_jobs(labels={"team": "search"})

    assert {job.state for job in jobs} == {JobState.SUCCEEDED}
    assert [job.job_key for job in jobs].count("nightly-1") == 1
    rejected = [p.name for spool in (first, second) for p in (spool.spool.path / "rejected").glob("*.json")]
    assert rejected.count("twice.json") == 1  # the other drop, rejected as a duplicate naming the first
    assert sorted(stats["creates"].values()) == [1] * 9
    assert stats["peak_active_jobs"] == CAP  # the cap was reached, and never exceeded
    for spool in (first, second):  # both daemons took files in
        assert list((spool.spool.path / "accepted").iterdir())
    now = SystemClock().now()
    assert sorted(d.spool for d in running) == sorted(str(each.spool.path) for each in (first, second))
    assert [d.status(now) for d in running] == ["running", "running"]
    assert [d.status(now) for d in stopped] == ["stopped", "stopped"]  # a clean stop is recorded
    assert detail.job.id == jobs[0].id and detail.hyperparameters == {"batchSize": 2, "learningRate": 0.001,
                                                                      "epochCount": 5}
    assert labelled == []


class FakeThrottle:
    """A throttle that only records pauses (the real one is tested in tests/unit/test_throttle.py)."""

    def __init__(self, remaining: float = 0.0) -> None:
        self.remaining = remaining
        self.paused: list[float] = []

    def pause(self, seconds: float) -> None:
        self.paused.append(seconds)
        self.remaining = max(self.remaining, seconds)

    def pause_remaining(self) -> float:
        return self.remaining


async def test_a_429_pause_seen_by_one_daemon_pauses_the_other(postgres_url: str) -> None:
    api, clock = "https://generativelanguage.googleapis.com", SystemClock()
    async with open_store(DatabaseSettings(url=postgres_url)) as store:
        answered_429, other = FakeThrottle(remaining=30.0), FakeThrottle()
        first = PeerLink(store, DaemonInfo("a:1:x", "a", 1, "/spool"), answered_429, api, clock)
        second = PeerLink(store, DaemonInfo("b:2:y", "b", 2, "/spool"), other, api, clock)
        await second.sync_pause()
        assert other.paused == []  # nothing shared yet
        await first.sync_pause()  # publishes its 30 s
        await second.sync_pause()  # adopts them
        await second.sync_pause()  # ... once
    assert answered_429.paused == []
    [adopted] = other.paused
    assert 25.0 < adopted <= 30.0


async def test_a_wrong_password_is_one_line_naming_the_server_and_never_the_password(
    postgres_server: PostgresServer, postgres_url: str,
) -> None:
    wrong = postgres_url.replace(postgres_server.password, "not-the-password-0042")
    for upgrade in (True, False):
        with pytest.raises(DatabaseUnreachable) as caught:
            async with open_store(DatabaseSettings(url=wrong), upgrade=upgrade):
                pass
        message = str(caught.value)
        assert f"127.0.0.1:{postgres_server.port}" in message and "password authentication failed" in message
        assert "not-the-password-0042" not in message and "***" in message
    with pytest.raises(DatabaseUnreachable):
        async with open_reader(DatabaseSettings(url=wrong)):
            pass
