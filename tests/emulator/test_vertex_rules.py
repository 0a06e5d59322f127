"""Vertex AI request validation, auth and faults: the errors a client sees, in Google's envelope."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest

from tests.emulator.conftest import EmulatorFactory, ManualClock
from tests.emulator.vertex_support import (
    DATASET,
    NUMBER,
    PARENT,
    create_body,
    example,
    jsonl,
    upload,
    vcall,
)

JOBS = f"/v1/{PARENT}/tuningJobs"


def _violation(error: dict[str, Any]) -> tuple[str, str]:
    (detail,) = [d for d in error["error"]["details"] if d["@type"].endswith("google.rpc.BadRequest")]
    violation = detail["fieldViolations"][0]
    return violation["field"], violation["description"]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"baseModel": "gemini-1.0-pro"}, "tuning_job.base_model", "not supported"),
        ({"tunedModelDisplayName": "x" * 129}, "tuning_job.tuned_model_display_name", "at most 128"),
        ({"labels": {"Team": "a"}}, "tuning_job.labels", "lowercase"),
        ({"labels": {"team": "a" * 65}}, "tuning_job.labels", "at most 64"),
        ({"labels": {"team": "A B"}}, "tuning_job.labels", "lowercase letters"),
        (
            {"supervisedTuningSpec": {"trainingDatasetUri": DATASET, "hyperParameters": {"epochCount": 0}}},
            "tuning_job.supervised_tuning_spec.hyper_parameters.epoch_count",
            "between 1 and 100",
        ),
        (
            {
                "baseModel": "gemini-2.5-pro",
                "supervisedTuningSpec": {
                    "trainingDatasetUri": DATASET,
                    "hyperParameters": {"adapterSize": "ADAPTER_SIZE_SIXTEEN"},
                },
            },
            "tuning_job.supervised_tuning_spec.hyper_parameters.adapter_size",
            "not supported",
        ),
        (
            {"supervisedTuningSpec": {"trainingDatasetUri": "gs://tuning-data/none.jsonl"}},
            "tuning_job.supervised_tuning_spec.training_dataset_uri",
            "does not exist",
        ),
        (
            {"supervisedTuningSpec": {"trainingDatasetUri": "/local/file.jsonl"}},
            "tuning_job.supervised_tuning_spec.training_dataset_uri",
            "gs://bucket/object",
        ),
        ({"tuningTask": {}}, "tuning_job", "Unknown name"),
    ],
)
async def test_invalid_create_is_400_naming_the_field(
    base_url: str, http: aiohttp.ClientSession, change: dict[str, Any], field: str, words: str
) -> None:
    await upload(http, base_url, "train.jsonl", jsonl([example(n) for n in range(4)]))
    status, error = await vcall(http, "POST", base_url + JOBS, create_body(**change))
    assert (status, error["error"]["status"], error["error"]["code"]) == (400, "INVALID_ARGUMENT", 400)
    assert _violation(error)[0] == field
    assert words in error["error"]["message"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", "has no examples"),
        (jsonl([example(1)]) + b"{nope\n", "line 2: not valid JSON"),
        (jsonl([example(1), {"messages": []}]), "line 2: contents must be a non-empty list"),
        (
            jsonl([{"text_input": "1", "output": "2"}]),
            "line 1: contents must be a non-empty list of turns (this line is a Gemini API text_input/output pair",
        ),
        (
            jsonl([{"contents": [{"role": "user", "parts": [{"text": "q"}]}]}]),
            "line 1: contents needs at least one turn with role 'model'",
        ),
        (jsonl([{"contents": [{"role": "bot", "parts": [{"text": "q"}]}]}]), "line 1: contents[0].role"),
        (b"\xff\xfe", "not UTF-8"),
    ],
)
async def test_bad_dataset_names_the_line(
    base_url: str, http: aiohttp.ClientSession, content: bytes, words: str
) -> None:
    await upload(http, base_url, "train.jsonl", content)
    status, error = await vcall(http, "POST", base_url + JOBS, create_body())
    assert status == 400
    assert words in _violation(error)[1]
    assert DATASET in error["error"]["message"]


async def test_api_keys_and_missing_credentials_are_refused(base_url: str, http: aiohttp.ClientSession) -> None:
    """Vertex AI takes OAuth tokens only, even when the emulator checks no credentials."""
    status, error = await vcall(http, "GET", base_url + JOBS, token=None, headers={"x-goog-api-key": "k"})
    assert (status, error["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert error["error"]["message"].startswith("API keys are not supported by this API.")
    info = error["error"]["details"][0]
    assert (info["reason"], info["metadata"]["service"]) == ("CREDENTIALS_MISSING", "aiplatform.googleapis.com")
    assert info["metadata"]["method"] == "google.cloud.aiplatform.v1.GenAiTuningService.ListTuningJobs"
    status, error = await vcall(http, "GET", base_url + JOBS + "?key=k")
    assert status == 401
    status, error = await vcall(http, "GET", base_url + JOBS, token=None)
    assert (status, error["error"]["details"][0]["reason"]) == (401, "CREDENTIALS_MISSING")


async def test_listed_tokens_and_project_scope(emulator_factory: EmulatorFactory, http: aiohttp.ClientSession) -> None:
    """Only listed tokens; ``TOKEN=PROJECT`` acts on that project (by id or number), else 403."""
    async with emulator_factory(tokens=("good=my-proj", "any")) as url:
        status, error = await vcall(http, "GET", url + JOBS, token="bad")
        assert (status, error["error"]["status"]) == (401, "UNAUTHENTICATED")
        assert (await vcall(http, "GET", url + JOBS, token="good"))[0] == 200
        assert (await vcall(http, "GET", f"{url}/v1/projects/{NUMBER}/locations/x/tuningJobs", token="good"))[0] == 200
        status, error = await vcall(http, "GET", f"{url}/v1/projects/other/locations/x/tuningJobs", token="good")
        assert (status, error["error"]["status"]) == (403, "PERMISSION_DENIED")
        info = error["error"]["details"][0]
        assert (info["reason"], info["metadata"]["permission"]) == (
            "IAM_PERMISSION_DENIED",
            "aiplatform.tuningJobs.list",
        )
        assert (await vcall(http, "GET", f"{url}/v1/projects/other/locations/x/tuningJobs", token="any"))[0] == 200


async def _plan(http: aiohttp.ClientSession, url: str, rules: list[dict[str, Any]]) -> None:
    async with http.post(f"{url}/_emulator/faults", data=json.dumps({"rules": rules})) as response:
        assert response.status == 200, await response.text()


async def test_create_landed_but_response_lost(base_url: str, http: aiohttp.ClientSession) -> None:
    """The key case: the job exists, the caller saw a reset; a list by label finds it, counted once."""
    await upload(http, base_url, "train.jsonl", jsonl([example(n) for n in range(4)]))
    await _plan(http, base_url, [{"kind": "lost_response", "routes": ["vertex_create"], "calls": [1]}])
    with pytest.raises(aiohttp.ClientError):
        await vcall(http, "POST", base_url + JOBS, create_body(labels={"orchestrator-job": "j1"}))
    status, page = await vcall(http, "GET", base_url + JOBS + "?filter=labels.orchestrator-job%3Dj1")
    assert status == 200 and len(page["tuningJobs"]) == 1
    async with http.get(f"{base_url}/_emulator/vertex/creates") as response:
        creates = await response.json()
    assert creates == {"by_label": {"orchestrator-job=j1": 1}, "by_dataset": {DATASET: 1}}
    async with http.get(f"{base_url}/_emulator/requests") as response:
        assert (await response.json())["vertex_create"] == {"lost": 1}


async def test_list_lag_hides_a_new_job(base_url: str, clock: ManualClock, http: aiohttp.ClientSession) -> None:
    await upload(http, base_url, "train.jsonl", jsonl([example(n) for n in range(4)]))
    await _plan(http, base_url, [{"kind": "list_lag", "seconds": 30}])
    status, job = await vcall(http, "POST", base_url + JOBS, create_body())
    assert status == 200
    assert (await vcall(http, "GET", base_url + JOBS))[1] == {}
    assert (await vcall(http, "GET", f"{base_url}/v1/{job['name']}"))[0] == 200
    clock.advance(30.0)
    assert [item["name"] for item in (await vcall(http, "GET", base_url + JOBS))[1]["tuningJobs"]] == [job["name"]]


@pytest.mark.parametrize(
    ("rule", "state", "code"),
    [
        ({"kind": "fail_job", "step": 2}, "JOB_STATE_FAILED", 13),
        ({"kind": "fail_job", "step": 2, "code": 8}, "JOB_STATE_FAILED", 8),
        ({"kind": "expire_job", "step": 2}, "JOB_STATE_EXPIRED", 4),
        ({"kind": "partially_succeed_job"}, "JOB_STATE_PARTIALLY_SUCCEEDED", None),
        ({"kind": "pause_job", "step": 2}, "JOB_STATE_PAUSED", None),
        ({"kind": "stall_job", "step": 2}, "JOB_STATE_RUNNING", None),
    ],
)
async def test_job_faults_reach_every_state(
    base_url: str, clock: ManualClock, http: aiohttp.ClientSession, rule: dict[str, Any], state: str, code: int | None
) -> None:
    await upload(http, base_url, "train.jsonl", jsonl([example(n) for n in range(16)]))
    await _plan(http, base_url, [{**rule, "routes": ["vertex_create"]}])
    status, job = await vcall(http, "POST", base_url + JOBS, create_body())
    assert status == 200
    clock.advance(1000.0)
    job = (await vcall(http, "GET", f"{base_url}/v1/{job['name']}"))[1]
    assert job["state"] == state
    assert job.get("error", {}).get("code") == code
    assert ("tunedModel" in job) == (state == "JOB_STATE_PARTIALLY_SUCCEEDED")
    if state in ("JOB_STATE_PAUSED", "JOB_STATE_RUNNING"):
        assert job["tuningJobMetadata"]["completedStepCount"] == "2" and "endTime" not in job


async def test_rate_limit_has_retry_info(base_url: str, http: aiohttp.ClientSession) -> None:
    await _plan(http, base_url, [{"kind": "rate_limit", "retry_delay_seconds": 2.5, "routes": ["vertex_list"]}])
    status, error = await vcall(http, "GET", base_url + JOBS)
    assert (status, error["error"]["status"]) == (429, "RESOURCE_EXHAUSTED")
    kinds = {detail["@type"].rsplit(".", 1)[1]: detail for detail in error["error"]["details"]}
    assert kinds["RetryInfo"]["retryDelay"] == "2.500s"
    assert NUMBER in error["error"]["message"] and "QuotaFailure" in kinds


async def test_server_errors_and_drops_on_vertex_routes(base_url: str, http: aiohttp.ClientSession) -> None:
    """A 503 in Google's envelope; a dropped connection; both counted per route and status."""
    rules = [
        {"kind": "http_error", "status": 503, "routes": ["vertex_list"], "calls": [1]},
        {"kind": "drop_connection", "routes": ["vertex_list"], "calls": [2]},
    ]
    await _plan(http, base_url, rules)
    status, error = await vcall(http, "GET", base_url + JOBS)
    assert (status, error["error"]) == (
        503,
        {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE"},
    )
    # aiohttp resends an idempotent request once after a reset, so the caller sees the retry's 200.
    assert (await vcall(http, "GET", base_url + JOBS))[0] == 200
    async with http.get(f"{base_url}/_emulator/requests") as response:
        assert (await response.json())["vertex_list"] == {"503": 1, "dropped": 1, "200": 1}


@pytest.mark.parametrize(("kind", "at_once"), [("pause_job", True), ("stall_job", False)])
async def test_cancel_a_paused_or_stalled_job(
    base_url: str, clock: ManualClock, http: aiohttp.ClientSession, kind: str, at_once: bool
) -> None:
    """A paused job is cancelled at once; a stalled one is CANCELLING until the next step boundary."""
    await upload(http, base_url, "train.jsonl", jsonl([example(n) for n in range(16)]))
    await _plan(http, base_url, [{"kind": kind, "step": 1}])
    status, job = await vcall(http, "POST", base_url + JOBS, create_body())
    assert status == 200, job
    clock.advance(100.0)
    assert (await vcall(http, "POST", f"{base_url}/v1/{job['name']}:cancel"))[0] == 200
    job = (await vcall(http, "GET", f"{base_url}/v1/{job['name']}"))[1]
    assert job["state"] == ("JOB_STATE_CANCELLED" if at_once else "JOB_STATE_CANCELLING")
    clock.advance(3.0)
    job = (await vcall(http, "GET", f"{base_url}/v1/{job['name']}"))[1]
    assert (job["state"], job["error"]["code"], job["tuningJobMetadata"]["completedStepCount"]) == (
        "JOB_STATE_CANCELLED",
        1,
        "1",
    )
