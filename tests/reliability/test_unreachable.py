"""An unreachable API: the log names the host and the cause, /readyz says so, and a cancel still ends jobs.

A cancel of a job whose create never reached the service ends it at once; a job whose create may
have landed keeps the adopt-then-cancel path however long the API stays unreachable (a job cancelled
here while a paid twin ran on would break exactly-once).
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp import web
from structlog.testing import capture_logs

from orchestrator.clock import SystemClock
from orchestrator.config import Settings
from orchestrator.daemon import run_daemon
from orchestrator.errors import NotDelivered, TransientError
from orchestrator.gemini.auth import NoAuth
from orchestrator.gemini.throttle import Throttle
from orchestrator.intake import drop_job_file
from orchestrator.jobs import JobState
from orchestrator.status.reachability import ApiReachability
from orchestrator.store.sql import SqlStore
from orchestrator.transport import ApiTransport, ignore_body
from tests.conftest import RunningDaemon, wait_until
from tests.corpus import good_job
from tests.reliability.conftest import Emulator, add_job, all_jobs, api_for, running_scheduler, until, until_terminal
from tests.reliability.test_cancel import LONG


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def plain_http_port() -> AsyncIterator[int]:
    """A plain HTTP server, for a TLS handshake that must fail."""
    runner = web.AppRunner(web.Application())
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def failure(url: str) -> TransientError:
    async with aiohttp.ClientSession() as session:
        transport = ApiTransport(session, NoAuth(), Throttle(0, 0), 5.0)
        with pytest.raises(TransientError) as raised:
            await transport.call("GET", "get_operation", url, ignore_body)
    return raised.value


async def test_a_failed_connection_names_the_host_and_the_cause_and_no_secret(plain_http_port: int) -> None:
    port = closed_port()
    refused = await failure(f"http://user:s3cret-pass@127.0.0.1:{port}/v1/tunedModels/x?key=AIzaSECRET")
    dns = await failure("http://no-such-host.invalid/v1/operations/x")
    tls = await failure(f"https://127.0.0.1:{plain_http_port}/v1/operations/x")

    assert str(refused) == f"cannot connect to 127.0.0.1:{port}: connection refused (nothing listens there)"
    assert str(dns).startswith("cannot connect to no-such-host.invalid:80: DNS lookup failed (")
    assert str(tls).startswith(f"cannot connect to 127.0.0.1:{plain_http_port}: TLS handshake failed (")
    assert all(isinstance(error, NotDelivered) for error in (refused, dns, tls))
    assert "s3cret" not in str(refused) and "SECRET" not in str(refused) and "tunedModels" not in str(refused)


async def test_a_cancel_of_a_job_that_never_reached_the_api_ends_it(
    store: SqlStore, cli_store: SqlStore
) -> None:
    """Every create refused: nothing can exist remotely, so the cancel ends the job and frees its slot."""
    job = await add_job(store)

    async def refused_twice() -> bool:
        [current] = await all_jobs(store)
        return current.state is JobState.SUBMITTING and current.attempts >= 2

    with capture_logs() as logs:
        async with api_for(f"http://127.0.0.1:{closed_port()}") as api, running_scheduler(store, api):
            await until(refused_twice)
            [waiting] = await all_jobs(store)
            await cli_store.request_cancel(job.id, SystemClock().now())
            [done] = await until_terminal(store, within=10)

    assert waiting.submit_sent_at is None and "connection refused" in (waiting.last_error or "")
    assert done.state is JobState.CANCELLED and done.cancel_reason == "user"
    assert {"event": "job_cancelled", "reason": "user", "remote": "never created"}.items() <= next(
        entry for entry in logs if entry["event"] == "job_cancelled").items()


async def test_a_job_whose_create_may_have_landed_is_never_cancelled_without_the_api(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    """Every answer to the create was lost, then the API went away: the cancel waits for the API and cancels there.

    With the Gemini service a resubmission after a refused one is not proof either: the first
    create may have landed, and only a create that gets an answer (409) can tell.
    """
    await emulator.faults({"kind": "lost_response", "routes": ["create"], "calls": list(range(1, 100))})
    job = await add_job(store, data=good_job(**LONG))
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        await until(lambda: attempted(store, 2))
    [unclear] = await all_jobs(store)
    assert unclear.state is JobState.SUBMITTING and unclear.submit_sent_at is not None
    await emulator.admin("DELETE", "faults")

    await cli_store.request_cancel(job.id, SystemClock().now())
    async with api_for(f"http://127.0.0.1:{closed_port()}") as api, running_scheduler(store, api):
        await until(lambda: attempted(store, 3))  # the lookups for the twin were refused
    [held] = await all_jobs(store)
    assert held.state is JobState.SUBMITTING and held.cancel_requested and held.submit_sent_at is not None

    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)
    assert done.state is JobState.CANCELLED
    assert (await emulator.remote_jobs())[job.tuned_model_name]["ending"] == "cancelled"
    assert await emulator.creates() == {job.tuned_model_name: 1}


async def attempted(store: SqlStore, attempts: int) -> bool:
    [job] = await all_jobs(store)
    return job.attempts >= attempts


def test_reachability_turns_unready_after_the_bound_and_back_on_any_answer() -> None:
    now = [100.0]
    reachability = ApiReachability(lambda: now[0], max_unreachable=60.0)
    reachability.observe("create", None)
    now[0] += 59.0
    reachability.observe("get_operation", 503)
    assert reachability.unready_reason() is None

    now[0] += 2.0
    assert reachability.unready_reason() == (
        "API unreachable for 61 s (2 requests without an answer; the log's api_request_failed lines name the host "
        "and the cause)"
    )
    reachability.observe("get_operation", 404)  # an answer, even an error, means the API is there
    assert reachability.unready_reason() is None


async def test_readyz_says_the_api_is_unreachable_and_healthz_stays_up(settings: Settings) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        status_port = sock.getsockname()[1]
    settings = replace(settings, api=replace(settings.api, base_url=f"http://127.0.0.1:{closed_port()}"),
                       status=replace(settings.status, enabled=True, port=status_port, max_api_unreachable=0.5))
    drop_job_file(settings.spool.path, "job.json", good_job())
    stop = asyncio.Event()
    daemon = RunningDaemon(settings, stop, asyncio.create_task(run_daemon(settings, stop)))
    base = f"http://127.0.0.1:{status_port}"
    ready: tuple[int, dict[str, str]] = (0, {})
    try:
        async with aiohttp.ClientSession() as session:

            async def unready() -> bool:
                nonlocal ready
                try:
                    async with session.get(f"{base}/readyz") as response:
                        ready = (response.status, json.loads(await response.text()))
                except aiohttp.ClientConnectionError:
                    return False  # not serving yet
                return ready[0] == 503

            await wait_until(unready, within=20)
            async with session.get(f"{base}/healthz") as response:
                assert response.status == 200
    finally:
        stop.set()
        await asyncio.wait_for(daemon.task, 15)
    assert ready[1]["reason"].startswith("API unreachable for ")
