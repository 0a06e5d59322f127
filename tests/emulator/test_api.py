"""The tuned-model and operation routes: ids, 409, listing, validation and defaults."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.emulator.conftest import EmulatorFactory, ManualClock, call, tutorial_body


async def test_chosen_id_then_409_then_reusable_after_delete(base_url: str, http: aiohttp.ClientSession) -> None:
    """The exactly-once hook (§6.3): a reused tunedModelId is 409, and a deleted model's id is free again."""
    status, op = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=job-a1", tutorial_body())
    assert (status, op["metadata"]["tunedModel"]) == (200, "tunedModels/job-a1")
    assert re.fullmatch(r"tunedModels/job-a1/operations/[a-z0-9]{12}", op["name"])

    status, dup = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tuned_model_id=job-a1", tutorial_body())
    assert status == 409
    assert dup["error"]["status"] == "ALREADY_EXISTS"

    assert await call(http, "DELETE", f"{base_url}/v1beta/tunedModels/job-a1") == (200, {})
    status, _ = await call(http, "GET", f"{base_url}/v1/{op['name']}")
    assert status == 404
    status, again = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=job-a1", tutorial_body())
    assert status == 200 and again["name"] != op["name"]


async def test_longest_valid_id_is_accepted(base_url: str, http: aiohttp.ClientSession) -> None:
    """40 characters is the documented maximum of a chosen id."""
    longest = "a" + "-b" * 19 + "c"
    status, op = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId={longest}", tutorial_body())

    assert len(longest) == 40
    assert (status, op["metadata"]["tunedModel"]) == (200, f"tunedModels/{longest}")


@pytest.mark.parametrize("bad_id", ["A", "1abc", "abc-", "a" * 41, "a_b", "a.b"])
async def test_invalid_ids_are_400(base_url: str, http: aiohttp.ClientSession, bad_id: str) -> None:
    """Ids outside [a-z]([a-z0-9-]{0,38}[a-z0-9])? are rejected before anything is created."""
    status, body = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId={bad_id}", tutorial_body())

    assert status == 400
    assert body["error"]["status"] == "INVALID_ARGUMENT"


async def test_missing_model_is_404_with_production_message(base_url: str, http: aiohttp.ClientSession) -> None:
    """The exact 404 body seen in the transcripts."""
    status, body = await call(http, "GET", f"{base_url}/v1beta/tunedModels/generate-num-2946")

    assert status == 404
    assert body == {
        "error": {
            "code": 404,
            "message": "Tuned model tunedModels/generate-num-2946 does not exist.",
            "status": "NOT_FOUND",
        }
    }


async def test_list_pages_in_creation_order(base_url: str, http: aiohttp.ClientSession) -> None:
    """Pages follow creation order; the token is opaque, works with either spelling and is bound to the query."""
    for index in range(7):
        status, _ = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=m{index}", tutorial_body())
        assert status == 200

    status, first = await call(http, "GET", f"{base_url}/v1beta/tunedModels?page_size=5")
    assert status == 200
    assert [m["name"] for m in first["tunedModels"]] == [f"tunedModels/m{i}" for i in range(5)]
    token = first["nextPageToken"]
    status, second = await call(http, "GET", f"{base_url}/v1beta/tunedModels?pageSize=5&pageToken={token}")
    assert status == 200
    assert [m["name"] for m in second["tunedModels"]] == ["tunedModels/m5", "tunedModels/m6"]
    assert "nextPageToken" not in second
    status, default = await call(http, "GET", f"{base_url}/v1beta/tunedModels")
    assert len(default["tunedModels"]) == 7
    status, _mismatch = await call(http, "GET", f"{base_url}/v1beta/tunedModels?pageSize=5&filter=x&pageToken={token}")
    assert status == 400


async def test_empty_list_is_an_empty_object(base_url: str, http: aiohttp.ClientSession) -> None:
    """proto3 JSON omits the empty repeated field: an empty list is {}."""
    assert await call(http, "GET", f"{base_url}/v1beta/tunedModels") == (200, {})


async def test_operations_on_v1_and_v1beta(base_url: str, http: aiohttp.ClientSession) -> None:
    """Docs poll on /v1, the GAPIC client on /v1beta: both serve the same operation; v1 has no model CRUD."""
    _, op = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=ops", tutorial_body())

    for version in ("v1", "v1beta"):
        status, got = await call(http, "GET", f"{base_url}/{version}/{op['name']}")
        assert (status, got) == (200, op)
        status, listed = await call(http, "GET", f"{base_url}/{version}/tunedModels/ops/operations")
        assert (status, listed) == (200, {"operations": [op]})
    status, _ = await call(http, "GET", f"{base_url}/v1/tunedModels/ops/operations/zzzzzzzzzzzz")
    assert status == 404
    status, _ = await call(http, "GET", f"{base_url}/v1/tunedModels/ops")
    assert status == 404


async def test_defaults_and_generated_id(base_url: str, http: aiohttp.ClientSession) -> None:
    """Without hyperparameters the v1beta defaults apply (5 epochs, batch 4, lr 0.001); the id is slug-xxxxxxxxxxxx."""
    body = tutorial_body()
    del body["tuning_task"]["hyperparameters"]
    status, op = await call(http, "POST", f"{base_url}/v1beta/tunedModels", body)
    assert status == 200
    assert re.fullmatch(r"tunedModels/number-generator-model-[a-z0-9]{12}", op["metadata"]["tunedModel"])
    assert op["metadata"]["totalSteps"] == 19  # 15 examples, default batch 4, default 5 epochs

    _, model = await call(http, "GET", f"{base_url}/v1beta/{op['metadata']['tunedModel']}")
    assert model["tuningTask"]["hyperparameters"] == {"epochCount": 5, "batchSize": 4, "learningRate": 0.001}
    assert (model["temperature"], model["topP"], model["topK"]) == (1, 0.95, 64)


