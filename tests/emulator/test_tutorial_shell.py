"""The tutorial's own curl + jq script (create, poll /v1 on done and completedPercent, get, generate,
delete) against the emulator, with only the host changed."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from orchestrator.emulator import EmulatorSettings, running_emulator
from tests.emulator.conftest import FIXTURES

pytestmark = pytest.mark.skipif(
    not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")), reason="needs bash, curl and jq"
)


async def test_tutorial_script_runs_to_active(tmp_path: Path) -> None:
    """Create, poll /v1 on done and completedPercent, get the state, generate and delete, as seeds/001 does."""
    shim = tmp_path / "bin"
    shim.mkdir()
    fast_sleep = shim / "sleep"
    fast_sleep.write_text("#!/bin/sh\nexec /bin/sleep 0.05\n")  # the tutorial sleeps 5 s per poll
    fast_sleep.chmod(0o755)
    settings = EmulatorSettings(step_seconds=2.0, time_scale=400.0, seed=1)
    async with running_emulator(settings) as url:
        env = {
            **os.environ,
            "PATH": f"{shim}{os.pathsep}{os.environ.get('PATH', '')}",
            "EMULATOR_URL": url,
            "GOOGLE_API_KEY": "tutorial-key",
            "TERM": "dumb",
        }
        process = await asyncio.create_subprocess_exec(
            "bash",
            str(FIXTURES / "tutorial_rest.sh"),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            stdout, _ = await asyncio.wait_for(process.communicate(), timeout=30)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    output = stdout.decode()
    assert process.returncode == 0
    assert '"totalSteps":38' in output
    assert "Tuning...100%" in output
    assert '"ACTIVE"' in output
    assert '"modelVersion":"emulated"' in output
    assert output.rstrip().endswith("{}")
