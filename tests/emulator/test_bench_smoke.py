"""``bench/emulator_polls.py`` still runs end to end (tiny parameters) and writes its JSON."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("api", ["gemini", "vertex"])
async def test_poll_benchmark_smoke(tmp_path: Path, api: str) -> None:
    """bench/emulator_polls.py runs end to end with tiny parameters and writes its JSON, on either API."""
    output = tmp_path / "polls.json"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(ROOT / "bench" / "emulator_polls.py"),
        *(
            "--jobs",
            "20",
            "--steps",
            "30",
            "--seconds",
            "0.5",
            "--warmup",
            "0",
            "--clients",
            "1",
            "--spawn-seconds",
            "0.5",
        ),
        *("--concurrency", "4", "--output", str(output), "--api", api),
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=45)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    assert process.returncode == 0, stderr.decode()[-2000:]
    assert b"polls/s" in stdout
    result = json.loads(output.read_text())
    assert result["polls"] > 0 and result["errors"] == 0
    assert result["params"]["jobs"] == 20 and result["params"]["api"] == api
