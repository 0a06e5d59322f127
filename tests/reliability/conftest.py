"""A rig for the reliability tests: the real store, client and scheduler against the emulator and its faults.

Everything is real and on loopback: a migrated SQLite file under ``tmp_path``, ``HttpTuningApi`` over
aiohttp, the emulator with its fault plan (``/_emulator/faults``) and introspection, and, where the
emulator has no fault for it (malformed 2xx bodies, a key echoed in an error), a small proxy in front
of it that rewrites chosen responses. Time comes from the emulator's time scale; waits are bounded.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from orchestrator.clock import SystemClock
from orchestrator.config import ApiSettings, DatabaseSettings, SchedulerSettings
from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.gemini.auth import Auth, NoAuth
from orchestrator.gemini.client import HttpTuningApi, open_tuning_api
from orchestrator.gemini.service import GeminiTuning
from orchestrator.intake import new_job_from_file
from orchestrator.jobs import TERMINAL, Job
from orchestrator.scheduler import Scheduler
from orchestrator.spec import DEFAULT_MAX_FILE_BYTES
from orchestrator.store import open_store
from orchestrator.store.schema import jobs as jobs_table
from orchestrator.store.sql import SqlStore
from orchestrator.tuning import TuningApi
from tests.conftest import TEST_TIME_SCALE, wait_until
from tests.corpus import good_job

INSTALLATION = "itest1"

#: Scheduler settings for these tests: fast polls, short back-off (in real seconds).
FAST = SchedulerSettings(
    max_active_jobs=4, poll_min_interval=0.05, poll_max_interval=0.3, backoff_base=0.02, backoff_cap=0.3,
    lease_seconds=10.0,
)


@dataclass
class Emulator:
    """A running emulator: its URL and its admin and introspection routes."""

    url: str
    http: aiohttp.ClientSession

    async def admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.url}/_emulator/{path}", json=body) as response:
            assert response.status < 300, await response.text()
            return await response.json(content_type=None)

    async def faults(self, *rules: dict[str, Any], seed: int = 0) -> None:
        await self.admin("POST", "faults", {"seed": seed, "rules": list(rules)})

    async def creates(self) -> dict[str, int]:
        result: dict[str, int] = await self.admin("GET", "creates")
        return result

    async def remote_jobs(self) -> dict[str, dict[str, Any]]:
        return {job["name"]: job for job in (await self.admin("GET", "jobs"))["jobs"]}

    async def requests(self, route: str) -> dict[str, int]:
        result: dict[str, int] = (await self.admin("GET", "requests")).get(route, {})
        return result


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    settings = EmulatorSettings(time_scale=TEST_TIME_SCALE)
    async with running_emulator(settings, host="127.0.0.1", port=0) as url, aiohttp.ClientSession() as http:
        yield Emulator(url, http)


Rewrite = Callable[[web.Request, int, bytes], tuple[int, bytes, dict[str, str]] | None]


@dataclass
class Proxy:
    """A loopback proxy to the emulator that lets a test rewrite chosen responses.

    ``rewrites`` are tried in order on every response; the first that returns a value replaces the
    response (status, body, headers) and is used up after ``times`` uses. ``seen`` records each
    request's method, path, status and loop time, so tests can check when calls were made.
    """

    url: str = ""
    rewrites: list[list[Any]] = field(default_factory=list)
    seen: list[tuple[str, str, int, float]] = field(default_factory=list)

    def rewrite(self, rule: Rewrite, times: int = 1) -> None:
        self.rewrites.append([rule, times])

    def apply(self, request: web.Request, status: int, body: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        for entry in self.rewrites:
            rule, left = entry
            if left and (result := rule(request, status, body)) is not None:
                entry[1] = left - 1
                return result
        return None


@pytest.fixture
async def proxy(emulator: Emulator) -> AsyncIterator[Proxy]:
    state = Proxy()

    async def forward(request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "x-goog-api-key")}
        async with emulator.http.request(request.method, emulator.url + request.path_qs, headers=headers,
                                         data=await request.read()) as upstream:
            status, body = upstream.status, await upstream.read()
            out_headers = {"Content-Type": upstream.headers.get("Content-Type", "application/json")}
        replaced = state.apply(request, status, body)
        if replaced is not None:
            status, body, out_headers = replaced
        state.seen.append((request.method, request.path, status, asyncio.get_running_loop().time()))
        return web.Response(status=status, body=body, headers=out_headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", forward)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    path = tmp_path / "orchestrator.db"
    async with open_store(DatabaseSettings(path=path, busy_timeout=5.0)) as writer:
        yield writer


@pytest.fixture
async def cli_store(tmp_path: Path, store: SqlStore) -> AsyncIterator[SqlStore]:
    """A second writer on the same file, as ``orchestrator cancel`` opens it."""
    other = SqlStore(tmp_path / "orchestrator.db", 5.0)
    try:
        yield other
    finally:
        await other.dispose()


async def add_job(store: SqlStore, index: int = 0, *, data: bytes | None = None, **overrides: Any) -> Job:
    """Record a queued job as the intake would, from a small good job file."""
    data = data or good_job(display_name=f"job {index}", orchestrator={"job_key": f"key-{index}"}, **overrides)
    new = new_job_from_file(data, source=f"job-{index}.json", intake_id=f"intake-{index}",
                            installation_id=INSTALLATION, max_bytes=DEFAULT_MAX_FILE_BYTES)
    return await store.add_job(new, SystemClock().now())


async def all_jobs(store: SqlStore) -> list[Job]:
    """Every job row, oldest first (a read through the writer, as the tests own the database)."""
    from orchestrator.store.sql import job_from_row
    from tests.conftest import run_on_store

    query = jobs_table.select().order_by(jobs_table.c.created_at)
    rows = await run_on_store(store, lambda conn: conn.execute(query).all())
    return [job_from_row(row) for row in rows]


@asynccontextmanager
async def api_for(url: str, auth: Auth | None = None, **settings: Any) -> AsyncIterator[HttpTuningApi]:
    async with open_tuning_api(replace(ApiSettings(timeout=5.0), **settings), url, auth=auth or NoAuth()) as api:
        yield api


@asynccontextmanager
async def running_scheduler(
    store: SqlStore, api: HttpTuningApi | TuningApi, settings: SchedulerSettings = FAST, *,
    owner: str = "test-owner", shutdown_grace: float = 1.0,
) -> AsyncIterator[Scheduler]:
    """A scheduler running in this loop for the block, stopped gracefully at its end.

    A Gemini client is wrapped in its service; any other ``TuningApi`` (Vertex) is used as it is.
    """
    service = GeminiTuning(api) if isinstance(api, HttpTuningApi) else api
    scheduler = Scheduler(store, service, settings, SystemClock(), owner, rng=random.Random(0),
                          shutdown_grace=shutdown_grace)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    try:
        yield scheduler
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def until_terminal(store: SqlStore, count: int = 1, within: float = 20.0) -> list[Job]:
    """The jobs once ``count`` of them are all terminal."""
    found: list[Job] = []

    async def done() -> bool:
        nonlocal found
        found = await all_jobs(store)
        return len(found) >= count and all(job.state in TERMINAL for job in found)

    await wait_until(done, within=within)
    return found


async def until(condition: Callable[[], Awaitable[bool]], within: float = 20.0) -> None:
    await wait_until(condition, within=within)


def json_body(data: Any) -> bytes:
    return json.dumps(data).encode()
