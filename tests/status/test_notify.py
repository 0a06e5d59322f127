"""sd_notify over real Unix datagram sockets, the watchdog's progress rule, and the daemon end to end."""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.config import Settings, StatusSettings
from orchestrator.daemon import _tell_service_manager, run_daemon
from orchestrator.demo import tutorial_job_bytes
from orchestrator.intake import drop_job_file
from orchestrator.notify import Notifier, watchdog_interval
from orchestrator.status.server import Health
from tests.conftest import RunningDaemon
from tests.corpus import good_job

WAIT = 10.0


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket bound where systemd's would be, non-blocking for the event loop."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    with sock:
        yield path, sock


async def receive(sock: socket.socket) -> str:
    """The next datagram, within a bounded time."""
    data = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 4096), WAIT)
    return data.decode()


def test_messages_arrive_as_systemd_expects(listener: tuple[str, socket.socket]) -> None:
    """One datagram per call, newline-separated KEY=VALUE fields."""
    path, sock = listener
    notifier = Notifier(path)

    assert notifier.ready("watching spool/inbox")
    assert notifier.watchdog()
    assert notifier.send("STATUS=3 running")
    assert notifier.stopping()
    received = [sock.recv(4096).decode() for _ in range(4)]

    assert received == ["READY=1\nSTATUS=watching spool/inbox", "WATCHDOG=1", "STATUS=3 running",
                        "STOPPING=1\nSTATUS=stopping"]


def test_abstract_namespace_socket() -> None:
    """``@name`` is Linux's abstract namespace: a leading NUL byte, no file."""
    name = f"orchestrator-test-{secrets.token_hex(6)}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        assert Notifier(f"@{name}").ready()
        assert sock.recv(64) == b"READY=1"


