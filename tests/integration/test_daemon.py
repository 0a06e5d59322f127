"""The backbone end to end: job files dropped into the spool become tuned models, recorded truthfully."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from orchestrator.demo import tutorial_job_bytes
from orchestrator.intake import drop_job_file
from orchestrator.jobs import JobState
from tests.conftest import RunningDaemon, wait_until
from tests.corpus import good_job


async def test_tutorial_job_succeeds_with_one_snapshot_per_step(daemon: RunningDaemon) -> None:
    """The tutorial's body, verbatim (trailing commas and all), ends succeeded with 38 snapshots."""
    drop_job_file(daemon.settings.spool.path, "number-generator.json", tutorial_job_bytes())

    [job] = await daemon.wait_for_jobs(1)
    detail = await daemon.detail(job.id)

    assert job.state is JobState.SUCCEEDED
    assert job.total_steps == 38  # ceil(15 examples * 5 epochs / batch 2)
    assert [s.step for s in detail.snapshots] == list(range(1, 39))
    assert job.completed_steps == 38
    assert job.remote_state == "ACTIVE"
    assert job.operation_name is not None and job.operation_name.startswith(f"{job.tuned_model_name}/operations/")
    assert [(e.from_state, e.to_state) for e in detail.events] == [
        (None, "queued"), ("queued", "submitting"), ("submitting", "running"), ("running", "succeeded"),
    ]
    accepted = list((daemon.settings.spool.path / "accepted").iterdir())
    assert [p.name for p in accepted] == [f"{job.id}--number-generator.json"]


async def test_bad_field_is_rejected_with_an_error_naming_it(daemon: RunningDaemon) -> None:
    """A job whose 3rd example output is too long lands in rejected/ beside an error naming the field."""
    data = json.loads(good_job())
    data["tuning_task"]["training_data"]["examples"]["examples"][2]["output"] = "x" * 5001
    drop_job_file(daemon.settings.spool.path, "too-long.json", json.dumps(data).encode())
    drop_job_file(daemon.settings.spool.path, "fine.json", good_job())

    [job] = await daemon.wait_for_jobs(1)
    rejected = daemon.settings.spool.path / "rejected"
    error_file = rejected / "too-long.json.error.json"
    # A fresh invalid file may still be being written: the intake rejects it once it has settled. The
    # error report is written (and the rejection recorded) before the file moves: wait for both.
    await wait_until(lambda: asyncio.to_thread(lambda: error_file.exists() and (rejected / "too-long.json").exists()),
                     within=10)
    report = json.loads(error_file.read_text())

    assert job.source_file == "fine.json" and job.state is JobState.SUCCEEDED
    assert (rejected / "too-long.json").exists()
    assert report["field"] == "tuning_task.training_data.examples.examples[2].output"
    assert "5,000" in report["problem"]
    assert not list((daemon.settings.spool.path / "inbox").iterdir())
    assert not list((daemon.settings.spool.path / "processing").iterdir())


async def test_many_jobs_respect_the_active_cap_and_all_succeed(daemon: RunningDaemon, tmp_path: Path) -> None:
    """More jobs than the active-job cap all finish; each got its own tuned model id."""
    for index in range(7):
        drop_job_file(daemon.settings.spool.path, f"job-{index}.json", good_job(display_name=f"job {index}"))

    jobs = await daemon.wait_for_jobs(7, within=60)

    assert {job.state for job in jobs} == {JobState.SUCCEEDED}
    assert len({job.tuned_model_id for job in jobs}) == 7
