"""``orchestrator demo``: the tutorial's job end to end on the embedded emulator, on either backend."""

from __future__ import annotations

import sqlite3
from io import StringIO
from pathlib import Path

import pytest

from orchestrator.config import Backend
from orchestrator.demo import run_demo


@pytest.mark.parametrize(("backend", "remote_state", "model_prefix"), [
    ("gemini", "ACTIVE", "tunedModels/"),
    ("vertex", "JOB_STATE_SUCCEEDED", "projects/"),
])
async def test_the_demo_runs_the_tutorial_job_to_its_tuned_model(
    tmp_path: Path, backend: Backend, remote_state: str, model_prefix: str
) -> None:
    out = StringIO()

    assert await run_demo(tmp_path, out, backend=backend) == 0

    text = out.getvalue()
    assert f"({backend} backend)" in text and "succeeded" in text and f"tuned model: {model_prefix}" in text
    with sqlite3.connect(tmp_path / "orchestrator.db") as db:
        state, remote, steps, snapshots, model = db.execute(
            "SELECT state, remote_state, total_steps, snapshot_count, tuned_model FROM job_status").fetchone()
    assert (state, remote, snapshots) == ("succeeded", remote_state, steps)
    assert model.startswith(model_prefix)
