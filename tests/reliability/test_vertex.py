"""The promises on Vertex AI: upload once, create once (by label, under list lag), every loss point once,
terminal states as Vertex says, errors classified alike. The real scheduler, store and Vertex backend
against the emulator's Vertex AI, TensorBoard and Cloud Storage routes, with its faults."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.jobs import Job, JobState
from orchestrator.store.sql import SqlStore
from orchestrator.vertex.jobfile import JOB_LABEL
from tests.conftest import TEST_TIME_SCALE
from tests.reliability.conftest import (
    FAST,
    INSTALLATION,
    Emulator,
    all_jobs,
    running_scheduler,
    until,
    until_terminal,
)
from tests.reliability.vertex_rig import STAGING, add_vertex_job, vertex_for

#: A stall timeout far shorter than the stalled job's life, and than the other job's wait for quota.
STALLING = replace(FAST, stall_timeout=1.0)


async def vertex_creates(emulator: Emulator) -> dict[str, int]:
    """Committed creates per ``orchestrator-job`` label: the exactly-once witness."""
    by_label: dict[str, int] = (await emulator.admin("GET", "vertex/creates"))["by_label"]
    return {label.removeprefix(f"{JOB_LABEL}="): n for label, n in by_label.items() if label.startswith(JOB_LABEL)}


async def uploads(emulator: Emulator) -> dict[str, int]:
    result: dict[str, int] = await emulator.admin("GET", "storage/uploads")
    return result


async def remote_jobs(emulator: Emulator) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = (await emulator.admin("GET", "vertex/jobs"))["jobs"]
    return jobs


async def snapshot_steps(store: SqlStore, job: Job) -> list[int]:
    rows = await store._db.run(
        lambda conn: conn.exec_driver_sql("SELECT step FROM snapshots WHERE job_id = ? ORDER BY step", (job.id,)).all()
    )
    return [step for (step,) in rows]


async def test_a_vertex_job_runs_to_its_tuned_model_with_every_loss_point(store: SqlStore, emulator: Emulator) -> None:
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED and done.remote_state == "JOB_STATE_SUCCEEDED"
    [remote] = await remote_jobs(emulator)
    assert done.remote_job == remote["name"] and done.remote_job.startswith("projects/")
    assert remote["labels"][JOB_LABEL] == job.id
    assert done.total_steps == remote["totalSteps"] and done.completed_steps == done.total_steps
    assert await snapshot_steps(store, done) == list(range(1, remote["totalSteps"] + 1))
    assert done.model_name and "/models/" in done.model_name and done.endpoint and "/endpoints/" in done.endpoint
    assert done.billable_tokens and done.billable_tokens > 0 and done.remote_substate is None
    assert done.training_data_uri and done.training_data_uri.startswith(f"{STAGING}/")
    assert done.training_data_uri == remote["trainingDatasetUri"]
    assert await uploads(emulator) == {done.training_data_uri: 1}
    assert await vertex_creates(emulator) == {job.id: 1}


async def test_a_create_whose_answer_was_lost_is_adopted_by_label(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "lost_response", "routes": ["vertex_create"], "calls": [1]})
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await vertex_creates(emulator) == {job.id: 1}
    assert (await emulator.requests("vertex_create")) == {"lost": 1}


async def test_list_lag_does_not_make_a_second_create(store: SqlStore, emulator: Emulator) -> None:
    """The lost create is listed a second late (40 simulated s): the daemon keeps looking, within its settle window."""
    await emulator.faults(
        {"kind": "lost_response", "routes": ["vertex_create"], "calls": [1]},
        {"kind": "list_lag", "seconds": 40.0, "routes": ["vertex_create"], "calls": [1]},
    )
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url, settle=3.0) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await vertex_creates(emulator) == {job.id: 1}
    assert (await emulator.requests("vertex_list")).get("200", 0) >= 2  # it looked again while the list lagged


async def test_an_error_while_looking_keeps_looking(store: SqlStore, emulator: Emulator) -> None:
    """A failed list is no proof that the lost create did not land: the job still waits out the window.

    (The chaos run found this: a token refresh that failed during the list made the daemon create again.)
    """
    await emulator.faults(
        {"kind": "lost_response", "routes": ["vertex_create"], "calls": [1]},
        {"kind": "list_lag", "seconds": 40.0, "routes": ["vertex_create"], "calls": [1]},
        {"kind": "http_error", "status": 503, "routes": ["vertex_list"], "calls": [1, 2]},
    )
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url, settle=3.0) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await vertex_creates(emulator) == {job.id: 1}
    assert (await emulator.requests("vertex_list")).get("503") == 2


async def test_without_a_settle_window_list_lag_would_create_twice(store: SqlStore, emulator: Emulator) -> None:
    """The witness is not vacuous: a daemon that re-creates as soon as the list is empty pays twice."""
    await emulator.faults(
        {"kind": "lost_response", "routes": ["vertex_create"], "calls": [1]},
        {"kind": "list_lag", "seconds": 200.0, "routes": ["vertex_create"], "calls": [1]},
    )
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url, settle=0.0) as vertex, running_scheduler(store, vertex):
        await until_terminal(store)

    assert await vertex_creates(emulator) == {job.id: 2}


async def test_an_upload_whose_answer_was_lost_is_not_repeated(store: SqlStore, emulator: Emulator) -> None:
    """The repeat gets 412 (the object exists), compares its MD5 and goes on: one object, one create."""
    await emulator.faults({"kind": "lost_response", "routes": ["storage_upload"], "calls": [1]})
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert (await emulator.requests("storage_upload")) == {"lost": 1, "412": 1}
    assert await uploads(emulator) == {done.training_data_uri: 1}
    assert await vertex_creates(emulator) == {job.id: 1}


async def test_two_jobs_with_the_same_examples_share_one_object(store: SqlStore, emulator: Emulator) -> None:
    """The object is named by the content's SHA-256: the second job's upload finds it (412) and uses it."""
    first = await add_vertex_job(store, 1, data=None)
    second = await add_vertex_job(store, 2, data=None)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        done = await until_terminal(store, 2)

    assert {j.state for j in done} == {JobState.SUCCEEDED}
    assert len({j.training_data_uri for j in done}) == 2  # their examples differ by index
    assert await vertex_creates(emulator) == {first.id: 1, second.id: 1}


@pytest.mark.parametrize(
    ("fault", "state", "remote_state", "code"),
    [
        ({"kind": "fail_job", "step": 2, "code": 13, "message": "Internal error in tuning."}, JobState.FAILED,
         "JOB_STATE_FAILED", 13),
        ({"kind": "expire_job", "step": 2}, JobState.FAILED, "JOB_STATE_EXPIRED", 4),
        ({"kind": "partially_succeed_job"}, JobState.SUCCEEDED, "JOB_STATE_PARTIALLY_SUCCEEDED", None),
    ],
)
async def test_terminal_states_are_mapped_as_documented(
    store: SqlStore, emulator: Emulator, fault: dict[str, Any], state: JobState, remote_state: str, code: int | None
) -> None:
    await emulator.faults({**fault, "routes": ["vertex_create"]})
    await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert (done.state, done.remote_state, done.error_code) == (state, remote_state, code)
    if state is JobState.FAILED:
        assert done.error_message
        assert "expired" in done.error_message if remote_state.endswith("EXPIRED") else "Internal error" in (
            done.error_message)
    else:
        assert done.model_name and done.endpoint


async def test_a_permanent_400_fails_the_job_with_googles_words(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "http_error", "status": 400, "message": "Base model gemini-0 is not supported.",
                           "routes": ["vertex_create"]})
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert (done.state, done.error_code, done.error_status) == (JobState.FAILED, 400, "INVALID_ARGUMENT")
    assert done.error_message == "Base model gemini-0 is not supported."
    assert await vertex_creates(emulator) == {}
    assert job.id


async def test_429_pauses_every_vertex_call_and_the_job_carries_on(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "rate_limit", "retry_delay_seconds": 0.5, "routes": ["vertex_get"], "calls": [1]})
    await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert (await emulator.requests("vertex_get")).get("429") == 1


async def test_5xx_and_dropped_connections_are_retried(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults(
        {"kind": "http_error", "status": 503, "routes": ["vertex_create", "vertex_get", "storage_upload"],
         "calls": [1]},
        {"kind": "drop_connection", "routes": ["vertex_read", "vertex_list"], "calls": [1]},
    )
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert done.state is JobState.SUCCEEDED
    assert await vertex_creates(emulator) == {job.id: 1}
    assert await snapshot_steps(store, done) == list(range(1, (done.total_steps or 0) + 1))


async def test_cancel_is_followed_to_the_real_end(store: SqlStore, emulator: Emulator) -> None:
    await emulator.faults({"kind": "stall_job", "step": 1, "routes": ["vertex_create"]})
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        async def running() -> bool:
            return (await all_jobs(store))[0].state is JobState.RUNNING
        await until(running)
        await store.request_cancel(job.id, job.created_at)
        [done] = await until_terminal(store)

    assert (done.state, done.remote_state, done.error_code) == (JobState.CANCELLED, "JOB_STATE_CANCELLED", 1)
    assert done.cancel_sent_at is not None
    assert (await emulator.requests("vertex_cancel")) == {"200": 1}


async def test_a_failed_vertex_job_retried_is_a_new_tuning_job(store: SqlStore, emulator: Emulator) -> None:
    """``orchestrator retry``'s new identity holds on Vertex too: a new job id, so a new label and one new create."""
    await emulator.faults({"kind": "fail_job", "step": 2, "code": 13, "routes": ["vertex_create"], "calls": [1]})
    await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        [failed] = await until_terminal(store)
        assert failed.state is JobState.FAILED and failed.error_code == 13
        retried = await store.retry_job(failed.id, failed.updated_at, INSTALLATION)
        jobs = {job.id: job for job in await until_terminal(store, 2)}

    assert jobs[retried.id].state is JobState.SUCCEEDED and jobs[retried.id].retry_of == failed.id
    assert jobs[retried.id].remote_job != failed.remote_job
    assert await vertex_creates(emulator) == {failed.id: 1, retried.id: 1}


