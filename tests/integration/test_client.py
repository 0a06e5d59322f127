"""HttpTuningApi against a real aiohttp server on 127.0.0.1 that replays scripted replies.

The replies are the shapes of the seed transcripts (gemini-api.md §4, §5.4) and the faults a real
front end produces: 5xx, 429 with RetryInfo, token expiry, truncated bodies, dropped connections.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from orchestrator.config import ApiSettings
from orchestrator.errors import (
    AlreadyExists,
    ApiError,
    ConfigError,
    MalformedResponse,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    Unauthenticated,
)
from orchestrator.gemini import OperationError, Snapshot, TunedModelStatus
from orchestrator.gemini.auth import ApiKeyAuth
from orchestrator.gemini.client import DEFAULT_RATE_LIMIT_PAUSE, HttpTuningApi, open_tuning_api
from orchestrator.gemini.throttle import Throttle

KEY = "AIzaSy-integration-test-key"
MODEL = "tunedModels/number-generator-model-dzlmi0gswwqb"
OP = f"{MODEL}/operations/bvl8dymw0fhw"
META_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata"
CREATED = {"name": OP, "metadata": {"@type": META_TYPE, "totalSteps": 38, "tunedModel": MODEL}}
RUNNING = {
    "name": OP,
    "metadata": {
        "@type": META_TYPE,
        "tunedModel": MODEL,
        "totalSteps": 38,
        "completedSteps": 2,
        "completedPercent": 5.263158,
        "snapshots": [
            {"step": 1, "meanLoss": 16.613504, "computeTime": "2024-03-14T15:10:31.123456789Z"},
            {"step": 2, "meanLoss": 14.5, "computeTime": "2024-03-14T15:10:33.123456789Z"},
        ],
    },
}
CREATE_BODY = {
    "displayName": "number generator model",
    "baseModel": "models/gemini-1.0-pro-001",
    "tuningTask": {
        "hyperparameters": {"batchSize": 2, "learningRate": 0.001, "epochCount": 5},
        "trainingData": {"examples": {"examples": [{"textInput": "1", "output": "2"}]}},
    },
}

Reply = Callable[[web.Request], Awaitable[web.StreamResponse]]


def envelope(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, **({"details": details} if details else {})}}


def reply(status: int, body: object, headers: dict[str, str] | None = None) -> Reply:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.json_response(body, status=status, headers=headers)

    return handler


def raw(status: int, body: bytes, content_type: str = "application/json") -> Reply:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


async def drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering: the 'create landed but the response was lost' case."""
    assert request.transport is not None
    request.transport.close()
    return web.Response()


async def cut_body(request: web.Request) -> web.StreamResponse:
    """Promise 500 bytes, send a few, hang up."""
    response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "500"})
    await response.prepare(request)
    await response.write(b'{"name": "tunedModels/')
    assert request.transport is not None
    request.transport.close()
    return response


@dataclass
class Seen:
    method: str
    path_qs: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Script:
    """Replies per (method, path), served in order; the last one repeats. Unscripted routes are 404."""

    replies: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    base_url: str = ""
    hold: asyncio.Event = field(default_factory=asyncio.Event)
    held: asyncio.Event = field(default_factory=asyncio.Event)

    def on(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.path_qs, dict(request.headers), await request.read()))
        queue = self.replies.get((request.method, request.path))
        if not queue:
            return web.json_response(envelope(404, "NOT_FOUND", f"no route {request.path}"), status=404)
        return await (queue.pop(0) if len(queue) > 1 else queue[0])(request)

    async def hang(self, request: web.Request) -> web.StreamResponse:
        self.held.set()
        await self.hold.wait()
        return web.json_response({})


