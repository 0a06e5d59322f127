"""Patch, delete, cancel, operation delete, inference, integer enums and metadata refresh."""

from __future__ import annotations

import json

import aiohttp

from tests.emulator.conftest import EmulatorFactory, ManualClock, call, fixture_text, tutorial_body

MODEL = "tunedModels/m"


async def _create(http: aiohttp.ClientSession, url: str, model_id: str = "m", **hyper: int) -> dict[str, object]:
    status, op = await call(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId={model_id}", tutorial_body(**hyper))
    assert status == 200, op
    return op


async def test_patch_with_mask_ignores_everything_else(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """The legacy SDK PATCHes the whole object (output-only fields, integer state) with one mask path."""
    async with emulator_factory() as url:
        await _create(http, url)
        _, model = await call(http, "GET", f"{url}/v1beta/{MODEL}?$alt=json;enum-encoding=int")
        clock.advance(1.0)
        whole = dict(model, description="new words", displayName="ignored")
        status, patched = await call(http, "PATCH", f"{url}/v1beta/{MODEL}?updateMask=description", whole)

    assert status == 200, patched
    assert (patched["description"], patched["displayName"]) == ("new words", "number generator model")
    assert patched["updateTime"] > patched["createTime"]


async def test_patch_without_mask_uses_present_fields(base_url: str, http: aiohttp.ClientSession) -> None:
    """google-genai sends no updateMask."""
    await _create(http, base_url)
    status, patched = await call(http, "PATCH", f"{base_url}/v1beta/{MODEL}", {"display_name": "renamed", "top_k": 3})

    assert status == 200
    assert (patched["displayName"], patched["topK"]) == ("renamed", 3)


async def test_patch_rejects_immutable_paths_and_long_names(base_url: str, http: aiohttp.ClientSession) -> None:
    """Only mutable fields can be updated, with the create rules; a missing model is 404."""
    await _create(http, base_url)
    bad_mask, _ = await call(http, "PATCH", f"{base_url}/v1beta/{MODEL}?update_mask=base_model", {})
    long_name, _ = await call(http, "PATCH", f"{base_url}/v1beta/{MODEL}", {"displayName": "x" * 41})
    missing, _ = await call(http, "PATCH", f"{base_url}/v1beta/tunedModels/none", {"displayName": "x"})

    assert (bad_mask, long_name, missing) == (400, 400, 404)


async def test_cancel_is_asynchronous_and_ends_with_code_1(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """Cancel answers {} at once and takes effect at the next step boundary: error 1, model FAILED; again is a no-op."""
    async with emulator_factory(step_seconds=1.0, start_delay_seconds=0.0) as url:
        op = await _create(http, url)
        name = op["name"]
        clock.advance(3.5)
        assert await call(http, "POST", f"{url}/v1/{name}:cancel") == (200, {})
        _, still = await call(http, "GET", f"{url}/v1/{name}")
        assert "done" not in still
        clock.advance(1.0)
        _, cancelled = await call(http, "GET", f"{url}/v1beta/{name}")
        _, model = await call(http, "GET", f"{url}/v1beta/{MODEL}")
        again = await call(http, "POST", f"{url}/v1beta/{name}:cancel", raw="")

    assert cancelled["done"] is True
    assert cancelled["error"] == {"code": 1, "message": "Operation cancelled."}
    assert "response" not in cancelled
    assert cancelled["metadata"]["completedSteps"] in (3, 4, 5)
    assert model["state"] == "FAILED"
    assert again == (200, {})


async def test_delete_stops_training_and_operation_is_gone(base_url: str, http: aiohttp.ClientSession) -> None:
    """After delete the operation is 404 on every route, and so is a second delete."""
    op = await _create(http, base_url)
    assert await call(http, "DELETE", f"{base_url}/v1beta/{MODEL}") == (200, {})

    get_op, _ = await call(http, "GET", f"{base_url}/v1/{op['name']}")
    list_op, _ = await call(http, "GET", f"{base_url}/v1/{MODEL}/operations")
    cancel, _ = await call(http, "POST", f"{base_url}/v1/{op['name']}:cancel")
    delete_again, body = await call(http, "DELETE", f"{base_url}/v1beta/{MODEL}")
    assert (get_op, list_op, cancel, delete_again) == (404, 404, 404, 404)
    assert body["error"]["message"] == f"Tuned model {MODEL} does not exist."


async def test_operation_delete_is_unimplemented(base_url: str, http: aiohttp.ClientSession) -> None:
    """DeleteOperation is not implemented for tuning operations (501), as in production."""
    op = await _create(http, base_url)
    status, body = await call(http, "DELETE", f"{base_url}/v1/{op['name']}")

    assert status == 501
    assert body["error"]["status"] == "UNIMPLEMENTED"


async def test_generate_content_answers_from_training_data(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """The inference stub: FAILED_PRECONDITION while CREATING, then the closest example's output, marked emulated."""
    request = {"contents": [{"parts": [{"text": "twenty two"}]}]}
    async with emulator_factory() as url:
        await _create(http, url)
        creating, early = await call(http, "POST", f"{url}/v1beta/{MODEL}:generateContent", request)
        clock.advance(500)
        status, answer = await call(http, "POST", f"{url}/v1/{MODEL}:generateContent", request)
        bad_shape, _ = await call(http, "POST", f"{url}/v1beta/{MODEL}:generateContent", {"contents": "x"})
        _, fuzzy = await call(
            http, "POST", f"{url}/v1beta/{MODEL}:generateContent", {"contents": [{"parts": [{"text": "ninety nin"}]}]}
        )
        _, streamed = await call(http, "POST", f"{url}/v1beta/{MODEL}:streamGenerateContent", request)
        wrong_method, _ = await call(http, "POST", f"{url}/v1beta3/{MODEL}:generateText", {"prompt": {"text": "1"}})

    assert (creating, early["error"]["status"]) == (400, "FAILED_PRECONDITION")
    assert status == 200
    assert answer["candidates"][0]["content"] == {"parts": [{"text": "twenty three"}], "role": "model"}
    assert answer["modelVersion"] == "emulated"
    assert bad_shape == 400
    assert streamed == [answer]
    assert fuzzy["candidates"][0]["content"]["parts"][0]["text"] == "one hundred"
    assert wrong_method == 404


async def test_generate_text_on_a_v1beta3_text_bison_model(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """PaLM-era tunes answer :generateText; a v1beta3 job's response carries v1beta3 types and fields."""
    async with emulator_factory() as url:
        status, op = await call(http, "POST", f"{url}/v1beta3/tunedModels", raw=fixture_text("create_v1beta3_004.txt"))
        assert status == 200
        clock.advance(500)
        model = op["metadata"]["tunedModel"]
        status, answer = await call(
            http, "POST", f"{url}/v1beta3/{model}:generateText", {"prompt": {"text": "thirteen"}, "candidate_count": 2}
        )
        _, final = await call(http, "GET", f"{url}/v1/{op['name']}")

    assert status == 200
    assert [c["output"] for c in answer["candidates"]] == ["fourteen", "fourteen"]
    assert final["response"]["@type"] == "type.googleapis.com/google.ai.generativelanguage.v1beta3.TunedModel"
    assert "readerProjectNumbers" not in final["response"]


async def test_metadata_refreshes_at_the_configured_granularity(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """With a 60 s refresh, progress only moves on 60 s boundaries; done shows at once."""
    async with emulator_factory(step_seconds=2.0, metadata_refresh_seconds=60.0, start_delay_seconds=0.0) as url:
        op = await _create(http, url, epoch_count=20)
        seen = []
        for _ in range(6):
            clock.advance(20.0)
            _, got = await call(http, "GET", f"{url}/v1/{op['name']}")
            seen.append(got["metadata"].get("completedSteps", 0))
        clock.advance(1000)
        _, final = await call(http, "GET", f"{url}/v1/{op['name']}")

    assert seen[0] == seen[1] == 0
    assert seen[2] == seen[3] == seen[4] > 0
    assert seen[5] > seen[4]
    assert final["done"] is True


async def test_integer_enums_in_operation_response(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """$alt=json;enum-encoding=int (what GAPIC sends) turns enum names into numbers, nothing else."""
    async with emulator_factory() as url:
        op = await _create(http, url)
        clock.advance(500)
        _, as_int = await call(http, "GET", f"{url}/v1beta/{op['name']}?%24alt=json%3Benum-encoding%3Dint")
        _, as_text = await call(http, "GET", f"{url}/v1beta/{op['name']}")

    assert (as_int["response"]["state"], as_text["response"]["state"]) == (2, "ACTIVE")
    assert json.dumps(as_int["metadata"]) == json.dumps(as_text["metadata"])


async def test_unknown_paths_are_json_404(base_url: str, http: aiohttp.ClientSession) -> None:
    """Unknown versions, paths and methods get the JSON envelope, not an HTML page."""
    for method, path in [("GET", "/v2/tunedModels"), ("POST", "/v1/tunedModels"), ("PUT", "/v1beta/tunedModels/x")]:
        status, body = await call(http, method, base_url + path)
        assert (status, body["error"]["status"]) == (404, "NOT_FOUND")


async def test_base_models_are_listed(base_url: str, http: aiohttp.ClientSession) -> None:
    """The tunable base models are discoverable through models.get/list."""
    _, listing = await call(http, "GET", f"{base_url}/v1beta/models")
    status, flash = await call(http, "GET", f"{base_url}/v1beta/models/gemini-1.5-flash-001-tuning")
    missing, _ = await call(http, "GET", f"{base_url}/v1beta/models/gemini-9")
    assert missing == 404

    assert status == 200
    assert "createTunedModel" in flash["supportedGenerationMethods"]
    assert flash["name"] in [m["name"] for m in listing["models"]]


async def test_unknown_query_parameters_are_400_and_system_ones_are_fine(
    base_url: str, http: aiohttp.ClientSession
) -> None:
    """ESF cannot bind unknown query parameters (400); system parameters are always accepted."""
    unknown, body = await call(http, "GET", f"{base_url}/v1beta/tunedModels?pageSiz=3")
    wrong_route, _ = await call(http, "GET", f"{base_url}/v1beta/tunedModels/x?pageSize=3")
    system, _ = await call(http, "GET", f"{base_url}/v1beta/tunedModels?key=k&alt=json&prettyPrint=false&fields=x")

    assert unknown == 400
    assert body["error"]["message"].startswith('Invalid JSON payload received. Unknown name "pageSiz"')
    assert (wrong_route, system) == (400, 200)


async def test_timestamps_are_real_times_whatever_the_time_scale(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """At time_scale 20 a 2 s step shows 0.1 s apart, and nothing is stamped later than the real clock."""
    from datetime import datetime

    def seconds(stamp: str) -> float:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

    async with emulator_factory(step_seconds=2.0, time_scale=20.0) as url:
        await _create(http, url)
        clock.advance(10.0)
        _, model = await call(http, "GET", f"{url}/v1beta/{MODEL}")

    task = model["tuningTask"]
    elapsed = seconds(task["completeTime"]) - seconds(model["createTime"])
    gaps = [
        seconds(b["computeTime"]) - seconds(a["computeTime"])
        for a, b in zip(task["snapshots"], task["snapshots"][1:], strict=False)
    ]
    assert abs(elapsed - (0.3 + 38 * 2.0) / 20) < 0.1
    assert all(0.05 < gap < 0.15 for gap in gaps)


async def test_pretty_output_is_indented_like_production(
    emulator_factory: EmulatorFactory, http: aiohttp.ClientSession
) -> None:
    """pretty=True indents answers by two spaces, errors included."""
    async with emulator_factory(pretty=True) as url:
        async with http.post(f"{url}/v1beta/tunedModels?tunedModelId=p", json=tutorial_body()) as response:
            created = await response.text()
        async with http.get(f"{url}/v1beta/tunedModels/none") as response:
            missing = await response.text()

    assert created.startswith('{\n  "name": "tunedModels/p/operations/')
    assert json.loads(created)["metadata"]["totalSteps"] == 38
    assert missing.startswith('{\n  "error": {\n    "code": 404')
