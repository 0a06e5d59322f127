"""Promise 6: SIGTERM stops intake and submits, abandons slow requests safely, exits 0 in time; the next start resumes.

The daemon runs as a subprocess (``python -m orchestrator run``) against an in-process emulator whose
operation reads hang for 6 s (longer than the 2 s grace), so a request is in flight when the signal arrives.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import sys
import time
from pathlib import Path

import pytest

from orchestrator.intake import drop_job_file
from tests.acceptance.chaos import daemon_env, poll_until
from tests.corpus import good_job
from tests.reliability.conftest import Emulator

pytestmark = pytest.mark.timeout(120)


async def start(root: Path, url: str) -> asyncio.subprocess.Process:
    env = {**daemon_env(root, url), "ORCHESTRATOR_API_AUTH": "none", "ORCHESTRATOR_DAEMON_SHUTDOWN_GRACE": "2"}
    log = await asyncio.to_thread(open, root / "daemon.log", "ab")
    with log:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator", "run", env=env, cwd=root,
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
        )


def states(root: Path) -> list[str]:
    if not (root / "orchestrator.db").exists():
        return []
    connection = sqlite3.connect(f"file:{root / 'orchestrator.db'}?mode=ro", uri=True)
    try:
        return [state for (state,) in connection.execute("SELECT state FROM jobs ORDER BY created_at")]
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()


async def reach(root: Path, wanted: list[str], within: float = 30) -> None:
    async def reached() -> bool:
        return await asyncio.to_thread(states, root) == wanted

    await poll_until(reached, within=within, interval=0.05)


async def test_sigterm_with_a_request_in_flight_exits_0_promptly_and_the_next_start_resumes(
    tmp_path: Path, emulator: Emulator
) -> None:
    await emulator.faults({"kind": "latency", "seconds": 6, "routes": ["get_operation"]})
    drop_job_file(tmp_path / "spool", "job.json", good_job())
    daemon = await start(tmp_path, emulator.url)
    await reach(tmp_path, ["running"])
    await asyncio.sleep(0.5)  # the first poll (due after poll_min_interval) is out and hanging
    drop_job_file(tmp_path / "spool", "late.json", good_job(display_name="late"))
    signalled = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(daemon.wait(), 10) == 0
    assert time.monotonic() - signalled < 10

    assert await asyncio.to_thread(states, tmp_path) in (["running"], ["running", "queued"])
    await emulator.admin("DELETE", "faults")
    daemon = await start(tmp_path, emulator.url)
    try:
        await reach(tmp_path, ["succeeded", "succeeded"], within=60)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(daemon.wait(), 10) == 0
    creates = await emulator.creates()
    assert len(creates) == 2 and set(creates.values()) == {1}


async def test_a_second_signal_exits_at_once(tmp_path: Path, emulator: Emulator) -> None:
    await emulator.faults({"kind": "latency", "seconds": 6, "routes": ["create"]})
    drop_job_file(tmp_path / "spool", "job.json", good_job())
    daemon = await start(tmp_path, emulator.url)
    await reach(tmp_path, ["submitting"])
    daemon.send_signal(signal.SIGTERM)
    await asyncio.sleep(0.2)
    signalled = time.monotonic()
    daemon.send_signal(signal.SIGTERM)
    code = await asyncio.wait_for(daemon.wait(), 5)

    assert code == 128 + signal.SIGTERM and time.monotonic() - signalled < 1.5
    assert await asyncio.to_thread(states, tmp_path) == ["submitting"]  # committed before the create: resumable

