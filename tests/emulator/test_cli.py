"""The command line: every knob is a flag and an environment variable; the module runs as a server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from orchestrator.emulator import EmulatorSettings, FaultPlan
from orchestrator.emulator.cli import build_parser, env_name, main, settings_from_args

ROOT = Path(__file__).resolve().parents[2]


def test_help_documents_every_knob_and_its_environment_variable() -> None:
    """--help names every EmulatorSettings field as a flag and as ORCHESTRATOR_EMULATOR_<FIELD>."""
    text = build_parser({}).format_help()

    for field in [*dataclasses.fields(EmulatorSettings)]:
        assert "--" + field.name.replace("_", "-") in text
        assert env_name(field.name) in text
    assert "--host" in text and "ORCHESTRATOR_EMULATOR_PORT" in text
    flat = " ".join(text.split())
    for surface in ("Vertex AI (tuningJobs", "Cloud Storage's JSON API", "STORAGE_EMULATOR_HOST", "POST /token"):
        assert surface in flat


def test_environment_sets_defaults_and_flags_win(tmp_path: Path) -> None:
    """Environment variables set defaults (faults from @file too); flags override them."""
    plan = tmp_path / "faults.json"
    plan.write_text(json.dumps({"seed": 4, "rules": [{"kind": "http_error", "status": 503, "calls": [1]}]}))
    environ = {
        "ORCHESTRATOR_EMULATOR_TIME_SCALE": "20",
        "ORCHESTRATOR_EMULATOR_API_KEYS": "k1=proj,k2",
        "ORCHESTRATOR_EMULATOR_ALLOW_TUNED_MODEL_SOURCE": "yes",
        "ORCHESTRATOR_EMULATOR_FAULTS": f"@{plan}",
        "ORCHESTRATOR_EMULATOR_PORT": "9999",
    }
    parser = build_parser(environ)
    args = parser.parse_args(["--time-scale", "40", "--max-active-jobs", "3"])
    settings = settings_from_args(args)

    assert (settings.time_scale, settings.max_active_jobs, args.port) == (40.0, 3, 9999)
    assert settings.api_keys == ("k1=proj", "k2")
    assert settings.allow_tuned_model_source is True
    assert settings.faults == FaultPlan.from_json(json.loads(plan.read_text()))


def test_bad_values_are_usage_errors() -> None:
    """Bad values from the environment, flags or settings end with a usage error (exit 2), not a traceback."""
    with pytest.raises(SystemExit) as from_env:
        build_parser({"ORCHESTRATOR_EMULATOR_SEED": "many"})
    with pytest.raises(SystemExit):
        build_parser({"ORCHESTRATOR_EMULATOR_PORT": "http"})
    with pytest.raises(SystemExit) as from_flag:
        main(["--faults", '{"rules": [{"kind": "nope"}]}'])
    with pytest.raises(SystemExit) as from_settings:
        main(["--time-scale", "0"])

    assert from_env.value.code == from_flag.value.code == from_settings.value.code == 2


async def test_module_serves_until_sigterm() -> None:
    """python -m orchestrator.emulator prints its URL, serves, and exits 0 on SIGTERM."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ORCHESTRATOR_EMULATOR_TIME_SCALE": "50"}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "orchestrator.emulator", "--port", "0", env=env, stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), timeout=20)).decode()
        found = re.search(r"http://127\.0\.0\.1:\d+", line)
        assert found is not None, line
        async with aiohttp.ClientSession() as http, http.get(found.group(0) + "/v1beta/tunedModels") as response:
            assert response.status == 200
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