async def test_waiting_for_quota_is_not_a_stall(store: SqlStore, emulator: Emulator) -> None:
    """One concurrent job per project (the emulator's default): the second waits for quota longer than the
    stall timeout without being cancelled, while the first, which really stalls, is."""
    await emulator.faults({"kind": "stall_job", "step": 1, "routes": ["vertex_create"], "calls": [1]})
    stalled = await add_vertex_job(store, 1)
    waiting = await add_vertex_job(store, 2)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex, STALLING):
        done = {j.id: j for j in await until_terminal(store, 2)}

    assert (done[stalled.id].state, done[stalled.id].cancel_reason) == (JobState.FAILED, "stalled")
    assert done[waiting.id].state is JobState.SUCCEEDED and done[waiting.id].cancel_reason is None


async def test_a_job_that_waited_for_quota_has_its_step_rate_measured_from_when_it_began(
    store: SqlStore, emulator: Emulator
) -> None:
    # The emulator's quota is one tuning job per project: the second waits (PENDING, WAITING_FOR_QUOTA)
    # for the whole of the first, far longer than the stall timeout.
    stall = 0.5
    first = await add_vertex_job(store, 1, examples=128, epochs=4)
    second = await add_vertex_job(store, 2)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex, replace(FAST, stall_timeout=stall)):
        jobs = {j.id: j for j in await until_terminal(store, 2)}
    ran, waited = jobs[first.id], jobs[second.id]

    assert (ran.state, waited.state) == (JobState.SUCCEEDED, JobState.SUCCEEDED), waited.error_message
    assert ran.started_at and ran.finished_at and ran.finished_at - ran.started_at > timedelta(seconds=3 * stall)
    # The wait is not step time: the second job's rate (polls, ETA) is measured from when it began working.
    assert ran.working_since and ran.working_since >= ran.started_at
    assert waited.started_at and waited.working_since
    assert waited.working_since - waited.started_at > (ran.finished_at - ran.started_at) / 2


async def test_a_job_the_service_no_longer_has_fails_with_words_that_say_why(
    store: SqlStore, emulator: Emulator
) -> None:
    # As after a restart of a daemon with the embedded emulator: the job is polled at a fresh, empty one.
    job = await add_vertex_job(store)
    async with vertex_for(emulator.url) as vertex, running_scheduler(store, vertex):
        async def created() -> bool:
            return any(j.remote_job for j in await all_jobs(store))
        await until(created)
    async with (
        running_emulator(EmulatorSettings(time_scale=TEST_TIME_SCALE), host="127.0.0.1", port=0) as fresh,
        vertex_for(fresh) as vertex, running_scheduler(store, vertex),
    ):
        [ended] = await until_terminal(store)

    assert ended.id == job.id and ended.state is JobState.FAILED
    assert (ended.error_code, ended.error_status) == (404, "NOT_FOUND")
    assert ended.error_message and f"the tuning job {ended.remote_job} no longer exists at the service" in (
        ended.error_message) and '[api] base_url = "emulator"' in ended.error_message