def test_without_notify_socket_nothing_is_sent(tmp_path: Path) -> None:
    """Outside systemd every call is a harmless no-op; a vanished socket is logged, not raised."""
    assert not Notifier.from_environ({}).enabled
    assert Notifier.from_environ({}).ready() is False
    assert Notifier(str(tmp_path / "gone.sock")).watchdog() is False


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "20000000"}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": str(os.getpid())}, 10.0),
        ({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec(environ: dict[str, str], interval: float | None) -> None:
    """Ping twice per WatchdogSec=, and only when the watchdog is ours."""
    assert watchdog_interval(environ) == interval


async def test_watchdog_is_withheld_while_the_scheduler_does_not_tick(listener: tuple[str, socket.socket]) -> None:
    """A stuck loop gets no WATCHDOG=1 (so systemd restarts it); pings resume when it moves again."""
    path, sock = listener
    now, tick = 1000.0, 900.0  # the last tick is 100 s old: past max_tick_age
    checks = 0
    checked_thrice = asyncio.Event()

    def last_tick() -> float:
        nonlocal checks
        checks += 1
        if checks >= 3:
            checked_thrice.set()
        return tick

    health = Health(last_tick, lambda: now, lambda: now, StatusSettings(max_tick_age=30.0))
    stop = asyncio.Event()
    task = asyncio.create_task(
        _tell_service_manager(Notifier(path, watchdog_interval=0.01), health, Settings(), stop)
    )
    try:
        assert (await receive(sock)).startswith("READY=1\n")
        await asyncio.wait_for(checked_thrice.wait(), WAIT)
        with pytest.raises(BlockingIOError):
            sock.recv(4096)  # three checks of a stale tick, no ping

        tick = now
        assert await receive(sock) == "WATCHDOG=1"
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
    messages = [await receive(sock)]
    while messages[-1] == "WATCHDOG=1":
        messages.append(await receive(sock))
    assert messages[-1] == "STOPPING=1\nSTATUS=stopping"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_daemon_notifies_serves_status_and_counts_what_it_does(
    settings: Settings, listener: tuple[str, socket.socket]
) -> None:
    """READY, WATCHDOG while running, STOPPING on stop; /healthz, /readyz and /metrics reflect a real job."""
    path, sock = listener
    port = free_port()
    settings = replace(settings, status=replace(settings.status, enabled=True, port=port))
    base = f"http://127.0.0.1:{port}"
    messages: asyncio.Queue[str] = asyncio.Queue()

    async def collect() -> None:
        while True:
            await messages.put(await receive(sock))

    collector = asyncio.create_task(collect())
    stop = asyncio.Event()
    daemon = RunningDaemon(settings, stop, asyncio.create_task(
        run_daemon(settings, stop, notifier=Notifier(path, watchdog_interval=0.05))
    ))
    try:
        async with aiohttp.ClientSession() as session:
            try:
                assert (await asyncio.wait_for(messages.get(), WAIT)).startswith("READY=1\n")
                assert await asyncio.wait_for(messages.get(), WAIT) == "WATCHDOG=1"
                drop_job_file(settings.spool.path, "number-generator.json", tutorial_job_bytes())
                [job] = await daemon.wait_for_jobs(1)

                async with session.get(f"{base}/healthz") as response:
                    assert response.status == 200
                async with session.get(f"{base}/readyz") as response:
                    assert response.status == 200
                async with session.get(f"{base}/metrics") as response:
                    text = await response.text()
            finally:
                stop.set()
                await asyncio.wait_for(daemon.task, 15)
        last = await asyncio.wait_for(messages.get(), WAIT)
        while last == "WATCHDOG=1":
            last = await asyncio.wait_for(messages.get(), WAIT)
        assert last == "STOPPING=1\nSTATUS=stopping"
    finally:
        collector.cancel()

    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(text) for s in family.samples}
    assert samples[("orchestrator_jobs", (("state", "succeeded"),))] == 1
    assert samples[("orchestrator_intake_files_total", (("outcome", "accepted"),))] == 1
    assert samples[("orchestrator_api_requests_total", (("route", "create_tuned_model"), ("status", "200")))] == 1
    assert samples[("orchestrator_api_requests_total", (("route", "get_operation"), ("status", "200")))] >= 1
    assert samples[("orchestrator_snapshots_recorded_total", ())] == job.total_steps == 38
    assert samples[("orchestrator_poll_lateness_seconds_count", ())] >= 1
    assert samples[("orchestrator_last_write_age_seconds", ())] < settings.status.max_write_age
    assert await _closed(base)


def test_a_full_notify_queue_drops_the_message_instead_of_blocking(listener: tuple[str, socket.socket]) -> None:
    """A service manager that stops reading must never freeze the daemon's event loop."""
    path, _sock = listener
    notifier = Notifier(path)
    sent = [notifier.watchdog() for _ in range(1000)]  # far more than a datagram queue holds
    assert sent[0] and not sent[-1]


async def _closed(base: str) -> bool:
    """The status port is released once the daemon has stopped."""
    try:
        async with aiohttp.ClientSession() as session, session.get(f"{base}/healthz"):
            return False
    except aiohttp.ClientConnectionError:
        return True


async def test_files_dropped_together_are_counted_one_by_one(settings: Settings) -> None:
    """Three files recorded in one intake transaction add 3 to intake_files_total{outcome="accepted"}."""
    port = free_port()
    settings = replace(settings, status=replace(settings.status, enabled=True, port=port))
    for index in range(3):
        drop_job_file(settings.spool.path, f"job-{index}.json", good_job(display_name=f"job {index}"))
    stop = asyncio.Event()
    daemon = RunningDaemon(settings, stop, asyncio.create_task(run_daemon(settings, stop)))
    try:
        await daemon.wait_for_jobs(3, terminal=False)
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
            text = await response.text()
    finally:
        stop.set()
        await asyncio.wait_for(daemon.task, 15)
    accepted = [s.value for family in text_string_to_metric_families(text) for s in family.samples
                if s.name == "orchestrator_intake_files_total" and s.labels == {"outcome": "accepted"}]
    assert accepted == [3]
