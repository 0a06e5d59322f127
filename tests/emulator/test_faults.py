"""Faults on demand: every kind by exact call count and by seeded probability, plus the admin routes."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.emulator.conftest import EmulatorFactory, ManualClock, call, tutorial_body


async def set_faults(http: aiohttp.ClientSession, url: str, *rules: dict[str, Any], seed: int = 0) -> None:
    status, plan = await call(http, "POST", f"{url}/_emulator/faults", {"seed": seed, "rules": list(rules)})
    assert status == 200, plan


async def raw_get(url: str, path: str) -> bytes:
    """One GET on a fresh connection with no client retry: b"" means the server dropped it."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    await writer.wait_closed()
    return data


def expected_pattern(seed: int, probability: float, calls: int) -> list[bool]:
    rng = random.Random(seed)
    return [rng.random() < probability for _ in range(calls)]


async def _outcomes(http: aiohttp.ClientSession, url: str, kind: str, calls: int) -> list[bool]:
    """Issue ``calls`` GETs of one model and report which ones the fault hit."""
    hits = []
    for _ in range(calls):
        if kind == "drop_connection":
            hits.append(await raw_get(url, "/v1beta/tunedModels/f") == b"")
            continue
        if kind in ("malformed_response", "truncated_response"):
            try:
                async with http.get(f"{url}/v1beta/tunedModels/f") as response:
                    json.loads(await response.read())
                hits.append(False)
            except (json.JSONDecodeError, aiohttp.ClientPayloadError):
                hits.append(True)
            continue
        status, _ = await call(http, "GET", f"{url}/v1beta/tunedModels/f")
        hits.append(status != 200)
    return hits


KINDS = [
    ({"kind": "http_error", "status": 500}, 500, "INTERNAL"),
    ({"kind": "http_error", "status": 503}, 503, "UNAVAILABLE"),
    ({"kind": "http_error", "status": 504}, 504, "DEADLINE_EXCEEDED"),
    ({"kind": "rate_limit", "retry_delay_seconds": 2.5}, 429, "RESOURCE_EXHAUSTED"),
    ({"kind": "token_expired"}, 401, "UNAUTHENTICATED"),
    ({"kind": "drop_connection"}, None, None),
    ({"kind": "malformed_response"}, None, None),
    ({"kind": "truncated_response"}, None, None),
]


@pytest.mark.parametrize(("rule", "status", "rpc_status"), KINDS)
async def test_fault_by_call_count(
    base_url: str, http: aiohttp.ClientSession, rule: dict[str, Any], status: int | None, rpc_status: str | None
) -> None:
    """calls: [2, 4] hits exactly the 2nd and 4th matching call, with the kind's real status and body."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=f", tutorial_body())
    await set_faults(http, base_url, {**rule, "routes": ["get_model"], "calls": [2, 4]})

    assert await _outcomes(http, base_url, rule["kind"], 5) == [False, True, False, True, False]
    if status is not None:
        await set_faults(http, base_url, {**rule, "routes": ["get_model"], "calls": [1]})
        got, body = await call(http, "GET", f"{base_url}/v1beta/tunedModels/f")
        assert (got, body["error"]["status"], body["error"]["code"]) == (status, rpc_status, status)


@pytest.mark.parametrize(("rule", "status", "rpc_status"), KINDS)
async def test_fault_by_probability_is_reproducible(
    base_url: str, http: aiohttp.ClientSession, rule: dict[str, Any], status: int | None, rpc_status: str | None
) -> None:
    """Probability faults follow random.Random(seed): the same plan and calls give the same hits."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=f", tutorial_body())
    await set_faults(http, base_url, {**rule, "routes": ["get_model"], "probability": 0.4}, seed=11)
    first = await _outcomes(http, base_url, rule["kind"], 12)
    await set_faults(http, base_url, {**rule, "routes": ["get_model"], "probability": 0.4}, seed=11)
    second = await _outcomes(http, base_url, rule["kind"], 12)

    assert first == second == expected_pattern(11, 0.4, 12)
    assert any(first) and not all(first)


