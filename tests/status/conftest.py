"""A status database with one job in each interesting state, written through the real store.

The jobs are driven through the same ``SqlStore`` calls the scheduler makes (claim, commit with a
transition, snapshots), so the read side is tested against rows the daemon would really write.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator import cli
from orchestrator.clock import SystemClock
from orchestrator.config import DatabaseSettings
from orchestrator.jobs import Job, JobState, Snapshot
from orchestrator.store import JobChanges, NewJob, SqlStore, open_store
from orchestrator.store.rejections import NewRejection

#: The fixed "now" of the fixture database: every timestamp in it is relative to this.
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
OWNER = "test-owner"


class FixedClock(SystemClock):
    """The wall clock stopped at :data:`NOW`, so ages and retention do not depend on the test's date."""

    def now(self) -> datetime:
        """Always :data:`NOW`."""
        return NOW


@pytest.fixture(autouse=True)
def cli_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI measures ages and retention against :data:`NOW`."""
    monkeypatch.setattr(cli, "clock", FixedClock())


@dataclass(frozen=True)
class SampleJobs:
    """Ids of the fixture's jobs, by what they show."""

    succeeded: str
    running: str
    failed: str
    queued: str
    old_succeeded: str
    rejection: str  #: an open rejection of ``typo.json``


HYPERPARAMETERS = {"batchSize": 2, "learningRate": 0.001, "epochCount": 3}


def new_job(key: str, *, display_name: str, labels: dict[str, str] | None = None, total_steps: int = 12) -> NewJob:
    """A job as the intake would record it (a tiny spec)."""
    return NewJob(
        job_key=key, priority=0, display_name=display_name, base_model="models/gemini-1.5-flash-001-tuning",
        tuned_model_id=f"{key}-model", labels=labels or {}, source_file=f"{key}.json", intake_id=f"intake-{key}",
        max_run_time=None, stall_timeout=None,
        body_json=json.dumps({"tuningTask": {"hyperparameters": HYPERPARAMETERS}}),
        example_count=8, total_steps=total_steps, file_sha256="0" * 64, file_bytes=321,
    )


def losses(steps: int) -> list[Snapshot]:
    """A falling loss curve, four steps per epoch."""
    return [Snapshot(step=i, epoch=(i - 1) // 4, mean_loss=round(5.0 / i, 4)) for i in range(1, steps + 1)]


async def _claim(store: SqlStore, job: Job, now: datetime) -> Job:
    claimed = await store.claim_due(OWNER, now, timedelta(minutes=5), 100, 100)
    return next(j for j in claimed if j.id == job.id)


async def _start(store: SqlStore, job: Job, now: datetime) -> Job:
    job = await _claim(store, job, now)
    job = await store.commit_step(job, OWNER, now, JobChanges(submitted_at=now), to=JobState.SUBMITTING, release=False)
    return await store.commit_step(
        job, OWNER, now,
        JobChanges(operation_name=f"{job.tuned_model_name}/operations/op1", model_name=job.tuned_model_name,
                   started_at=now, next_check_at=now),
        to=JobState.RUNNING,
    )


async def build_database(where: Path | DatabaseSettings) -> SampleJobs:
    """Write the sample jobs into a fresh, migrated database: a SQLite file at ``where``, or those settings'."""
    async with open_store(where if isinstance(where, DatabaseSettings) else DatabaseSettings(path=where)) as store:
        old = NOW - timedelta(days=45)
        old_job = await _start(store, await store.add_job(new_job("old", display_name="last quarter"), old), old)
        old_job = await _claim(store, old_job, old)
        await store.commit_step(old_job, OWNER, old, JobChanges(completed_steps=12, last_loss=losses(12)[-1].mean_loss),
                                to=JobState.SUCCEEDED, snapshots_seen=losses(12))

        start = NOW - timedelta(hours=2)
        done = await _start(store, await store.add_job(
            new_job("done", display_name="number generator", labels={"team": "nlp"}), start), start)
        done = await _claim(store, done, start + timedelta(minutes=5))
        await store.commit_step(done, OWNER, NOW - timedelta(hours=1),
                                JobChanges(completed_steps=12, last_loss=losses(12)[-1].mean_loss,
                                           remote_state="ACTIVE"),
                                to=JobState.SUCCEEDED, snapshots_seen=losses(12))

        running = await _start(store, await store.add_job(
            new_job("busy", display_name="sweep lr=0.01", labels={"team": "nlp"}), start), start)
        running = await _claim(store, running, NOW - timedelta(minutes=1))
        await store.commit_step(running, OWNER, NOW - timedelta(minutes=1),
                                JobChanges(completed_steps=6, last_loss=losses(6)[-1].mean_loss, next_check_at=NOW,
                                           attempts=1, last_error="503 UNAVAILABLE: The model is overloaded."),
                                snapshots_seen=losses(6))

        failed = await store.add_job(new_job("bad", display_name="too long", labels={"team": "vision"}), start)
        failed = await _claim(store, failed, start)
        failed = await store.commit_step(failed, OWNER, start, to=JobState.SUBMITTING, release=False)
        await store.commit_step(
            failed, OWNER, start,
            JobChanges(error_code=400, error_status="INVALID_ARGUMENT",
                       error_message="Request contains an invalid argument."),
            to=JobState.FAILED, detail={"phase": "create", "http_status": 400},
        )

        queued = await store.add_job(new_job("later", display_name="waiting"), NOW + timedelta(hours=1))
        rejection = await store.add_rejection(NewRejection(
            file="typo.json", rejected_file="typo.json", field="tuning_task.hyperparameters.epoch_count",
            problem="must be a whole number (got 'five')", duplicate_of=None, intake_id="intake-typo",
        ), NOW - timedelta(minutes=30))
    return SampleJobs(done.id, running.id, failed.id, queued.id, old_job.id, rejection.id)


@pytest.fixture
def sample_db(tmp_path: Path) -> tuple[Path, SampleJobs]:
    """The sample database (built synchronously, so that sync CLI tests can use it too)."""
    path = tmp_path / "status.db"
    return path, asyncio.run(build_database(path))
