"""The operator commands' output, text and ``--json``, over a database the real store wrote."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Collection
from dataclasses import replace
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.cli import main
from orchestrator.config import DatabaseSettings
from orchestrator.jobs import Job, JobState
from orchestrator.report import loss_chart
from orchestrator.status.watch import watch
from orchestrator.store import StatusReader, open_store
from orchestrator.store.connection import reader_engine
from orchestrator.store.daemons import DaemonInfo
from tests.status.conftest import NOW, SampleJobs, losses

Sample = tuple[Path, SampleJobs]

#: The keys ``status --json`` promises scripts (one object per job).
STATUS_KEYS = {
    "id", "job_key", "state", "priority", "display_name", "base_model", "tuned_model_id", "tuned_model", "labels",
    "source_file", "operation_name", "remote_state", "total_steps", "completed_steps", "progress_pct", "last_loss",
    "attempts", "next_check_at", "last_error", "cancel_requested", "cancel_reason", "cancel_sent_at", "max_run_time",
    "stall_timeout", "error_code", "error_status", "error_message", "created_at", "updated_at", "submitted_at",
    "started_at", "last_progress_at", "finished_at", "retry_of", "remote_job", "remote_substate", "billable_tokens",
    "model_name", "endpoint", "training_data_uri", "validation_data_uri", "submit_sent_at", "working_since",
    "dataset_example_count", "estimated_cost", "held_by", "held_until",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The command's stdout; it must exit 0."""
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def test_status_prints_one_line_per_job_with_progress_loss_and_error(
    sample_db: Sample, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each job is one line: full id, state, progress, steps, last loss, age and the API's error."""
    path, ids = sample_db
    monkeypatch.setenv("COLUMNS", "160")
    out = run(capsys, "status", "--database", str(path))

    lines = out.splitlines()
    assert lines[0].split() == ["id", "state", "name", "progress", "steps", "loss", "age", "error"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {ids.succeeded, ids.running, ids.failed, ids.queued, ids.old_succeeded}
    assert rows[ids.running].split()[1:8] == ["running", "sweep", "lr=0.01", "50%", "6/12", "0.8333", "2h"]
    assert rows[ids.running].rstrip().endswith("retrying: 503 UNAVAILABLE: The model is overloaded.")
    assert "100%" in rows[ids.succeeded] and "12/12" in rows[ids.succeeded] and "0.4167" in rows[ids.succeeded]
    assert "Request contains an invalid argument." in rows[ids.failed]
    assert "45d" in rows[ids.old_succeeded]


def test_status_filters_by_state_and_label(sample_db: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    """``--state`` and ``--label`` narrow the list; several ``--state``s add up."""
    path, ids = sample_db
    by_state = json.loads(run(capsys, "status", "--database", str(path), "--json", "--state", "running",
                              "--state", "failed"))
    by_label = json.loads(run(capsys, "status", "--database", str(path), "--json", "--label", "team=nlp"))
    both = json.loads(run(capsys, "status", "--database", str(path), "--json", "--label", "team=nlp",
                          "--state", "succeeded"))

    assert {j["id"] for j in by_state} == {ids.running, ids.failed}
    assert {j["id"] for j in by_label} == {ids.running, ids.succeeded}
    assert [j["id"] for j in both] == [ids.succeeded]


def test_status_json_shape(sample_db: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    """``status --json`` is a list of flat objects with the documented keys, and no internal ones."""
    path, ids = sample_db
    jobs = json.loads(run(capsys, "status", "--database", str(path), "--json"))

    assert [set(job) for job in jobs] == [STATUS_KEYS] * 5
    running = next(j for j in jobs if j["id"] == ids.running)
    assert running["state"] == "running"
    assert running["progress_pct"] == 50.0
    assert running["labels"] == {"team": "nlp"}
    assert running["tuned_model"] == "tunedModels/busy-model"
    assert running["started_at"] == "2026-11-21T10:00:00+00:00"
    failed = next(j for j in jobs if j["id"] == ids.failed)
    assert (failed["error_code"], failed["error_status"]) == (400, "INVALID_ARGUMENT")


def test_show_prints_spec_timeline_error_snapshots_and_loss_chart(
    sample_db: Sample, capsys: pytest.CaptureFixture[str]
) -> None:
    """``show`` has the spec summary, the timeline, a per-epoch table and the chart; failures the API's words."""
    path, ids = sample_db
    out = run(capsys, "show", ids.succeeded, "--database", str(path))
    failed = run(capsys, "show", "bad", "--database", str(path))  # by job key

    assert out.splitlines()[0].split() == [ids.succeeded, "number", "generator", "succeeded"]
    assert "tunedModels/done-model/operations/op1" in out
    assert "8 (job file 321 bytes)" in out and '"epochCount": 3' in out
    assert "12/12 steps (100%)" in out
    timeline = [line.split()[1:4] for line in out.splitlines() if line.startswith("  2026-11-21T")]
    assert timeline == [["-", "→", "queued"], ["queued", "→", "submitting"], ["submitting", "→", "running"],
                        ["running", "→", "succeeded"]]
    epochs = [line.split() for line in out.splitlines() if re.fullmatch(r"  \d +\d+-\d+ .*", line)]
    assert epochs == [["0", "1-4", "5.0000", "1.2500", "2.6042"], ["1", "5-8", "1.0000", "0.6250", "0.7932"],
                      ["2", "9-12", "0.5556", "0.4167", "0.4817"]]
    for line in loss_chart(losses(12)):
        assert f"  {line}" in out
    assert "[400] INVALID_ARGUMENT Request contains an invalid argument." in failed
    assert '"http_status": 400' in failed


def test_show_json_shape(sample_db: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    """``show --json`` is the status object plus spec facts, events and every snapshot."""
    path, ids = sample_db
    detail = json.loads(run(capsys, "show", ids.running, "--database", str(path), "--json"))

    assert set(detail) == STATUS_KEYS | {
        "retried_as", "example_count", "file_bytes", "hyperparameters", "events", "snapshots", "notifications",
    }
    assert detail["hyperparameters"] == {"batchSize": 2, "learningRate": 0.001, "epochCount": 3}
    assert [e["to"] for e in detail["events"]] == ["queued", "submitting", "running"]
    assert set(detail["events"][0]) == {"at", "from", "to", "detail"}
    assert detail["snapshots"][0] == {"step": 1, "epoch": 0, "mean_loss": 5.0, "compute_time": None}
    assert len(detail["snapshots"]) == 6


def test_show_names_an_unknown_job(sample_db: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    """A reference that matches nothing is an error naming it, exit 1."""
    path, _ids = sample_db
    assert main(["show", "nope", "--database", str(path)]) == 1
    assert "no job matches 'nope'" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_writes_the_loss_curve(
    sample_db: Sample, capsys: pytest.CaptureFixture[str], tmp_path: Path, suffix: str
) -> None:
    """``plot -o loss.png|svg`` writes a real image of that format."""
    path, ids = sample_db
    target = tmp_path / "out" / f"loss.{suffix}"
    out = run(capsys, "plot", ids.succeeded, "-o", str(target), "--database", str(path))

    assert out.strip() == f"{ids.succeeded}: loss curve of 12 steps written to {target}"
    data = target.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
    else:
        assert b"<svg" in data and b"<!-- epoch -->" in data


def test_plot_refuses_a_job_without_snapshots_or_an_unknown_format(
    sample_db: Sample, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Nothing to draw, or a format it cannot write: exit 1 with the reason, no file."""
    path, ids = sample_db
    assert main(["plot", ids.queued, "-o", str(tmp_path / "q.png"), "--database", str(path)]) == 1
    assert "has no snapshots yet" in capsys.readouterr().err
    assert main(["plot", ids.succeeded, "-o", str(tmp_path / "q.jpg"), "--database", str(path)]) == 1
    assert "must end in .png, .svg, .pdf" in capsys.readouterr().err
    assert not list(tmp_path.glob("q.*"))


def test_prune_removes_only_old_terminal_jobs_and_reports_them(
    sample_db: Sample, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """A dry run reports and keeps; the real run removes the old job's rows and its accepted file, nothing else."""
    path, ids = sample_db
    accepted = tmp_path / "spool" / "accepted"
    accepted.mkdir(parents=True)
    for job_id in (ids.old_succeeded, ids.succeeded):
        (accepted / f"{job_id}--job.json").write_text("{}")
    spool = ("--spool", str(tmp_path / "spool"), "--database", str(path))
    old_file = str(accepted / f"{ids.old_succeeded}--job.json")

    dry = json.loads(run(capsys, "prune", "--older-than", "30d", "--dry-run", "--json", *spool))
    assert dry == {"dry_run": True, "older_than_seconds": 30 * 86400.0, "jobs": [ids.old_succeeded],
                   "events": 4, "snapshots": 12, "files": [old_file]}
    assert len(list(accepted.iterdir())) == 2

    out = run(capsys, "prune", "--older-than", "30d", *spool)
    assert out.splitlines() == [
        f"removed 1 jobs that ended more than 30d ago, with 4 events, 12 snapshots and 1 job files from {accepted}",
        f"  {ids.old_succeeded}",
    ]
    assert [p.name for p in accepted.iterdir()] == [f"{ids.succeeded}--job.json"]
    left = json.loads(run(capsys, "status", "--json", "--database", str(path)))
    assert {j["id"] for j in left} == {ids.succeeded, ids.running, ids.failed, ids.queued}
    again = json.loads(run(capsys, "prune", "--older-than", "30d", "--json", *spool))
    assert again["jobs"] == [] and again["files"] == []


def test_prune_rejects_a_malformed_age(sample_db: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    """``--older-than`` needs a number and a unit."""
    path, _ids = sample_db
    with pytest.raises(SystemExit) as exit_info:
        main(["prune", "--older-than", "30", "--database", str(path)])
    assert exit_info.value.code == 2
    assert "expected a whole number and a unit: s (seconds), m (minutes), h (hours), d (days) or w (weeks)" in (
        capsys.readouterr().err
    )


async def test_watch_follows_active_jobs_until_they_end(sample_db: Sample) -> None:
    """Bars for every unfinished job; it returns once those have ended, showing their final states."""
    path, ids = sample_db
    engine = reader_engine(path, 5.0)
    reader = StatusReader(engine)
    console = Console(file=StringIO(), width=120, force_terminal=False)
    asked: list[set[str]] = []

    async def fetch(also: Collection[str]) -> list[Job]:
        """The real read; from the third refresh on, the jobs have finished."""
        asked.append(set(also))
        jobs = await reader.active_jobs(also)
        if len(asked) < 3:
            return jobs
        return [replace(j, state=JobState.SUCCEEDED, completed_steps=12, last_loss=0.4) for j in jobs]

    try:
        final = await watch(fetch, console, sleep=_no_wait, interval=0.5)
    finally:
        await engine.dispose()

    assert asked == [set(), {ids.running, ids.queued}, {ids.running, ids.queued}]
    assert {j.id: j.state for j in final} == {ids.running: JobState.SUCCEEDED, ids.queued: JobState.SUCCEEDED}
    out = console.file.getvalue()  # type: ignore[attr-defined]
    for job_id in (ids.running, ids.queued):
        line = next(line for line in out.splitlines() if line.startswith(job_id))
        assert "100%" in line and "12/12" in line and "succeeded" in line and "loss 0.4000" in line


async def test_watch_with_nothing_active_says_so() -> None:
    """No unfinished job: one line, no waiting."""
    console = Console(file=StringIO(), width=80)

    async def fetch(_also: Collection[str]) -> list[Job]:
        return []

    assert await watch(fetch, console, sleep=_no_wait) == []
    assert console.file.getvalue() == "no active jobs\n"  # type: ignore[attr-defined]


async def _no_wait(_seconds: float) -> None:
    await asyncio.sleep(0)


def test_daemons_lists_each_daemon_with_its_status_and_the_jobs_it_holds(
    sample_db: Sample, capsys: pytest.CaptureFixture[str]
) -> None:
    """One daemon alive and taking a step of the running job, one that died, one that stopped cleanly."""
    path, ids = sample_db
    now = NOW  # the CLI's clock in these tests

    async def record() -> None:
        async with open_store(DatabaseSettings(path=path)) as store:
            await store.heartbeat(DaemonInfo("alive:1:a", "alive", 1, "/spool/a"), now)
            await store.heartbeat(DaemonInfo("dead:2:b", "dead", 2, "/spool/b"), now - timedelta(minutes=5))
            await store.heartbeat(DaemonInfo("gone:3:c", "gone", 3, "/spool/c"), now - timedelta(minutes=9))
            await store.daemon_stopped("gone:3:c", now - timedelta(minutes=8))
            due = now + timedelta(days=1)
            claimed = await store.claim_due("alive:1:a", due, timedelta(days=2), 10, 0)
            assert ids.running in [job.id for job in claimed]

    asyncio.run(record())
    listed = json.loads(run(capsys, "daemons", "--database", str(path), "--json"))
    table = run(capsys, "daemons", "--database", str(path))
    status = run(capsys, "status", "--database", str(path))

    assert [(d["id"], d["status"], d["jobs_held"]) for d in listed] == [
        ("alive:1:a", "running", 1), ("dead:2:b", "dead", 0), ("gone:3:c", "stopped", 0),
    ]
    assert "dead" in table and "/spool/b" in table
    [line] = [line for line in status.splitlines() if line.startswith(ids.running)]
    assert "alive:1" in line  # the daemon taking the job's current step
