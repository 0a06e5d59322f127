"""``orchestrator retry``: a failed job runs again as a new job with a new remote identity (issue 13, item 7).

Before it, a failed job could only be run again by editing its ``job_key``: the same file was a
duplicate, and after ``prune`` the re-drop re-adopted the failed tuned model (same id) and failed at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from orchestrator.cli import main
from orchestrator.config import DatabaseSettings, Settings
from orchestrator.daemon import run_daemon
from orchestrator.errors import OrchestratorError
from orchestrator.intake import drop_job_file
from orchestrator.jobs import TUNED_MODEL_ID_PATTERN, JobState, retry_identity
from orchestrator.store import JobChanges, SqlStore, open_store
from orchestrator.store.schema import jobs
from orchestrator.store.sql import job_from_row
from tests.conftest import RunningDaemon
from tests.corpus import good_job
from tests.status.conftest import OWNER, _claim, new_job

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


async def test_a_failed_job_retried_runs_again_under_a_new_tuned_model(
    daemon: RunningDaemon, emulator_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    async with aiohttp.ClientSession() as http:
        rule = {"kind": "fail_job", "step": 2, "code": 13, "routes": ["create"], "calls": [1]}
        async with http.post(f"{emulator_url}/_emulator/faults", json={"seed": 0, "rules": [rule]}) as response:
            assert response.status == 200
        drop_job_file(daemon.settings.spool.path, "job.json", good_job(orchestrator={"job_key": "nightly"}))
        [failed] = await daemon.wait_for_jobs(1)
        assert failed.state is JobState.FAILED

        code = await asyncio.to_thread(main, ["retry", failed.id[:6], "--database", str(daemon.settings.database.path)])

        assert code == 0
        jobs = {job.id: job for job in await daemon.wait_for_jobs(2)}
        [retried] = [job for job in jobs.values() if job.id != failed.id]
        assert retried.state is JobState.SUCCEEDED and retried.retry_of == failed.id
        assert retried.job_key == "nightly~retry1" and retried.tuned_model_id != failed.tuned_model_id
        assert f"{failed.id}: retried as job {retried.id}" in capsys.readouterr().out
        async with http.get(f"{emulator_url}/_emulator/creates") as response:
            creates = await response.json()
        assert creates == {failed.tuned_model_name: 1, retried.tuned_model_name: 1}

    assert (await daemon.detail(failed.id)).retried_as == retried.id
    assert (await daemon.detail(retried.id)).events[0].detail == {"retry_of": failed.id, "source_file": "job.json"}
    assert await asyncio.to_thread(main, ["show", failed.id, "--database", str(daemon.settings.database.path)]) == 0
    shown = capsys.readouterr().out
    assert f"retried as       {retried.id}" in shown


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with open_store(DatabaseSettings(path=tmp_path / "orchestrator.db")) as writer:
        yield writer


async def test_only_failed_or_cancelled_jobs_are_retried_and_each_once(store: SqlStore) -> None:
    queued = await store.add_job(new_job("q", display_name="waiting"), NOW)
    with pytest.raises(OrchestratorError, match=f"job {queued.id} is queued: only failed or cancelled jobs"):
        await store.retry_job(queued.id, NOW, "itest1")

    cancelled = await store.request_cancel(queued.id, NOW)
    first = await store.retry_job(cancelled.id, NOW, "itest1")
    assert (first.state, first.retry_of, first.job_key) == (JobState.QUEUED, queued.id, "q~retry1")
    assert await store.request_body(first.id) == await store.request_body(queued.id)
    with pytest.raises(OrchestratorError, match=f"retried already as job {first.id} \\(queued\\); retry that one"):
        await store.retry_job(queued.id, NOW, "itest1")

    first = await _claim(store, first, NOW)
    first = await store.commit_step(first, OWNER, NOW, to=JobState.SUBMITTING, release=False)
    await store.commit_step(first, OWNER, NOW, JobChanges(error_message="Internal error"), to=JobState.FAILED)
    second = await store.retry_job(first.id, NOW, "itest1")
    assert (second.retry_of, second.job_key) == (first.id, "q~retry2")
    assert len({queued.tuned_model_id, first.tuned_model_id, second.tuned_model_id}) == 3


def test_the_retry_identity_is_a_valid_new_tuned_model_id_for_any_original() -> None:
    """Even a 40-character chosen id gets a new id inside the API's pattern."""
    row: dict[str, object] = dict.fromkeys(column.name for column in jobs.c)
    row.update(id="abc", job_key="k", state="failed", tuned_model_id="x" * 40, display_name="Ünïcode 名前",
               cancel_requested=False)
    key, model = retry_identity(job_from_row(row), 3, "iabcde")
    assert key == "k~retry3" and TUNED_MODEL_ID_PATTERN.fullmatch(model) and model != "x" * 40


