"""Replay the tutorials' request bodies and compare the emulator's answers with the real transcripts.

Shapes are compared (keys, nesting, JSON types, name patterns), plus the values the arithmetic fixes:
totalSteps, completedPercent and the per-step epochs of a finished job.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from tests.emulator.conftest import EmulatorFactory, ManualClock, call, fixture_json, fixture_text

MODEL_ID = r"[a-z][a-z0-9-]*-[a-z0-9]{12}"
OP_NAME = re.compile(rf"tunedModels/({MODEL_ID})/operations/[a-z0-9]{{12}}")
TS6 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
TS9 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")


def shape(value: Any) -> Any:
    """Keys and JSON types, with every list reduced to the union of its items' shapes."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            item_shape = shape(item)
            if isinstance(item_shape, dict):
                merged.update(item_shape)
            else:
                return [item_shape]
        return [merged]
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return type(value).__name__


async def _create(http: aiohttp.ClientSession, url: str, version: str, raw: str) -> dict[str, Any]:
    status, op = await call(http, "POST", f"{url}/{version}/tunedModels", raw=raw)
    assert status == 200, op
    return op


async def test_v1beta_create_matches_transcript(base_url: str, http: aiohttp.ClientSession) -> None:
    """seeds/001 body (trailing commas, snake_case) → the Operation of seeds/000, 38 steps."""
    op = await _create(http, base_url, "v1beta", fixture_text("create_v1beta_001.txt"))
    expected = fixture_json("create_response_v1beta_000.json")

    assert shape(op) == shape(expected)
    assert list(op["metadata"]) == list(expected["metadata"])
    assert op["metadata"]["totalSteps"] == 38
    assert op["metadata"]["@type"] == expected["metadata"]["@type"]
    match = OP_NAME.fullmatch(op["name"])
    assert match is not None and match.group(1).startswith("number-generator-model-")
    assert op["metadata"]["tunedModel"] == f"tunedModels/{match.group(1)}"


async def test_v1beta3_lifecycle_matches_transcripts(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """seeds/004: create (23 steps, v1beta3 @type), GET while CREATING, then the ACTIVE listing entry."""
    async with emulator_factory() as url:
        op = await _create(http, url, "v1beta3", fixture_text("create_v1beta3_004.txt"))
        expected_op = fixture_json("create_response_v1beta3_004.json")
        assert shape(op) == shape(expected_op)
        assert op["metadata"]["totalSteps"] == 23
        assert op["metadata"]["@type"].endswith("v1beta3.CreateTunedModelMetadata")

        clock.advance(0.5)
        status, creating = await call(http, "GET", f"{url}/v1beta3/{op['metadata']['tunedModel']}")
        assert status == 200
        assert shape(creating) == shape(fixture_json("get_creating_v1beta3_004.json"))
        assert creating["updateTime"] == creating["createTime"]
        assert (creating["temperature"], creating["topP"], creating["topK"]) == (0.7, 0.95, 40)

        clock.advance(2.0 * 23 + 5)
        status, listing = await call(http, "GET", f"{url}/v1beta3/tunedModels")
        assert status == 200

    reference = fixture_json("list_v1beta3_004.json")
    assert set(listing) == set(reference) == {"tunedModels"}
    active = listing["tunedModels"][0]
    real = next(m for m in reference["tunedModels"] if len(m["tuningTask"]["snapshots"]) == 23)
    assert shape(active) == shape(real)
    assert [s.get("epoch") for s in active["tuningTask"]["snapshots"]] == [
        s.get("epoch") for s in real["tuningTask"]["snapshots"]
    ]
    assert active["state"] == "ACTIVE"
    assert active["updateTime"] == active["tuningTask"]["completeTime"]
    assert TS6.fullmatch(active["createTime"]) and TS6.fullmatch(active["tuningTask"]["completeTime"])
    assert TS9.fullmatch(active["tuningTask"]["startTime"])
    assert all(TS9.fullmatch(s["computeTime"]) for s in active["tuningTask"]["snapshots"])
    assert active["tuningTask"]["hyperparameters"] == real["tuningTask"]["hyperparameters"] | {"learningRate": 0.001}


async def test_operation_progress_and_final_shape(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """Poll on /v1 as the tutorial does: done absent while running, percent = 100·k/N, then response."""
    async with emulator_factory() as url:
        op = await _create(http, url, "v1beta", fixture_text("create_v1beta_001.txt"))
        clock.advance(0.3 + 2.0 * 10 + 0.5)
        status, running = await call(http, "GET", f"{url}/v1/{op['name']}")
        assert status == 200
        meta = running["metadata"]
        assert "done" not in running
        assert list(meta) == ["@type", "totalSteps", "completedSteps", "completedPercent", "snapshots", "tunedModel"]
        assert meta["completedSteps"] == len(meta["snapshots"]) == 10
        assert abs(meta["completedPercent"] - 100 * 10 / 38) < 1e-5
        assert "epoch" not in meta["snapshots"][0]

        clock.advance(2.0 * 40)
        status, final = await call(http, "GET", f"{url}/v1beta/{op['name']}")
        assert status == 200

    assert final["done"] is True
    assert set(final) == {"name", "metadata", "done", "response"}
    assert final["metadata"]["completedPercent"] == 100
    assert final["response"]["@type"] == "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel"
    assert final["response"]["state"] == "ACTIVE"
    snapshots = final["response"]["tuningTask"]["snapshots"]
    assert [s["step"] for s in snapshots] == list(range(1, 39))
    assert snapshots[-1]["epoch"] == 5
    times = [s["computeTime"] for s in snapshots]
    assert times == sorted(times) and len(set(times)) == 38
    assert set(final["response"]) <= {
        "@type",
        "name",
        "baseModel",
        "tunedModelSource",
        "displayName",
        "description",
        "temperature",
        "topP",
        "topK",
        "state",
        "createTime",
        "updateTime",
        "tuningTask",
        "readerProjectNumbers",
    }
