"""The Vertex AI shapes vertex-api.md marks [high], pinned against Google's own generated types.

``google-genai``'s types are generated from the aiplatform protos and reject unknown fields
(``extra='forbid'``), and its ``_TuningJob_from_vertex`` converter copies only the wire names it knows.
So: every TuningJob the emulator writes, in every state, must survive that converter with no key lost
and validate as ``types.TuningJob``; every enum value it writes must be a member of the SDK's enum.
"""

from __future__ import annotations

import json
import re
import warnings
from typing import Any

import aiohttp
import pytest

from tests.emulator.conftest import EmulatorFactory, ManualClock
from tests.emulator.vertex_support import LOCATION, NUMBER, PARENT, create_body, example, jsonl, upload, vcall

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    from google.genai import tunings, types


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _sdk_job(wire: dict[str, Any]) -> types.TuningJob:
    """The emulator's JSON through the SDK's own converter and model, asserting no top-level key is lost."""
    converted = tunings._TuningJob_from_vertex(wire)
    lost = {key for key in wire if _snake(key) not in converted}
    assert not lost, f"keys the SDK does not know: {lost}"
    return types.TuningJob.model_validate(converted)


async def _jobs_in_every_state(url: str, http: aiohttp.ClientSession, clock: ManualClock) -> list[dict[str, Any]]:
    """Snapshots of jobs across PENDING, RUNNING, post-processing, SUCCEEDED, CANCELLING, CANCELLED, FAILED,
    EXPIRED, PAUSED and PARTIALLY_SUCCEEDED."""
    await upload(http, url, "train.jsonl", jsonl([example(n) for n in range(16)]))
    await upload(http, url, "validation.jsonl", jsonl([example(n) for n in range(3)]))
    seen: list[dict[str, Any]] = []
    rules = [
        {"kind": "fail_job", "step": 1, "routes": ["vertex_create"], "calls": [2]},
        {"kind": "expire_job", "step": 1, "calls": [3]},
        {"kind": "pause_job", "step": 1, "calls": [4]},
        {"kind": "partially_succeed_job", "calls": [5]},
    ]
    async with http.post(f"{url}/_emulator/faults", data=json.dumps({"rules": rules})) as response:
        assert response.status == 200
    spec = {
        "trainingDatasetUri": "gs://tuning-data/train.jsonl",
        "validationDatasetUri": "gs://tuning-data/validation.jsonl",
        "hyperParameters": {"epochCount": 2, "learningRateMultiplier": 0.5, "adapterSize": "ADAPTER_SIZE_EIGHT"},
        "exportLastCheckpointOnly": True,
    }
    names = []
    for _ in range(6):
        status, job = await vcall(
            http,
            "POST",
            f"{url}/v1/{PARENT}/tuningJobs",
            create_body(
                supervisedTuningSpec=spec,
                tunedModelDisplayName="all fields",
                description="every field the emulator writes",
                labels={"team": "ml"},
                serviceAccount="tuner@my-proj.iam.gserviceaccount.com",
                encryptionSpec={"kmsKeyName": "projects/p/locations/l/keyRings/r/cryptoKeys/k"},
            ),
        )
        assert status == 200, job
        names.append(job["name"])
        seen.append(job)
    for _ in range(40):
        clock.advance(0.7)
        for name in names:
            seen.append((await vcall(http, "GET", f"{url}/v1/{name}"))[1])
        if len(seen) == 6 * 10:  # mid-run: CANCELLING now, CANCELLED at the next step boundary
            await vcall(http, "POST", f"{url}/v1/{names[-1]}:cancel")
            seen.append((await vcall(http, "GET", f"{url}/v1/{names[-1]}"))[1])
    return seen


async def test_every_tuning_job_the_emulator_writes_is_a_valid_sdk_tuning_job(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    async with emulator_factory(start_delay_seconds=0.5, vertex_max_concurrent_jobs=0) as url:
        snapshots = await _jobs_in_every_state(url, http, clock)
    states = set()
    for wire in snapshots:
        job = _sdk_job(wire)
        assert job.state is not None
        states.add((job.state.name, job.tuning_job_state.name if job.tuning_job_state else None))
        assert job.name is not None and job.name.startswith(f"projects/{NUMBER}/locations/{LOCATION}/tuningJobs/")
        spec = job.supervised_tuning_spec
        assert spec is not None and spec.hyper_parameters is not None
        assert spec.hyper_parameters.adapter_size == types.AdapterSize.ADAPTER_SIZE_EIGHT
        assert job.tuning_data_stats is not None and job.tuning_data_stats.supervised_tuning_data_stats is not None
    assert {state for state, _ in states} >= {
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_CANCELLING",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_FAILED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PAUSED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
    assert {sub for _, sub in states} >= {
        "TUNING_JOB_STATE_PROCESSING_DATASET",
        "TUNING_JOB_STATE_TUNING",
        "TUNING_JOB_STATE_POST_PROCESSING",
    }


@pytest.mark.parametrize("version", ["v1", "v1beta1"])
async def test_list_answer_and_int64_strings(base_url: str, http: aiohttp.ClientSession, version: str) -> None:
    """``ListTuningJobsResponse`` field names; int64 fields as JSON strings (proto3 JSON)."""
    await upload(http, base_url, "train.jsonl", jsonl([example(n) for n in range(4)]))
    for _ in range(2):
        assert (await vcall(http, "POST", f"{base_url}/{version}/{PARENT}/tuningJobs", create_body()))[0] == 200
    status, page = await vcall(http, "GET", f"{base_url}/{version}/{PARENT}/tuningJobs?pageSize=1")
    assert status == 200 and set(page) == {"tuningJobs", "nextPageToken"}
    listed = tunings._ListTuningJobsResponse_from_vertex(page)
    assert types.ListTuningJobsResponse.model_validate(listed).next_page_token == page["nextPageToken"]
    job = page["tuningJobs"][0]
    stats = job["tuningDataStats"]["supervisedTuningDataStats"]
    for key in ("tuningDatasetExampleCount", "totalTuningCharacterCount", "totalBillableTokenCount", "tuningStepCount"):
        assert isinstance(stats[key], str) and stats[key].isdigit()
    assert isinstance(job["supervisedTuningSpec"]["hyperParameters"]["epochCount"], str)


def test_enum_names_are_the_sdks() -> None:
    """JobState, TuningJobState and AdapterSize as the emulator spells them are the SDK's members."""
    from orchestrator.emulator.schema import ENUMS
    from orchestrator.emulator.vertex.jobs import JOB_STATES

    assert {state.name for state in types.JobState} - {"JOB_STATE_UNSPECIFIED"} == JOB_STATES
    assert set(ENUMS["adapterSize"]) == {size.name for size in types.AdapterSize}
    written = {
        "TUNING_JOB_STATE_PROCESSING_DATASET",
        "TUNING_JOB_STATE_WAITING_FOR_QUOTA",
        "TUNING_JOB_STATE_TUNING",
        "TUNING_JOB_STATE_POST_PROCESSING",
    }
    assert written <= {state.name for state in types.TuningJobState}