async def test_rate_limit_body_has_retry_info_and_quota_failure(base_url: str, http: aiohttp.ClientSession) -> None:
    """429 carries RetryInfo.retryDelay and QuotaFailure, and repeats the delay in the message."""
    await set_faults(http, base_url, {"kind": "rate_limit", "retry_delay_seconds": 53})
    status, body = await call(http, "GET", f"{base_url}/v1beta/tunedModels")

    details = {detail["@type"].rsplit(".", 1)[1]: detail for detail in body["error"]["details"]}
    assert status == 429
    assert details["RetryInfo"]["retryDelay"] == "53s"
    assert details["QuotaFailure"]["violations"][0]["quotaId"]
    assert "Please retry in 53.0s" in body["error"]["message"]


async def test_latency_by_count_and_probability(base_url: str, http: aiohttp.ClientSession) -> None:
    """Latency delays exactly the selected calls (real seconds)."""
    await set_faults(http, base_url, {"kind": "latency", "seconds": 0.25, "routes": ["list_models"], "calls": [2]})
    durations = []
    for _ in range(3):
        started = time.monotonic()
        status, _ = await call(http, "GET", f"{base_url}/v1beta/tunedModels")
        durations.append(time.monotonic() - started)
        assert status == 200
    assert durations[1] >= 0.25 > max(durations[0], durations[2])

    await set_faults(http, base_url, {"kind": "latency", "seconds": 0.2, "probability": 0.5}, seed=3)
    slow = []
    for _ in range(6):
        started = time.monotonic()
        await call(http, "GET", f"{base_url}/v1beta/tunedModels")
        slow.append(time.monotonic() - started >= 0.2)
    assert slow == expected_pattern(3, 0.5, 6)


async def test_lost_create_is_committed_and_a_retry_gets_409(base_url: str, http: aiohttp.ClientSession) -> None:
    """The exactly-once case: the model exists, the client saw a dropped connection, the retry says 409."""
    await set_faults(http, base_url, {"kind": "lost_response", "routes": ["create"], "calls": [1]})

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=once", tutorial_body())
    status, model = await call(http, "GET", f"{base_url}/v1beta/tunedModels/once")
    assert (status, model["state"]) == (200, "CREATING")
    retry, body = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=once", tutorial_body())
    assert (retry, body["error"]["status"]) == (409, "ALREADY_EXISTS")
    _, creates = await call(http, "GET", f"{base_url}/_emulator/creates")
    assert creates == {"tunedModels/once": 1}
    _, seen = await call(http, "GET", f"{base_url}/_emulator/requests")
    assert seen["create"] == {"lost": 1, "409": 1}


async def test_lost_response_by_probability(base_url: str, http: aiohttp.ClientSession) -> None:
    """Lost responses by probability: every create is committed, the selected ones are never answered."""
    await set_faults(http, base_url, {"kind": "lost_response", "routes": ["create"], "probability": 0.5}, seed=5)
    lost = []
    for index in range(8):
        try:
            status, _ = await call(
                http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=p{index}", tutorial_body()
            )
            lost.append(status != 200)
        except aiohttp.ServerDisconnectedError:
            lost.append(True)
    _, creates = await call(http, "GET", f"{base_url}/_emulator/creates")

    assert lost == expected_pattern(5, 0.5, 8)
    assert len(creates) == 8


