"""Promise 5: through 429s, malformed bodies, bad credentials and a locked database the daemon keeps going.

Each fault is logged once with its context, retries keep their schedule in the row, and the job still
ends in the API's terminal state.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.gemini.auth import ApiKeyAuth
from orchestrator.jobs import JobState
from orchestrator.logs import redact_secrets
from orchestrator.store import migrate
from orchestrator.store.sql import SqlStore
from tests.conftest import TEST_TIME_SCALE, sql_rows
from tests.reliability.conftest import (
    FAST,
    Emulator,
    Proxy,
    add_job,
    all_jobs,
    api_for,
    running_scheduler,
    until,
    until_terminal,
)
from tests.reliability.test_cancel import LONG

KEY = "good-key-0123456789abcdef"


def operation_get(request: web.Request) -> bool:
    return request.method == "GET" and "/operations/" in request.path


def polled_again_after_the_pause(proxy: Proxy) -> Callable[[], Awaitable[bool]]:
    """A condition: the proxy saw a 429 and, 1.3 s after it, requests again."""

    async def seen() -> bool:
        limited = [at for _, _, status, at in proxy.seen if status == 429]
        return bool(limited) and proxy.seen[-1][3] > limited[0] + 1.3

    return seen


async def test_a_429_pauses_every_call_for_the_retry_delay(store: SqlStore, emulator: Emulator, proxy: Proxy) -> None:
    await add_job(store, 0, **LONG)
    await add_job(store, 1, **LONG)
    async with api_for(proxy.url) as api, running_scheduler(store, api):

        async def both_polling() -> bool:
            return sum(1 for m, p, *_ in proxy.seen if m == "GET" and "/operations/" in p) >= 4

        await until(both_polling)
        await emulator.faults({"kind": "rate_limit", "retry_delay_seconds": 1.0, "routes": ["get_operation"],
                               "calls": [1]})
        await until(polled_again_after_the_pause(proxy))

    [limited_at] = [at for _, _, status, at in proxy.seen if status == 429]
    # Requests already sent when the 429 arrived may land; none starts within the pause.
    in_pause = [at for _, _, _, at in proxy.seen if limited_at + 0.1 < at < limited_at + 1.0]
    assert in_pause == []
    assert len([at for _, _, _, at in proxy.seen if at > limited_at + 1.0]) >= 2  # both jobs go on after it


async def test_back_off_lives_in_the_row_and_a_restart_keeps_it(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "http_error", "status": 503, "routes": ["create"], "calls": [1]})
    await add_job(store)
    settings = replace(FAST, backoff_base=1.5, backoff_cap=1.5)
    async with api_for(emulator.url) as api:
        async with running_scheduler(store, api, settings):

            async def retried() -> bool:
                return (await all_jobs(store))[0].attempts == 1

            await until(retried)
        [waiting] = await all_jobs(store)
        assert waiting.state is JobState.SUBMITTING and waiting.next_check_at is not None
        assert waiting.last_error == "503 UNAVAILABLE: The service is currently unavailable."
        async with running_scheduler(store, api, settings, owner="restarted"):
            [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.attempts == 0 and done.last_error is None
    # The restarted scheduler waited for the saved time: the create went out after it, not at start.
    assert done.submitted_at is not None and done.started_at is not None
    assert done.started_at >= waiting.next_check_at
    # Retries are not transitions: the failed create left no event, only the row's attempt count.
    moves = await sql_rows(store, "SELECT from_state, to_state FROM events ORDER BY id")
    assert [tuple(m) for m in moves] == [
        (None, "queued"), ("queued", "submitting"), ("submitting", "running"), ("running", "succeeded"),
    ]


MALFORMED = {
    "truncated JSON": (200, b'{"name": "tunedModels/x/operations/y", "metadata": {"totalSt'),
    "an HTML page": (200, b"<html><body>Service temporarily unavailable</body></html>"),
    "an HTML error page": (502, b"<html><body><h1>502 Bad Gateway</h1></body></html>"),
    "wrong types": (200, json.dumps({"name": 5, "done": "yes"}).encode()),
    "missing fields": (200, b"{}"),
    "done without an outcome": (200, b'{"name": "tunedModels/x/operations/y", "done": true}'),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
async def test_a_malformed_operation_is_logged_once_and_the_job_still_ends_right(
    kind: str, store: SqlStore, emulator: Emulator, proxy: Proxy
) -> None:
    status, body = MALFORMED[kind]
    proxy.rewrite(lambda request, _s, _b: (status, body, {"Content-Type": "text/html"}) if operation_get(request)
                  else None, times=2)
    job = await add_job(store)
    with capture_logs() as logs:
        async with api_for(proxy.url) as api, running_scheduler(store, api):
            [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.completed_steps == done.total_steps
    assert await emulator.creates() == {job.tuned_model_name: 1}
    decisions = [e for e in logs if e["event"] in ("step_retry_scheduled", "operation_unreadable_reading_model")]
    assert len(decisions) == 2 and all(e["job_id"] == job.id for e in decisions)
    assert not [e for e in logs if e["log_level"] == "error" or "exception" in e]


async def test_a_malformed_create_answer_is_repeated_and_adopted(
    store: SqlStore, emulator: Emulator, proxy: Proxy
) -> None:
    proxy.rewrite(lambda request, _s, _b: (200, b"<html>oops</html>", {}) if request.method == "POST" else None)
    job = await add_job(store)
    async with api_for(proxy.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await emulator.creates() == {job.tuned_model_name: 1}
    assert (await emulator.requests("create")) == {"200": 1, "409": 1}


async def test_a_non_finite_loss_is_recorded_without_wedging_the_job(
    store: SqlStore, emulator: Emulator, proxy: Proxy
) -> None:
    def nan_loss(request: web.Request, status: int, body: bytes) -> tuple[int, bytes, dict[str, str]] | None:
        if not operation_get(request) or status != 200:
            return None
        data = json.loads(body)
        for snapshot in data.get("metadata", {}).get("snapshots", []):
            snapshot["meanLoss"] = "NaN"
        return 200, json.dumps(data).encode(), {"Content-Type": "application/json"}

    proxy.rewrite(nan_loss, times=1000)
    await add_job(store)
    async with api_for(proxy.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.completed_steps == done.total_steps


@pytest.fixture
async def keyed_emulator() -> AsyncIterator[Emulator]:
    settings = EmulatorSettings(time_scale=TEST_TIME_SCALE, api_keys=(KEY,))
    async with running_emulator(settings, host="127.0.0.1", port=0) as url, aiohttp.ClientSession() as http:
        yield Emulator(url, http)


class SwappableKey(ApiKeyAuth):
    """An API key an operator can fix while the daemon runs (as a rotated secret would be)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
        self.refreshes = 0

    async def headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self.key}

    async def refresh(self) -> None:
        self.refreshes += 1