@pytest.mark.parametrize(
    ("failing_creates", "code", "auto_retry", "states"),
    [
        ([1], 13, 2, ["failed", "succeeded"]),  # INTERNAL: retried, and the retry succeeds
        ([1, 2], 13, 1, ["failed", "failed"]),  # bounded: one automatic attempt, then it stays failed
        ([1], 9, 2, ["failed"]),  # FAILED_PRECONDITION would fail again: not retried
    ],
    ids=["retried", "bounded", "not-retryable"],
)
async def test_auto_retry_retries_retryable_failures_a_bounded_number_of_times(
    settings: Settings, emulator_url: str, failing_creates: list[int], code: int, auto_retry: int, states: list[str]
) -> None:
    settings = replace(settings, scheduler=replace(settings.scheduler, auto_retry=auto_retry))
    async with aiohttp.ClientSession() as http:
        rule = {"kind": "fail_job", "step": 2, "code": code, "routes": ["create"], "calls": failing_creates}
        async with http.post(f"{emulator_url}/_emulator/faults", json={"seed": 0, "rules": [rule]}) as response:
            assert response.status == 200
        stop = asyncio.Event()
        daemon = RunningDaemon(settings, stop, asyncio.create_task(run_daemon(settings, stop)))
        try:
            drop_job_file(settings.spool.path, "job.json", good_job(orchestrator={"job_key": "nightly"}))
            await daemon.wait_for_jobs(len(states))
        finally:  # a graceful stop ends the step that failed the last job, and with it any retry it makes
            stop.set()
            await asyncio.wait_for(daemon.task, timeout=15)
        jobs = sorted(await daemon.wait_for_jobs(len(states)), key=lambda job: job.created_at)
        async with http.get(f"{emulator_url}/_emulator/creates") as response:
            creates = await response.json()

    assert [job.state.value for job in jobs] == states
    assert [job.retry_of for job in jobs] == [None, *(job.id for job in jobs[:-1])]
    assert [job.job_key for job in jobs] == ["nightly", *(f"nightly~retry{n}" for n in range(1, len(jobs)))]
    assert creates == {job.tuned_model_name: 1 for job in jobs}
    for retried in jobs[1:]:
        assert (await daemon.detail(retried.id)).events[0].detail["automatic"] is True


async def test_an_auto_retry_a_crash_kept_from_happening_is_made_once_at_the_next_start(store: SqlStore) -> None:
    """The failure's event carries the wish to retry: whoever looks next makes the retry, and only once."""
    job = await _claim(store, await store.add_job(new_job("q", display_name="waiting"), NOW), NOW)
    job = await store.commit_step(job, OWNER, NOW, to=JobState.SUBMITTING, release=False)
    failed = await store.commit_step(job, OWNER, NOW, JobChanges(error_code=13), to=JobState.FAILED,
                                     detail={"code": 13, "auto_retry": True})

    [retried] = await store.retry_marked_failures(NOW, "itest1")
    assert retried.retry_of == failed.id and retried.state is JobState.QUEUED
    assert await store.retry_marked_failures(NOW, "itest1") == []