async def test_active_job_cap(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """max_active_jobs: creates beyond the cap are 429 until a job finishes."""
    async with emulator_factory(max_active_jobs=2) as url:
        first = [await call(http, "POST", f"{url}/v1beta/tunedModels", tutorial_body()) for _ in range(2)]
        status, body = await call(http, "POST", f"{url}/v1beta/tunedModels", tutorial_body())
        clock.advance(500)
        after, _ = await call(http, "POST", f"{url}/v1beta/tunedModels", tutorial_body())

    assert [s for s, _ in first] == [200, 200]
    assert status == 429
    assert any(d["@type"].endswith("RetryInfo") for d in body["error"]["details"])
    assert after == 200


@pytest.mark.parametrize("selector", [{"calls": [2]}, {"probability": 1.0}])
async def test_job_fails_at_step(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession, selector: dict[str, Any]
) -> None:
    """fail_job: the operation ends with error 13 after step-1 snapshots and the model is FAILED."""
    async with emulator_factory(step_seconds=1.0) as url:
        await set_faults(http, url, {"kind": "fail_job", "step": 3, **selector})
        ops = [
            (await call(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=j{i}", tutorial_body()))[1]
            for i in (1, 2)
        ]
        clock.advance(500)
        finals = [(await call(http, "GET", f"{url}/v1/{op['name']}"))[1] for op in ops]
        models = [(await call(http, "GET", f"{url}/v1beta/tunedModels/j{i}"))[1] for i in (1, 2)]

    failed = finals[1]
    assert failed["done"] is True and "response" not in failed
    assert failed["error"]["code"] == 13
    assert failed["metadata"]["completedSteps"] == 2
    assert models[1]["state"] == "FAILED"
    if "calls" in selector:
        assert "response" in finals[0] and models[0]["state"] == "ACTIVE"


@pytest.mark.parametrize("selector", [{"calls": [1]}, {"probability": 1.0}])
async def test_job_stalls_until_cancelled(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession, selector: dict[str, Any]
) -> None:
    """stall_job: progress stops for good (never done) until a cancel ends it."""
    async with emulator_factory(step_seconds=1.0) as url:
        await set_faults(http, url, {"kind": "stall_job", "step": 2, **selector})
        _, op = await call(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=s", tutorial_body())
        clock.advance(10_000)
        _, stalled = await call(http, "GET", f"{url}/v1/{op['name']}")
        await call(http, "POST", f"{url}/v1/{op['name']}:cancel")
        clock.advance(10)
        _, cancelled = await call(http, "GET", f"{url}/v1/{op['name']}")

    assert "done" not in stalled and stalled["metadata"]["completedSteps"] == 2
    assert cancelled["error"]["code"] == 1


async def test_admin_fault_routes(base_url: str, http: aiohttp.ClientSession) -> None:
    """/_emulator/faults validates, installs, shows and clears plans; /_emulator/stats counts by route and status."""
    bad, error = await call(http, "POST", f"{base_url}/_emulator/faults", {"rules": [{"kind": "nope"}]})
    assert bad == 400 and "unknown fault kind" in error["error"]
    await set_faults(http, base_url, {"kind": "http_error", "status": 500, "routes": ["list_models"]})
    assert (await call(http, "GET", f"{base_url}/v1beta/tunedModels"))[0] == 500
    _, plan = await call(http, "GET", f"{base_url}/_emulator/faults")
    assert plan["calls"] == [1] and plan["rules"][0]["status"] == 500
    assert await call(http, "DELETE", f"{base_url}/_emulator/faults") == (200, {})
    assert (await call(http, "GET", f"{base_url}/v1beta/tunedModels"))[0] == 200

    _, stats = await call(http, "GET", f"{base_url}/_emulator/stats")
    assert stats["requests"]["list_models"] == {"500": 1, "200": 1}
    assert await call(http, "DELETE", f"{base_url}/_emulator/stats") == (200, {})
    _, stats = await call(http, "GET", f"{base_url}/_emulator/stats")
    assert stats["requests"] == {} and stats["faults"] == {"seed": 0, "rules": []}


async def test_jobs_introspection(base_url: str, http: aiohttp.ClientSession) -> None:
    """/_emulator/jobs reports each job's state and progress."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=i", tutorial_body())
    _, jobs = await call(http, "GET", f"{base_url}/_emulator/jobs")

    assert jobs["active"] == 1
    assert jobs["jobs"][0]["name"] == "tunedModels/i"
    assert jobs["jobs"][0]["totalSteps"] == 38 and jobs["jobs"][0]["state"] == "CREATING"


def test_the_documented_fault_plan_parses() -> None:
    """The example plan in the package docstring is a valid plan (docs that drift fail here)."""
    import re

    import orchestrator.emulator as package
    from orchestrator.emulator import FaultPlan

    found = re.search(r'(\{"seed": 0, "rules": \[.*?\}\]\})', package.__doc__ or "", re.S)
    assert found is not None
    plan = FaultPlan.from_json(json.loads(found.group(1)))

    assert {rule.kind for rule in plan.rules} == {
        "http_error",
        "rate_limit",
        "latency",
        "drop_connection",
        "lost_response",
        "token_expired",
        "fail_job",
        "stall_job",
        "malformed_response",
        "truncated_response",
    }


async def test_lost_response_also_hides_errors(base_url: str, http: aiohttp.ClientSession) -> None:
    """A lost response hides an error answer too; nothing new is committed."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=dup", tutorial_body())
    await set_faults(http, base_url, {"kind": "lost_response", "routes": ["create"], "calls": [1]})

    with pytest.raises(aiohttp.ServerDisconnectedError):
        await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=dup", tutorial_body())
    _, creates = await call(http, "GET", f"{base_url}/_emulator/creates")
    assert creates == {"tunedModels/dup": 1}


async def test_an_emulator_bug_is_a_json_500(http: aiohttp.ClientSession) -> None:
    """Even an unexpected exception answers with Google's envelope, never an HTML page."""
    from dataclasses import replace

    from aiohttp.test_utils import TestServer

    from orchestrator.emulator import create_app, emulator_of
    from orchestrator.emulator.routes import Call, Emulator

    async def broken(emu: Emulator, call_: Call) -> bytes:
        raise RuntimeError("boom")

    app = create_app()
    emulator = emulator_of(app)
    emulator.routes = [replace(route, handler=broken) for route in emulator.routes]
    async with TestServer(app, host="127.0.0.1") as server:
        status, body = await call(http, "GET", str(server.make_url("/v1beta/tunedModels")))

    assert (status, body["error"]["status"]) == (500, "INTERNAL")


async def test_reset_forgets_everything(base_url: str, http: aiohttp.ClientSession) -> None:
    """/_emulator/reset: no models, counters or faults remain, and ids are free."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=r", tutorial_body())
    await set_faults(http, base_url, {"kind": "http_error", "status": 503, "routes": ["create"], "calls": [9]})

    assert await call(http, "POST", f"{base_url}/_emulator/reset") == (200, {})
    _, stats = await call(http, "GET", f"{base_url}/_emulator/stats")
    assert (stats["models"], stats["creates"], stats["requests"], stats["faults"]["rules"]) == (0, {}, {}, [])
    assert (await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=r", tutorial_body()))[0] == 200


@pytest.mark.parametrize("kind", ["malformed_response", "truncated_response"])
async def test_mangled_create_is_still_committed(base_url: str, http: aiohttp.ClientSession, kind: str) -> None:
    """Half an answer is as bad as none: the model exists, and the retry with the same id gets 409."""
    await set_faults(http, base_url, {"kind": kind, "routes": ["create"], "calls": [1]})

    with pytest.raises((json.JSONDecodeError, aiohttp.ClientPayloadError)):
        async with http.post(f"{base_url}/v1beta/tunedModels?tunedModelId=half", json=tutorial_body()) as response:
            assert response.status == 200
            json.loads(await response.read())
    retry, _ = await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=half", tutorial_body())
    _, seen = await call(http, "GET", f"{base_url}/_emulator/requests")

    assert retry == 409
    assert seen["create"] == {kind.removesuffix("_response"): 1, "409": 1}
