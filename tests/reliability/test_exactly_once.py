"""Promise 2: no tuning paid twice. The id is committed before the create; every repeat sends it; 409 is adopted."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from orchestrator.clock import SystemClock
from orchestrator.jobs import Job, JobState
from orchestrator.store import JobChanges
from orchestrator.store.sql import SqlStore
from tests.reliability.conftest import (
    FAST,
    Emulator,
    add_job,
    all_jobs,
    api_for,
    running_scheduler,
    until,
    until_terminal,
)
from tests.reliability.test_cancel import LONG


async def test_lost_create_response_is_adopted_from_the_v1_operation_list(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "lost_response", "routes": ["create"], "calls": [1]})
    job = await add_job(store)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await emulator.creates() == {job.tuned_model_name: 1}
    assert (await emulator.requests("create")) == {"lost": 1, "409": 1}
    assert done.operation_name is not None and done.operation_name.startswith(f"{job.tuned_model_name}/operations/")


async def test_operation_list_missing_on_v1_is_read_on_v1beta(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults(
        {"kind": "lost_response", "routes": ["create"], "calls": [1]},
        {"kind": "http_error", "status": 404, "routes": ["list_operations"], "calls": [1]},
    )
    job = await add_job(store)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.operation_name is not None
    assert await emulator.creates() == {job.tuned_model_name: 1}
    assert (await emulator.requests("list_operations")) == {"404": 1, "200": 1}


async def test_operation_list_missing_everywhere_falls_back_to_the_model_state(
    store: SqlStore, emulator: Emulator
) -> None:
    await emulator.faults(
        {"kind": "lost_response", "routes": ["create"], "calls": [1]},
        {"kind": "http_error", "status": 404, "routes": ["list_operations"]},
    )
    job = await add_job(store)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.operation_name is None
    assert done.remote_state == "ACTIVE" and done.completed_steps == done.total_steps
    assert await emulator.creates() == {job.tuned_model_name: 1}


async def test_5xx_and_dropped_creates_repeat_the_same_id_with_back_off(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults(
        {"kind": "http_error", "status": 503, "routes": ["create"], "calls": [1]},
        {"kind": "drop_connection", "routes": ["create"], "calls": [2]},
        {"kind": "lost_response", "routes": ["create"], "calls": [3]},
    )
    job = await add_job(store)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await emulator.creates() == {job.tuned_model_name: 1}
    assert (await emulator.requests("create")) == {"503": 1, "dropped": 1, "lost": 1, "409": 1}


async def test_a_create_sent_by_a_crashed_process_is_adopted_by_the_next(store: SqlStore, emulator: Emulator) -> None:
    """The previous process committed `submitting`, sent the create and died before recording it."""
    job = await add_job(store)
    now = SystemClock().now()
    [claimed] = await store.claim_due("dead-process", now, timedelta(seconds=60), 1, 1)
    await store.commit_step(claimed, "dead-process", now, JobChanges(submitted_at=now), to=JobState.SUBMITTING,
                            release=False)
    async with api_for(emulator.url) as api:
        await api.create_tuned_model(job.tuned_model_id, await store.request_body(job.id))
        assert await store.release_all_leases() == 1  # what the daemon does at start-up, holding its lock
        async with running_scheduler(store, api, owner="new-process"):
            [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await emulator.creates() == {job.tuned_model_name: 1}


async def test_a_permanent_create_error_fails_the_job_with_the_api_words(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "http_error", "status": 400, "message": "bad hyperparameters", "routes": ["create"]})
    await add_job(store)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.FAILED
    assert (done.error_code, done.error_status, done.error_message) == (400, "INVALID_ARGUMENT", "bad hyperparameters")
    assert await emulator.creates() == {}


async def test_submitting_jobs_count_against_the_active_cap(store: SqlStore, emulator: Emulator) -> None:
    """Creates that keep failing hold their slots: the cap counts jobs that may exist remotely."""
    await emulator.faults({"kind": "http_error", "status": 503, "routes": ["create"]})
    for index in range(6):
        await add_job(store, index)
    async with api_for(emulator.url) as api, running_scheduler(store, api):

        async def retried_thrice() -> bool:
            return sum(job.attempts >= 3 for job in await all_jobs(store)) >= 4

        await until(retried_thrice)
        states = [job.state for job in await all_jobs(store)]

    assert states.count(JobState.SUBMITTING) == 4 and states.count(JobState.QUEUED) == 2
    assert sum((await emulator.requests("create")).values()) >= 12


class CountingStore(SqlStore):
    """The real store, counting claim transactions."""

    claims = 0

    async def claim_due(self, *args: Any, **kwargs: Any) -> list[Job]:
        self.claims += 1
        return await super().claim_due(*args, **kwargs)


async def test_jobs_waiting_for_the_cap_do_not_make_the_loop_spin(
    store: SqlStore, emulator: Emulator, tmp_path: Path
) -> None:
    """Due but blocked (queued behind the cap, or polled by a step in flight): the loop sleeps, not spins."""
    counting = CountingStore(tmp_path / "orchestrator.db", 5.0)  # the fixture's database, counted
    for index in range(4):
        await add_job(counting, index, **LONG)
    settings = replace(FAST, max_active_jobs=1, poll_min_interval=0.5, poll_max_interval=1.0)
    async with api_for(emulator.url) as api, running_scheduler(counting, api, settings):

        async def one_running() -> bool:
            return any(job.state is JobState.RUNNING for job in await all_jobs(store))

        await until(one_running)
        before = counting.claims
        await asyncio.sleep(2.0)  # the behaviour under test is what happens while nothing is due
        claims = counting.claims - before
    await counting.dispose()

    assert claims <= 8  # about one per poll and one per idle second; a spinning loop makes hundreds