async def test_an_expired_token_is_refreshed_once_and_the_call_repeated(
    store: SqlStore, keyed_emulator: Emulator
) -> None:
    await keyed_emulator.faults({"kind": "token_expired", "routes": ["create"], "calls": [1]})
    auth = SwappableKey(KEY)
    job = await add_job(store)
    async with api_for(keyed_emulator.url, auth) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.attempts == 0 and auth.refreshes == 1
    assert await keyed_emulator.creates() == {job.tuned_model_name: 1}


async def test_a_bad_key_pauses_the_scheduler_with_one_line_not_one_per_job(
    store: SqlStore, keyed_emulator: Emulator
) -> None:
    auth = SwappableKey("revoked-key-fedcba9876543210")
    for index in range(6):
        await add_job(store, index)
    with capture_logs() as logs:
        settings = replace(FAST, backoff_cap=5)
        async with api_for(keyed_emulator.url, auth) as api, running_scheduler(store, api, settings):

            async def refused_a_few_times() -> bool:
                return sum((await keyed_emulator.requests("create")).values()) >= 3

            await until(refused_a_few_times)
            refused = sum((await keyed_emulator.requests("create")).values())
            auth.key = KEY
            done = await until_terminal(store, 6, within=30)

    assert all(job.state is JobState.SUCCEEDED for job in done)
    assert refused <= 4  # one probe at a time while the key is refused, not one request per job
    assert [e["event"] for e in logs].count("scheduler_paused_unauthenticated") == 1
    assert [e["event"] for e in logs].count("scheduler_resumed_authenticated") == 1
    assert "revoked-key-fedcba9876543210" not in repr(logs)


