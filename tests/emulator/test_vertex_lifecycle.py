"""Vertex AI tuning jobs over REST with a manual clock: states, sub-states, quota, cancel, list, loss chain."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.emulator.conftest import EmulatorFactory, ManualClock
from tests.emulator.vertex_support import (
    DATASET,
    LOCATION,
    NUMBER,
    PARENT,
    create_body,
    example,
    jsonl,
    upload,
    vcall,
)

TS6 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


async def _setup(http: aiohttp.ClientSession, url: str, examples: int = 20) -> None:
    await upload(http, url, "train.jsonl", jsonl([example(n) for n in range(examples)]))


async def _create(http: aiohttp.ClientSession, url: str, **extra: Any) -> dict[str, Any]:
    status, job = await vcall(http, "POST", f"{url}/v1/{PARENT}/tuningJobs", create_body(**extra))
    assert status == 200, job
    return job


async def _get(http: aiohttp.ClientSession, url: str, name: str) -> dict[str, Any]:
    status, job = await vcall(http, "GET", f"{url}/v1/{name}")
    assert status == 200, job
    return job


async def test_pending_running_succeeded(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """20 examples / batch 8 → 3 steps an epoch, 2 epochs = 6 steps of 2 s, then one step of post-processing."""
    async with emulator_factory(start_delay_seconds=1.0) as url:
        await _setup(http, url)
        job = await _create(http, url, tunedModelDisplayName="numbers", labels={"orchestrator-job": "j1"})
        assert re.fullmatch(rf"projects/{NUMBER}/locations/{LOCATION}/tuningJobs/\d{{19}}", job["name"])
        assert (job["state"], job["tuningJobState"]) == ("JOB_STATE_PENDING", "TUNING_JOB_STATE_PROCESSING_DATASET")
        assert job["supervisedTuningSpec"]["hyperParameters"] == {
            "epochCount": "2",
            "learningRateMultiplier": 1,
            "adapterSize": "ADAPTER_SIZE_FOUR",
        }
        stats = job["tuningDataStats"]["supervisedTuningDataStats"]
        assert (stats["tuningDatasetExampleCount"], stats["tuningStepCount"]) == ("20", "6")
        assert stats["totalBillableTokenCount"] == "40"  # 20 x (1 input + 1 output token)
        assert "startTime" not in job and "tuningJobMetadata" not in job
        assert job["experiment"].startswith(f"projects/{NUMBER}/locations/{LOCATION}/metadataStores/default/contexts/")

        clock.advance(1.0 + 2.0 * 2.5)  # running, 2 steps done (step k ends near start + k·2 s, ±0.4 s)
        job = await _get(http, url, job["name"])
        assert (job["state"], job["tuningJobState"]) == ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING")
        assert job["tuningJobMetadata"] == {"completedEpochCount": "0", "completedStepCount": "2"}
        assert TS6.fullmatch(job["startTime"]) and "endTime" not in job

        clock.advance(2.0 * 4)  # step 6 done, post-processing for one more step
        job = await _get(http, url, job["name"])
        assert (job["state"], job["tuningJobState"]) == ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_POST_PROCESSING")
        assert "tunedModel" not in job

        clock.advance(2.0 * 2)
        job = await _get(http, url, job["name"])
        assert job["state"] == "JOB_STATE_SUCCEEDED" and "tuningJobState" not in job
        assert TS6.fullmatch(job["endTime"]) and job["updateTime"] == job["endTime"]
        assert job["tuningJobMetadata"] == {"completedEpochCount": "2", "completedStepCount": "6"}
        tuned = job["tunedModel"]
        assert re.fullmatch(rf"projects/{NUMBER}/locations/{LOCATION}/models/\d+@1", tuned["model"])
        assert [(c["checkpointId"], c["epoch"], c["step"]) for c in tuned["checkpoints"]] == [
            ("1", "1", "3"),
            ("2", "2", "6"),
        ]
        assert tuned["checkpoints"][-1]["endpoint"] == tuned["endpoint"]
        assert "error" not in job


async def test_quota_queues_the_second_job(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """Quota 1: the second job waits PENDING/WAITING_FOR_QUOTA and starts the instant the first ends."""
    async with emulator_factory(start_delay_seconds=0.5) as url:
        await _setup(http, url)
        first = await _create(http, url)
        second = await _create(http, url)
        clock.advance(3.0)
        second = await _get(http, url, second["name"])
        assert (second["state"], second["tuningJobState"]) == (
            "JOB_STATE_PENDING",
            "TUNING_JOB_STATE_WAITING_FOR_QUOTA",
        )
        clock.advance(60.0)  # long past both: the start is still the first's end, not the observation
        first, second = await _get(http, url, first["name"]), await _get(http, url, second["name"])
        assert first["state"] == second["state"] == "JOB_STATE_SUCCEEDED"
        assert second["startTime"] == first["endTime"]
        async with http.get(f"{url}/_emulator/stats") as response:
            vertex = (await response.json())["vertex"]
        assert (vertex["peak_running_jobs"], vertex["peak_active_jobs"]) == (1, 2)
        async with http.get(f"{url}/_emulator/vertex/jobs") as response:
            listing = await response.json()
        assert [job["name"] for job in listing["jobs"]] == [first["name"], second["name"]]
        assert [job["state"] for job in listing["jobs"]] == ["JOB_STATE_SUCCEEDED"] * 2
        assert (listing["tuning_jobs"], listing["active_jobs"]) == (2, 0)


async def test_cancel_running_pending_and_ended(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """Running: CANCELLING until the next step boundary, then CANCELLED with error code 1; waiting: at once."""
    async with emulator_factory(start_delay_seconds=0.5) as url:
        await _setup(http, url)
        running = await _create(http, url)
        waiting = await _create(http, url)
        clock.advance(0.5 + 3.0)
        status, answer = await vcall(http, "POST", f"{url}/v1/{running['name']}:cancel")
        assert (status, answer) == (200, {})
        job = await _get(http, url, running["name"])
        assert job["state"] == "JOB_STATE_CANCELLING"
        status, _ = await vcall(http, "POST", f"{url}/v1beta1/{waiting['name']}:cancel")
        assert status == 200
        assert (await _get(http, url, waiting["name"]))["state"] == "JOB_STATE_CANCELLED"
        clock.advance(2.0)
        job = await _get(http, url, running["name"])
        assert job["state"] == "JOB_STATE_CANCELLED"
        assert job["error"]["code"] == 1 and TS6.fullmatch(job["endTime"])
        assert "tunedModel" not in job
        status, error = await vcall(http, "POST", f"{url}/v1/{running['name']}:cancel")
        assert (status, error["error"]["status"]) == (400, "FAILED_PRECONDITION")


async def test_list_pages_newest_first_with_filters(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """pageSize pages with a token only while more match; filters on state and labels, joined by AND."""
    async with emulator_factory(vertex_max_concurrent_jobs=0) as url:
        await _setup(http, url)
        names = [(await _create(http, url, labels={"batch": "b" if n % 2 else "a"}))["name"] for n in range(5)]
        seen: list[str] = []
        token = ""
        for _ in range(5):
            query = f"pageSize=2&pageToken={token}" if token else "pageSize=2"
            status, page = await vcall(http, "GET", f"{url}/v1/{PARENT}/tuningJobs?{query}")
            assert status == 200, page
            seen += [job["name"] for job in page["tuningJobs"]]
            token = page.get("nextPageToken", "")
            if not token:
                break
        assert seen == names[::-1]
        status, page = await vcall(http, "GET", f"{url}/v1/{PARENT}/tuningJobs?filter=labels.batch%3Db")
        assert [job["name"] for job in page["tuningJobs"]] == [names[3], names[1]]
        flt = "labels.batch%3D%22a%22%20AND%20state%3DJOB_STATE_PENDING"
        status, page = await vcall(http, "GET", f"{url}/v1/{PARENT}/tuningJobs?filter={flt}")
        assert [job["name"] for job in page["tuningJobs"]] == [names[4], names[2], names[0]]
        clock.advance(100.0)
        status, page = await vcall(http, "GET", f"{url}/v1/{PARENT}/tuningJobs?filter=state%3DJOB_STATE_PENDING")
        assert (status, page) == (200, {})
        status, error = await vcall(http, "GET", f"{url}/v1/{PARENT}/tuningJobs?filter=displayName%3Dx")
        assert (status, error["error"]["status"]) == (400, "INVALID_ARGUMENT")


async def test_loss_through_the_tensorboard_chain(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """experiment context → backing TensorBoard → runs → time series → :read, one point per step."""
    async with emulator_factory(start_delay_seconds=0.5) as url:
        await _setup(http, url)
        await upload(http, url, "validation.jsonl", jsonl([example(n) for n in range(4)]))
        job = await _create(
            http,
            url,
            supervisedTuningSpec={
                "trainingDatasetUri": DATASET,
                "validationDatasetUri": "gs://tuning-data/validation.jsonl",
                "hyperParameters": {"epochCount": "2"},
            },
        )
        clock.advance(0.5 + 2.0 * 4.5)
        status, context = await vcall(http, "GET", f"{url}/v1/{job['experiment']}")
        assert status == 200, context
        assert context["schemaTitle"] == "system.Experiment"
        tensorboard = context["metadata"]["backing_tensorboard_resource"]
        assert re.fullmatch(rf"projects/{NUMBER}/locations/{LOCATION}/tensorboards/\d+", tensorboard)
        experiment_id = job["experiment"].rsplit("/", 1)[1]
        status, runs = await vcall(http, "GET", f"{url}/v1/{tensorboard}/experiments/{experiment_id}/runs")
        assert status == 200, runs
        (run,) = runs["tensorboardRuns"]
        status, series = await vcall(http, "GET", f"{url}/v1/{run['name']}/timeSeries")
        assert status == 200, series
        by_name = {item["displayName"]: item for item in series["tensorboardTimeSeries"]}
        assert {"/train_total_loss", "/eval_total_loss"} <= set(by_name)
        assert all(item["valueType"] == "SCALAR" for item in by_name.values())
        loss = by_name["/train_total_loss"]
        status, data = await vcall(http, "GET", f"{url}/v1/{loss['name']}:read?maxDataPoints=1000")
        assert status == 200, data
        points = data["timeSeriesData"]
        assert points["tensorboardTimeSeriesId"] == loss["name"].rsplit("/", 1)[1]
        assert points["valueType"] == "SCALAR"
        assert [value["step"] for value in points["values"]] == ["1", "2", "3", "4"]
        assert all(
            isinstance(value["scalar"]["value"], float) and TS6.fullmatch(value["wallTime"])
            for value in points["values"]
        )
        status, data = await vcall(http, "GET", f"{url}/v1/{by_name['/eval_total_loss']['name']}:read")
        assert [value["step"] for value in data["timeSeriesData"]["values"]] == ["3"]
        status, data = await vcall(http, "GET", f"{url}/v1/{loss['name']}:read?maxDataPoints=2")
        assert [value["step"] for value in data["timeSeriesData"]["values"]] == ["1", "4"]


async def test_peaks_count_every_job_ever_active_at_once(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """Vertex: three jobs created together are three active at once even after they end; with quota 2,
    two ran at once.  Gemini: the same for tuned models, deleted ones included."""
    from tests.emulator.conftest import tutorial_body

    async with emulator_factory(vertex_max_concurrent_jobs=2) as url:
        await _setup(http, url)
        for _ in range(3):
            await _create(http, url)
        for model in ("a", "b"):
            async with http.post(f"{url}/v1beta/tunedModels?tunedModelId={model}", json=tutorial_body()) as response:
                assert response.status == 200
        clock.advance(1.0)
        async with http.delete(f"{url}/v1beta/tunedModels/a") as response:
            assert response.status == 200
        clock.advance(1000.0)
        async with http.get(f"{url}/_emulator/stats") as response:
            stats = await response.json()
    assert (stats["vertex"]["peak_active_jobs"], stats["vertex"]["peak_running_jobs"]) == (3, 2)
    assert stats["vertex"]["active_jobs"] == 0
    assert (stats["peak_active_jobs"], stats["active_jobs"]) == (2, 0)
