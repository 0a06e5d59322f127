"""Vertex jobs in ``status``, ``show`` and ``watch``, like Gemini ones: the sub-state (``waiting for quota``),
progress and loss, billable tokens with the cost at the user's own price, the tuned model and its endpoint.
The rows are written by the real scheduler and Vertex backend against the emulator (one concurrent tuning
job per project, its default: the second job waits for quota)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.cli import main
from orchestrator.config import DatabaseSettings
from orchestrator.jobs import Job, JobState
from orchestrator.report import UNCOUNTED_EXAMPLES
from orchestrator.status.watch import watch
from orchestrator.store import open_store
from orchestrator.vertex.jobfile import jsonl
from tests.integration.test_intake_vertex import upload
from tests.reliability.conftest import all_jobs, running_scheduler, until, until_terminal
from tests.reliability.vertex_rig import STAGING, add_vertex_job, vertex_file, vertex_for

PRICE = 2.5


async def test_status_show_and_watch_show_what_vertex_said(
    emulator_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "orchestrator.db"
    config = tmp_path / "orchestrator.toml"
    config.write_text(f'[database]\npath = "{database}"\n[vertex]\nprice_per_million_tokens = {PRICE}\n')
    async with open_store(DatabaseSettings(path=database, busy_timeout=5.0)) as store:
        first = await add_vertex_job(store, 1, examples=64, epochs=3)
        second = await add_vertex_job(store, 2)
        async with vertex_for(emulator_url) as vertex, running_scheduler(store, vertex):
            async def one_waits_for_quota() -> bool:
                jobs = {j.id: j for j in await all_jobs(store)}
                return jobs[second.id].remote_substate == "TUNING_JOB_STATE_WAITING_FOR_QUOTA" and (
                    jobs[first.id].completed_steps > 0)
            await until(one_waits_for_quota)
            waiting = await _cli(capsys, "status", "--config", str(config))
            watched = await _watched(await all_jobs(store))
            await until_terminal(store, 2)
        done = {j.id: j for j in await all_jobs(store)}

    second_row = next(line for line in waiting.splitlines() if line.startswith(second.id))
    assert "running (waiting for quota)" in second_row
    assert "waiting for quota" in watched and second.id in watched

    shown = await _cli(capsys, "show", first.id, "--config", str(config))
    job = done[first.id]
    assert job.state is JobState.SUCCEEDED and job.model_name and job.endpoint and job.billable_tokens
    cost = job.billable_tokens * PRICE / 1_000_000
    for text in (job.model_name, job.endpoint, job.remote_job or "", "JOB_STATE_SUCCEEDED", f"{job.billable_tokens:,}",
                 f"estimated cost {cost:,.4f}", f"{job.total_steps}/{job.total_steps} steps", "loss",
                 '"epochCount": 3'):
        assert text in shown, text
    [as_json] = [j for j in json.loads(await _cli(capsys, "status", "--json", "--config", str(config)))
                 if j["id"] == first.id]
    assert (as_json["estimated_cost"], as_json["tuned_model"], as_json["endpoint"]) == (
        pytest.approx(cost), job.model_name, job.endpoint)


async def test_a_gcs_dataset_is_counted_by_the_service_not_shown_as_zero(
    emulator_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "orchestrator.db"
    dataset = f"{STAGING}/users-own.jsonl"
    examples = [{"contents": [{"role": "user", "parts": [{"text": str(n)}]},
                              {"role": "model", "parts": [{"text": str(n + 1)}]}]} for n in range(12)]
    await upload(emulator_url, dataset, jsonl(examples))
    in_storage = json.loads(vertex_file(3))
    in_storage["supervised_tuning_spec"]["training_dataset_uri"] = dataset
    del in_storage["orchestrator"]["training_examples"]
    async with open_store(DatabaseSettings(path=database, busy_timeout=5.0)) as store:
        job = await add_vertex_job(store, 3, data=json.dumps(in_storage).encode())
        before = await _cli(capsys, "show", job.id, "--database", str(database))
        [before_json] = [json.loads(await _cli(capsys, "show", job.id, "--json", "--database", str(database)))]
        async with vertex_for(emulator_url) as vertex, running_scheduler(store, vertex):
            [done] = await until_terminal(store)
        after = await _cli(capsys, "show", job.id, "--database", str(database))

    assert f"examples         {UNCOUNTED_EXAMPLES}" in before and before_json["example_count"] is None
    assert done.state is JobState.SUCCEEDED and done.dataset_example_count == len(examples)
    assert f"examples         {len(examples)} (counted by the service)" in after


async def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The command's stdout (it opens its own event loop: run it in a thread); it must exit 0."""
    assert await asyncio.to_thread(main, list(argv)) == 0
    return capsys.readouterr().out


async def _watched(jobs: list[Job]) -> str:
    """What ``watch`` draws for ``jobs`` (on a terminal: every refresh is drawn), then for them ended."""
    console = Console(file=StringIO(), width=160, force_terminal=True)
    calls = 0

    async def fetch(_also: object) -> list[Job]:
        nonlocal calls
        calls += 1
        return jobs if calls == 1 else [replace(j, state=JobState.SUCCEEDED) for j in jobs]

    async def no_wait(_seconds: float) -> None:
        return None

    await watch(fetch, console, sleep=no_wait)
    return str(console.file.getvalue())  # type: ignore[attr-defined]