class ManualClock:
    """A clock for the throttle whose sleeps only move time forward and record how long they were."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class RotatingAuth:
    """A credential that changes on refresh, to see which one each request carried."""

    def __init__(self) -> None:
        self.refreshes = 0

    async def headers(self) -> dict[str, str]:
        return {"authorization": f"Bearer token-{self.refreshes}"}

    async def refresh(self) -> None:
        self.refreshes += 1


@pytest.fixture
async def script() -> AsyncIterator[Script]:
    script = Script()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", script.handle)
    async with TestServer(app, host="127.0.0.1", port=0) as server:
        script.base_url = str(server.make_url(""))
        yield script
        script.hold.set()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def api(script: Script, clock: ManualClock) -> AsyncIterator[HttpTuningApi]:
    settings = ApiSettings(base_url="emulator", timeout=5.0)
    throttle = Throttle(4, 0, clock=clock, sleep=clock.sleep)
    async with open_tuning_api(settings, script.base_url, auth=ApiKeyAuth(KEY), throttle=throttle) as client:
        yield client


def assert_key_only_in_header(script: Script) -> None:
    assert script.seen, "no request reached the server"
    for request in script.seen:
        assert request.headers.get("x-goog-api-key") == KEY
        assert KEY not in request.path_qs and "key=" not in request.path_qs


async def test_create_sends_the_id_and_body_and_reads_the_operation(script: Script, api: HttpTuningApi) -> None:
    script.on("POST", "/v1beta/tunedModels", reply(200, CREATED))
    operation = await api.create_tuned_model("number-generator-model-dzlmi0gswwqb", CREATE_BODY)
    assert (operation.name, operation.tuned_model, operation.total_steps, operation.done) == (OP, MODEL, 38, False)
    [request] = script.seen
    assert request.path_qs == "/v1beta/tunedModels?tunedModelId=number-generator-model-dzlmi0gswwqb"
    assert json.loads(request.body) == CREATE_BODY
    assert request.headers["Content-Type"] == "application/json"
    assert_key_only_in_header(script)


async def test_create_of_an_existing_id_is_already_exists(script: Script, api: HttpTuningApi) -> None:
    message = f"Tuned model {MODEL} already exists."
    script.on("POST", "/v1beta/tunedModels", reply(409, envelope(409, "ALREADY_EXISTS", message)))
    with pytest.raises(AlreadyExists) as info:
        await api.create_tuned_model("number-generator-model-dzlmi0gswwqb", CREATE_BODY)
    assert (info.value.http_status, info.value.status, info.value.api_message) == (409, "ALREADY_EXISTS", message)


async def test_get_operation_reads_v1(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1/{OP}", reply(200, RUNNING))
    operation = await api.get_operation(OP)
    assert operation.completed_steps == 2 and operation.snapshots[0] == Snapshot(
        1, 0, 16.613504, "2024-03-14T15:10:31.123456789Z"
    )
    assert [s.path_qs for s in script.seen] == [f"/v1/{OP}"]
    assert_key_only_in_header(script)


async def test_get_operation_falls_back_to_v1beta_on_404(script: Script, api: HttpTuningApi) -> None:
    done = {**RUNNING, "done": True, "error": {"code": 1, "message": "Operation cancelled."}}
    script.on("GET", f"/v1beta/{OP}", reply(200, done))
    operation = await api.get_operation(OP)
    assert operation.error == OperationError(1, "Operation cancelled.")
    assert [s.path_qs for s in script.seen] == [f"/v1/{OP}", f"/v1beta/{OP}"]


async def test_get_operation_missing_on_both_versions_is_not_found(script: Script, api: HttpTuningApi) -> None:
    with pytest.raises(NotFound):
        await api.get_operation(OP)
    assert len(script.seen) == 2


async def test_list_operations_follows_pages_on_the_version_that_answered(script: Script, api: HttpTuningApi) -> None:
    path = f"/v1beta/{MODEL}/operations"
    script.on(
        "GET", path, reply(200, {"operations": [CREATED], "nextPageToken": "p2"}), reply(200, {"operations": [RUNNING]})
    )
    operations = await api.list_operations(MODEL)
    assert [op.completed_steps for op in operations] == [0, 2]
    assert [s.path_qs for s in script.seen] == [f"/v1/{MODEL}/operations", path, f"{path}?pageToken=p2"]


async def test_list_operations_stops_on_a_repeating_token(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1/{MODEL}/operations", reply(200, {"operations": [], "nextPageToken": "same"}))
    with pytest.raises(MalformedResponse, match="repeats"):
        await api.list_operations(MODEL)
    assert len(script.seen) == 2


async def test_get_tuned_model_reads_integer_state(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1beta/{MODEL}", reply(200, {"name": MODEL, "state": 2, "tuningTask": {"snapshots": []}}))
    assert await api.get_tuned_model(MODEL) == TunedModelStatus(MODEL, "ACTIVE")


async def test_cancel_posts_an_empty_object_with_fallback(script: Script, api: HttpTuningApi) -> None:
    script.on("POST", f"/v1beta/{OP}:cancel", reply(200, {}))
    await api.cancel_operation(OP)
    assert [(s.method, s.path_qs, s.body) for s in script.seen] == [
        ("POST", f"/v1/{OP}:cancel", b"{}"),
        ("POST", f"/v1beta/{OP}:cancel", b"{}"),
    ]


async def test_delete_accepts_an_empty_answer(script: Script, api: HttpTuningApi) -> None:
    script.on("DELETE", f"/v1beta/{MODEL}", raw(200, b""))
    await api.delete_tuned_model(MODEL)
    assert [(s.method, s.path_qs) for s in script.seen] == [("DELETE", f"/v1beta/{MODEL}")]


@pytest.mark.parametrize("name", ["tunedModels/x/../../models", "tunedModels/x?key=1", "models/x", ""])
async def test_names_that_would_leave_the_resource_are_refused_unsent(
    name: str, script: Script, api: HttpTuningApi
) -> None:
    with pytest.raises(PermanentError):
        await api.get_tuned_model(name)
    with pytest.raises(PermanentError):
        await api.get_operation(name)
    assert script.seen == []


async def test_503_is_transient_logged_once_and_not_retried(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1/{OP}", reply(503, envelope(503, "UNAVAILABLE", "The model is overloaded.")))
    with capture_logs() as logs, pytest.raises(TransientError) as info:
        await api.get_operation(OP)
    assert type(info.value) is TransientError and info.value.status == "UNAVAILABLE"
    assert len(script.seen) == 1
    [event] = logs
    assert {k: event[k] for k in ("event", "method", "route", "http_status", "status", "error")} == {
        "event": "api_request_failed",
        "method": "GET",
        "route": "get_operation",
        "http_status": 503,
        "status": "UNAVAILABLE",
        "error": "TransientError",
    }
    assert event["duration"] >= 0 and event["log_level"] == "warning"
    assert KEY not in repr(logs) and KEY not in str(info.value)


async def test_429_pauses_every_later_call_for_the_retry_delay(
    script: Script, api: HttpTuningApi, clock: ManualClock
) -> None:
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "53s"}]
    script.on(
        "GET",
        f"/v1/{OP}",
        reply(429, envelope(429, "RESOURCE_EXHAUSTED", "Please retry in 53.0s.", details)),
        reply(200, RUNNING),
    )
    with pytest.raises(RateLimited) as info:
        await api.get_operation(OP)
    assert info.value.retry_after == 53.0 and clock.sleeps == []
    await api.get_operation(OP)
    assert clock.sleeps == [53.0]


async def test_429_without_a_delay_pauses_for_the_default(
    script: Script, api: HttpTuningApi, clock: ManualClock
) -> None:
    script.on("GET", f"/v1/{OP}", raw(429, b"<html>quota</html>", "text/html"), reply(200, RUNNING))
    with pytest.raises(RateLimited) as info:
        await api.get_operation(OP)
    assert info.value.retry_after is None
    await api.get_operation(OP)
    assert clock.sleeps == [DEFAULT_RATE_LIMIT_PAUSE]


async def test_401_refreshes_once_and_repeats_the_call(script: Script) -> None:
    script.on(
        "GET", f"/v1beta/{MODEL}", reply(401, envelope(401, "UNAUTHENTICATED", "expired")), reply(200, {"name": MODEL})
    )
    auth = RotatingAuth()
    async with open_tuning_api(ApiSettings(), script.base_url, auth=auth) as api:
        assert (await api.get_tuned_model(MODEL)).state == "STATE_UNSPECIFIED"
    assert auth.refreshes == 1
    assert [s.headers["Authorization"] for s in script.seen] == ["Bearer token-0", "Bearer token-1"]


async def test_a_second_401_is_unauthenticated(script: Script) -> None:
    script.on(
        "GET", f"/v1beta/{MODEL}", reply(401, envelope(401, "UNAUTHENTICATED", "Request had invalid credentials."))
    )
    auth = RotatingAuth()
    async with open_tuning_api(ApiSettings(), script.base_url, auth=auth) as api:
        with pytest.raises(Unauthenticated, match="invalid credentials"):
            await api.get_tuned_model(MODEL)
    assert auth.refreshes == 1 and len(script.seen) == 2


async def test_truncated_json_with_a_correct_length_is_malformed(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1/{OP}", raw(200, b'{"name": "tunedModels/number-gen'))
    with capture_logs() as logs, pytest.raises(MalformedResponse) as info:
        await api.get_operation(OP)
    assert info.value.http_status == 200 and "tunedModels" not in str(info.value)
    assert [e["error"] for e in logs] == ["MalformedResponse"]


async def test_wrong_types_are_malformed_and_logged(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1/{OP}", reply(200, {"name": OP, "done": "yes"}))
    with capture_logs() as logs, pytest.raises(MalformedResponse, match=r"operation\.done"):
        await api.get_operation(OP)
    assert [e["event"] for e in logs] == ["api_request_failed"]


async def test_html_error_page_is_classified_by_status(script: Script, api: HttpTuningApi) -> None:
    script.on("GET", f"/v1beta/{MODEL}", raw(502, b"<html><body>Bad Gateway</body></html>", "text/html"))
    with pytest.raises(TransientError, match=r"Bad Gateway \(502\)"):
        await api.get_tuned_model(MODEL)


@pytest.mark.parametrize(
    ("fault", "message"),
    [(drop, "closed the connection"), (cut_body, "cut off")],
)
async def test_lost_responses_are_transient(fault: Reply, message: str, script: Script, api: HttpTuningApi) -> None:
    """A create whose response is lost is the exactly-once case: the scheduler repeats it with its id."""
    script.on("POST", "/v1beta/tunedModels", fault)
    with pytest.raises(TransientError, match=message) as info:
        await api.create_tuned_model("number-generator-model-dzlmi0gswwqb", CREATE_BODY)
    assert type(info.value) is TransientError and info.value.http_status is None
    assert script.base_url not in str(info.value)


async def test_timeout_is_transient(script: Script) -> None:
    script.on("GET", f"/v1/{OP}", script.hang)
    async with open_tuning_api(ApiSettings(timeout=0.2), script.base_url) as api:
        with pytest.raises(TransientError, match=r"no complete response from 127\.0\.0\.1:\d+ within 0\.2 s"):
            await api.get_operation(OP)


async def test_connection_refused_is_transient_and_names_the_host_not_the_url(unused_tcp_port: int) -> None:
    url = f"http://127.0.0.1:{unused_tcp_port}"
    async with open_tuning_api(ApiSettings(), url) as api:
        with pytest.raises(TransientError) as info:
            await api.get_tuned_model(MODEL)
    expected = f"cannot connect to 127.0.0.1:{unused_tcp_port}: connection refused (nothing listens there)"
    assert str(info.value) == expected
    assert MODEL.split("/")[-1] not in str(info.value)


async def test_api_key_from_the_environment_by_default(script: Script, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GEMINI_KEY", KEY)
    script.on("GET", f"/v1beta/{MODEL}", reply(200, {"name": MODEL, "state": "CREATING"}))
    settings = ApiSettings(auth="api_key", api_key_env="TEST_GEMINI_KEY", base_url=script.base_url)
    async with open_tuning_api(settings) as api:
        assert (await api.get_tuned_model(MODEL)).state == "CREATING"
    assert_key_only_in_header(script)


@pytest.mark.parametrize("url", ["emulator", "ftp://example.com", ""])
async def test_base_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        async with open_tuning_api(ApiSettings(base_url=url)):
            pass


async def test_every_request_passes_the_in_flight_cap(script: Script) -> None:
    """With one slot, a second call reaches the server only after the first has its answer."""
    script.on("GET", f"/v1/{OP}", script.hang)
    async with open_tuning_api(ApiSettings(), script.base_url, throttle=Throttle(1, 0)) as api:
        calls = [asyncio.create_task(api.get_operation(OP)) for _ in range(2)]
        await asyncio.wait_for(script.held.wait(), 5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(script.seen) == 1
        script.on("GET", f"/v1/{OP}", reply(200, RUNNING))
        script.hold.set()
        with pytest.raises(MalformedResponse):  # the held request's answer, {}, has no name
            await calls[0]
        assert (await calls[1]).completed_steps == 2
    assert len(script.seen) == 2


async def test_a_redirect_is_not_followed_and_the_key_goes_nowhere_else(script: Script, api: HttpTuningApi) -> None:
    """A 307 to another host would deliver x-goog-api-key there (aiohttp strips only Authorization)."""
    stolen: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.StreamResponse:
        stolen.append(dict(request.headers))
        return web.json_response(CREATED)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", elsewhere)
    async with TestServer(app, host="127.0.0.1", port=0) as other:
        target = f"http://localhost:{other.port}/v1beta/tunedModels"
        script.on("POST", "/v1beta/tunedModels", reply(307, {}, headers={"Location": target}))
        with pytest.raises(ApiError) as info:
            await api.create_tuned_model("number-generator-model-dzlmi0gswwqb", CREATE_BODY)

    assert stolen == []
    assert info.value.http_status == 307
    assert len(script.seen) == 1


@pytest.mark.parametrize("url", ["http://generativelanguage.googleapis.com", "http://10.0.0.5:8080"])
async def test_credentials_are_never_sent_over_plain_http_to_another_host(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        async with open_tuning_api(ApiSettings(base_url=url), auth=ApiKeyAuth(KEY)):
            pass
    assert "plain http://" in str(info.value) and KEY not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:1", "http://localhost:1", "http://[::1]:1", "https://example.com"])
async def test_loopback_and_https_take_credentials(url: str) -> None:
    async with open_tuning_api(ApiSettings(base_url=url), auth=ApiKeyAuth(KEY)) as client:
        assert isinstance(client, HttpTuningApi)