async def test_an_api_key_echoed_by_the_api_reaches_no_record(
    store: SqlStore, keyed_emulator: Emulator, tmp_path: Path
) -> None:
    async with aiohttp.ClientSession() as http:
        echo = Proxy()

        async def forward(request: web.Request) -> web.Response:
            if request.method == "POST":
                body = {"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                  "message": f"request with key {request.headers['x-goog-api-key']} is invalid"}}
                return web.json_response(body, status=400)
            async with http.request(request.method, keyed_emulator.url + request.path_qs,
                                    headers={"x-goog-api-key": KEY}) as upstream:
                return web.Response(status=upstream.status, body=await upstream.read())

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        echo.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            await add_job(store)
            with capture_logs(processors=[redact_secrets]) as logs:  # the daemon's redaction processor
                async with api_for(echo.url, ApiKeyAuth(KEY)) as api, running_scheduler(store, api):
                    [done] = await until_terminal(store)
        finally:
            await runner.cleanup()

    assert done.state is JobState.FAILED and done.error_message == "request with key [redacted] is invalid"
    assert KEY not in repr(logs) and "request with key [redacted] is invalid" in repr(logs)
    assert KEY.encode() not in await asyncio.to_thread(_database_bytes, tmp_path)


def _database_bytes(folder: Path) -> bytes:
    """The database, its WAL and shared memory, as bytes."""
    return b"".join(path.read_bytes() for path in folder.glob("orchestrator.db*"))


async def test_a_locked_database_is_waited_out_and_logged_once(tmp_path: Path, emulator: Emulator) -> None:
    path = tmp_path / "locked.db"
    await asyncio.to_thread(migrate, path)
    store = SqlStore(path, 0.2)
    try:
        await add_job(store)
        holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        with capture_logs() as logs:
            async with api_for(emulator.url) as api, running_scheduler(store, api):
                holder.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 1.5 s
                await asyncio.sleep(1.5)
                holder.execute("ROLLBACK")
                [done] = await until_terminal(store)
        holder.close()
    finally:
        await store.dispose()

    assert done.state is JobState.SUCCEEDED
    failures = [e for e in logs if e["event"] == "scheduler_tick_failed"]
    assert len(failures) == 1 and "database is locked" in failures[0]["error"]



async def test_a_step_outliving_its_lease_is_not_doubled(store: SqlStore, emulator: Emulator, proxy: Proxy) -> None:
    """A 429 pause longer than the lease: the re-claim renews the lease, it starts no second step."""
    for index in range(3):
        await add_job(store, index, **LONG)
    async with api_for(proxy.url) as api, running_scheduler(store, api, replace(FAST, lease_seconds=0.2)):

        async def all_polling() -> bool:
            return sum(1 for m, p, *_ in proxy.seen if m == "GET" and "/operations/" in p) >= 6

        await until(all_polling)
        await emulator.faults({"kind": "rate_limit", "retry_delay_seconds": 1.0, "routes": ["get_operation"],
                               "calls": [1]})
        await until(polled_again_after_the_pause(proxy))

    [limited_at] = [at for _, _, status, at in proxy.seen if status == 429]
    burst = [at for _, _, _, at in proxy.seen if limited_at + 0.9 < at < limited_at + 1.2]
    assert len(burst) <= 3  # one waiting step per job, released together
