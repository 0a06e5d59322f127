"""Cancellation in every state, deadlines and stalls: each ends in the state the API reports, for the right reason."""

from __future__ import annotations

from dataclasses import replace

from orchestrator.clock import SystemClock
from orchestrator.jobs import Job, JobState
from orchestrator.store.sql import SqlStore
from tests.corpus import good_job
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

#: 150 steps at 50 ms each: long enough to cancel in the middle.
LONG = {"tuning_task": {"hyperparameters": {"batch_size": 2, "epoch_count": 100},
                        "training_data": {"examples": {"examples": [
                            {"text_input": "1", "output": "2"}, {"text_input": "2", "output": "3"},
                            {"text_input": "3", "output": "4"}]}}}}


async def state_is(store: SqlStore, state: JobState, *, steps: int = 0) -> Job:
    found: list[Job] = []

    async def reached() -> bool:
        found[:] = [job for job in await all_jobs(store) if job.state is state and job.completed_steps >= steps]
        return bool(found)

    await until(reached)
    return found[0]


async def test_a_queued_job_is_cancelled_at_once_and_never_created(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    job = await add_job(store)
    cancelled = await cli_store.request_cancel(job.id, SystemClock().now())
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert cancelled.state is JobState.CANCELLED and done.state is JobState.CANCELLED
    assert await emulator.creates() == {}


async def test_a_cancel_during_submitting_is_honoured_once_the_job_runs(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    await emulator.faults({"kind": "latency", "seconds": 0.5, "routes": ["create"], "calls": [1]})
    job = await add_job(store, **LONG)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        await state_is(store, JobState.SUBMITTING)
        flagged = await cli_store.request_cancel(job.id, SystemClock().now())
        [done] = await until_terminal(store)

    assert flagged.state is JobState.SUBMITTING and flagged.cancel_requested
    assert done.state is JobState.CANCELLED and done.cancel_reason == "user" and not done.cancel_requested
    assert (await emulator.remote_jobs())[job.tuned_model_name]["ending"] == "cancelled"
    assert await emulator.creates() == {job.tuned_model_name: 1}


async def test_a_running_job_is_cancelled_on_the_api_and_polled_to_its_end(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    job = await add_job(store, **LONG)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        await state_is(store, JobState.RUNNING, steps=2)
        await cli_store.request_cancel(job.id, SystemClock().now())
        [done] = await until_terminal(store)

    remote = (await emulator.remote_jobs())[job.tuned_model_name]
    assert done.state is JobState.CANCELLED and remote["ending"] == "cancelled"
    assert done.error_code == 1 and done.completed_steps == remote["completedSteps"] < remote["totalSteps"]
    assert (await emulator.requests("cancel_operation")) == {"200": 1}


async def test_an_adopted_job_without_an_operation_is_stopped_by_deleting_its_model(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    await emulator.faults(
        {"kind": "lost_response", "routes": ["create"], "calls": [1]},
        {"kind": "http_error", "status": 404, "routes": ["list_operations"]},
    )
    job = await add_job(store, **LONG)
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        await state_is(store, JobState.RUNNING)
        await cli_store.request_cancel(job.id, SystemClock().now())
        [done] = await until_terminal(store)

    assert done.state is JobState.CANCELLED and done.operation_name is None
    assert job.tuned_model_name not in await emulator.remote_jobs()
    assert (await emulator.requests("delete_model")) == {"200": 1}


async def test_cancelled_models_are_deleted_when_configured(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    job = await add_job(store, **LONG)
    async with api_for(emulator.url) as api, running_scheduler(store, api, replace(FAST, delete_cancelled_models=True)):
        await state_is(store, JobState.RUNNING, steps=1)
        await cli_store.request_cancel(job.id, SystemClock().now())
        [done] = await until_terminal(store)

        async def deleted() -> bool:
            return job.tuned_model_name not in await emulator.remote_jobs()

        await until(deleted, within=5)

    assert done.state is JobState.CANCELLED


async def test_a_job_past_its_deadline_is_cancelled_remotely_and_failed(store: SqlStore, emulator: Emulator) -> None:
    job = await add_job(store, data=good_job(orchestrator={"job_key": "deadline", "max_run_time": 1.0}, **LONG))
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        [done] = await until_terminal(store)

    assert done.state is JobState.FAILED and done.cancel_reason == "deadline"
    assert done.error_message is not None and done.error_message.startswith("deadline: cancelled by the orchestrator")
    assert (await emulator.remote_jobs())[job.tuned_model_name]["ending"] == "cancelled"


async def test_a_stalled_job_is_cancelled_remotely_and_failed(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "stall_job", "step": 3})
    job = await add_job(store, **LONG)
    async with api_for(emulator.url) as api, running_scheduler(store, api, replace(FAST, stall_timeout=1.0)):
        [done] = await until_terminal(store)

    assert done.state is JobState.FAILED and done.cancel_reason == "stalled" and done.completed_steps == 3
    assert (await emulator.remote_jobs())[job.tuned_model_name]["ending"] == "cancelled"


async def test_a_job_that_finishes_before_the_cancel_lands_ends_succeeded(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    """The cancel is sent, but the API finished first: the terminal state is the API's, not our wish."""
    await emulator.faults({"kind": "http_error", "status": 503, "routes": ["cancel_operation"], "calls": [1, 2, 3]})
    job = await add_job(store)
    async with api_for(emulator.url) as api, running_scheduler(store, api, replace(FAST, backoff_base=0.3)):
        await state_is(store, JobState.RUNNING)
        await cli_store.request_cancel(job.id, SystemClock().now())
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert (await emulator.remote_jobs())[job.tuned_model_name]["ending"] == "succeeded"


async def test_a_refused_cancel_does_not_fail_the_job(
    store: SqlStore, cli_store: SqlStore, emulator: Emulator
) -> None:
    """``:cancel`` answered 400 (as for an operation that ended meanwhile): the job ends as the API says."""
    await emulator.faults({"kind": "http_error", "status": 400, "message": "Operation is done.",
                           "routes": ["cancel_operation"]})
    job = await add_job(store, tuning_task={**LONG["tuning_task"], "hyperparameters": {"epoch_count": 20}})
    async with api_for(emulator.url) as api, running_scheduler(store, api):
        await state_is(store, JobState.RUNNING)
        await cli_store.request_cancel(job.id, SystemClock().now())
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.cancel_sent_at is not None
    assert (await emulator.remote_jobs())[job.tuned_model_name]["ending"] == "succeeded"
