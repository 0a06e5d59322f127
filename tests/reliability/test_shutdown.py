"""Promise 6: SIGTERM stops intake and submits, abandons slow requests safely, exits 0 in time; the next start resumes.

The daemon runs as a subprocess (``python -m orchestrator run``) against an in-process emulator whose
operation reads hang for 6 s (longer than the 2 s grace), so a request is in flight when the signal arrives.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
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



def catches_sigterm(pid: int) -> bool:
    """Whether the process has a handler for SIGTERM (Linux: the SigCgt mask in /proc/PID/status)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    mask = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(mask, 16) & (1 << (signal.SIGTERM - 1)))


def migrated_or_absent(database: Path) -> bool:
    """The database was not made at all, or it is whole (a version recorded)."""
    if not database.exists():
        return True
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT COUNT(*) FROM alembic_version").fetchone() == (1,)


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.5, 0.8])
def test_sigterm_at_any_point_of_the_first_start_exits_0_without_a_traceback(tmp_path: Path, delay: float) -> None:
    """Imports, migrations, the embedded emulator's start: a SIGTERM in any of them is a clean stop.

    ``delay`` counts from the moment the process catches SIGTERM, which ``run`` arranges before its
    heavy imports; at 0 the daemon has not reached its migrations, so it must not create the database.
    """
    database = tmp_path / "orchestrator.db"
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestrator", "run", "--database", str(database), "--spool", str(tmp_path / "spool"),
         "--log-format", "json"],
        cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={key: value for key, value in os.environ.items() if not key.startswith("ORCHESTRATOR_")},
    )
    try:
        deadline = time.monotonic() + 30
        while not catches_sigterm(process.pid) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert b"Traceback" not in err, err
    assert migrated_or_absent(database)
    if delay == 0.0:
        assert not database.exists()