def _without(path: str) -> dict[str, Any]:
    body = tutorial_body()
    node = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    del node[last]
    return body


def _with(path: str, value: Any) -> dict[str, Any]:
    body = tutorial_body()
    node = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    return body


EXAMPLES = "tuning_task.training_data.examples.examples"


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (_without("tuning_task"), 400),
        (_without("tuning_task.training_data"), 400),
        (_with(EXAMPLES, []), 400),
        (_with(EXAMPLES, [{"text_input": "1"}]), 400),
        (_with(EXAMPLES, [{"output": "1"}]), 400),
        (_with(EXAMPLES, [{"text_input": "x" * 40_001, "output": "1"}]), 400),
        (_with(EXAMPLES, [{"text_input": "1", "output": "y" * 5_001}]), 400),
        (_with(EXAMPLES, [{"text_input": "x" * 40_000, "output": "y" * 5_000}]), 200),
        (_with("tuning_task.hyperparameters.epoch_count", 0), 400),
        (_with("tuning_task.hyperparameters.batch_size", -1), 400),
        (_with("tuning_task.hyperparameters.learning_rate", 0), 400),
        (_with("tuning_task.hyperparameters.epoch_count", "five"), 400),
        (_with("display_name", "Minh Thành Nguyễn - zábavná čeština"), 400),
        (_with("display_name", "x" * 40), 200),
        (_with("base_model", "models/gemini-1.5-flash-001"), 400),
        (_with("base_model", "models/nope"), 404),
        (_without("base_model"), 400),
        (_with("tuned_model_source", {"tuned_model": "tunedModels/x"}), 400),
        (_with("tuning_task.extra", 1), 400),
        (_with("temperature", 3.0), 400),
        (_with("tuning_task.hyperparameters.learning_rate", 1e39), 400),
        (_with("tuning_task.hyperparameters.learning_rate", "NaN"), 400),
        (_with("display_name", "\x00snapshots\x00"), 200),
    ],
)
async def test_validation(base_url: str, http: aiohttp.ClientSession, body: dict[str, Any], status: int) -> None:
    """Every §7 rule: 400 (or 404 for an unknown base) with the Google envelope; limits are inclusive."""
    got, answer = await call(http, "POST", f"{base_url}/v1beta/tunedModels", body)

    assert got == status, answer
    if status != 200:
        assert set(answer["error"]) >= {"code", "message", "status"}
        assert answer["error"]["code"] == status


async def test_model_becomes_active_and_stays(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """CREATING without snapshots, then ACTIVE with all of them; a finished operation never changes again."""
    async with emulator_factory(step_seconds=1.0) as url:
        _, op = await call(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=done", tutorial_body())
        _, model = await call(http, "GET", f"{url}/v1beta/tunedModels/done")
        assert model["state"] == "CREATING" and "snapshots" not in model["tuningTask"]
        clock.advance(100)
        _, model = await call(http, "GET", f"{url}/v1beta/tunedModels/done?$alt=json;enum-encoding=int")
        assert model["state"] == 2
        assert len(model["tuningTask"]["snapshots"]) == 38
        _, final = await call(http, "GET", f"{url}/v1/{op['name']}")
        clock.advance(100)
        assert await call(http, "GET", f"{url}/v1/{op['name']}") == (200, final)


async def test_tuned_model_source_when_allowed(emulator_factory: EmulatorFactory, http: aiohttp.ClientSession) -> None:
    """Off by default (production said 400); with the knob, a tune starts from an existing tuned model."""
    async with emulator_factory(allow_tuned_model_source=True) as url:
        await call(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=first", tutorial_body())
        body = tutorial_body()
        del body["base_model"]
        body["tuned_model_source"] = {"tuned_model": "tunedModels/first"}
        status, _ = await call(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=second", body)
        _, second = await call(http, "GET", f"{url}/v1beta/tunedModels/second")
        body["tuned_model_source"] = {"tuned_model": "tunedModels/missing"}
        missing, _ = await call(http, "POST", f"{url}/v1beta/tunedModels", body)

    assert status == 200
    assert second["tunedModelSource"] == {
        "tunedModel": "tunedModels/first",
        "baseModel": "models/gemini-1.5-flash-001-tuning",
    }
    assert "baseModel" not in second
    assert missing == 404


async def test_list_filter(base_url: str, http: aiohttp.ClientSession) -> None:
    """filter: free-text terms over displayName/description, plus the scope operators."""
    for model_id, name in (("f1", "alpha model"), ("f2", "beta model"), ("f3", "alpha beta")):
        body = tutorial_body()
        body["display_name"] = name
        await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId={model_id}", body)

    async def names(query: str) -> list[str]:
        _, listing = await call(http, "GET", f"{base_url}/v1beta/tunedModels?filter={query}")
        return [model["name"].removeprefix("tunedModels/") for model in listing.get("tunedModels", [])]

    assert await names("alpha") == ["f1", "f3"]
    assert await names("ALPHA%20beta") == ["f3"]
    assert await names("owner:me%20model") == ["f1", "f2"]
    assert await names("readers:everyone") == []
