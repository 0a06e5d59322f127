"""``HttpTuningApi``: the one implementation of :class:`~orchestrator.gemini.TuningApi` that speaks HTTP.

It classifies and does not retry. Every outcome is a value or one typed ``ApiError``; the scheduler
keeps attempts and next-check times in the database, so a retry survives a restart, which an
in-memory retry loop here would not. The two exceptions are not retries of a failure but parts of one
call: a 401 refreshes the credential and repeats the call once, and an operation route that ``/v1``
does not know (404) is asked of ``/v1beta`` (gemini-api.md §4.6: docs poll on v1, SDKs on v1beta).

Every request passes the shared :class:`Throttle`; a 429 pauses it for everyone before it is raised.
The hot path (10,000 operations polled by one process) holds one session, one logger, no per-request
binding, and parses each body once.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final, TypeVar

import aiohttp
import structlog

from orchestrator.config import EMBEDDED_EMULATOR, ApiSettings
from orchestrator.errors import (
    AlreadyExists,
    ApiError,
    ConfigError,
    MalformedResponse,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
)
from orchestrator.gemini import OperationStatus, TunedModelStatus
from orchestrator.gemini.auth import Auth, auth_from_settings
from orchestrator.gemini.errors import error_from_response
from orchestrator.gemini.throttle import Throttle
from orchestrator.gemini.wire import (
    decode_json,
    operation_from_json,
    operations_page_from_json,
    tuned_model_from_json,
)

__all__ = ["DEFAULT_RATE_LIMIT_PAUSE", "HttpTuningApi", "open_tuning_api"]

#: Seconds every request waits after a 429 that named no delay.
DEFAULT_RATE_LIMIT_PAUSE: Final = 5.0

_log = structlog.get_logger(__name__)

# Names are interpolated into URL paths, so only resource names of the documented shape are accepted:
# a name with ``/``, ``?`` or ``..`` in an id would address some other resource.
_ID: Final = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_MODEL_NAME: Final = re.compile(rf"tunedModels/{_ID}")
_OPERATION_NAME: Final = re.compile(rf"tunedModels/{_ID}/operations/{_ID}")
_EMPTY_OBJECT: Final = b"{}"
_Response = tuple[int, bytes, Mapping[str, str]]
T = TypeVar("T")


def _unreported(_route: str, _status: int | None) -> None:
    """The default ``on_response``: nobody is counting."""


class HttpTuningApi:
    """The tuning API over one ``aiohttp.ClientSession``; build it with :func:`open_tuning_api`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        auth: Auth,
        throttle: Throttle,
        timeout: float,
        on_response: Callable[[str, int | None], None] = _unreported,
    ) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._auth = auth
        self._throttle = throttle
        self._timeout = timeout
        self._on_response = on_response

    async def create_tuned_model(self, tuned_model_id: str, body: Mapping[str, Any]) -> OperationStatus:
        """``POST /v1beta/tunedModels?tunedModelId=…``; the id makes repeating it safe (409 = it landed)."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        params = {"tunedModelId": tuned_model_id}
        return await self._call(
            "POST", "create_tuned_model", "/v1beta/tunedModels", operation_from_json, params=params, body=payload
        )

    async def get_operation(self, name: str, *, after_step: int = 0) -> OperationStatus:
        """``GET /v1/{name}``, or ``/v1beta/{name}`` when v1 answers 404; snapshots after ``after_step``."""
        name = _checked(name, _OPERATION_NAME)
        parse = partial(operation_from_json, after_step=after_step)
        operation, _version = await self._call_v1_or_v1beta("GET", "get_operation", name, parse)
        return operation

    async def list_operations(self, tuned_model: str) -> list[OperationStatus]:
        """Every operation of a tuned model, following ``nextPageToken`` (to adopt a create that landed)."""
        suffix = f"{_checked(tuned_model, _MODEL_NAME)}/operations"
        (operations, token), version = await self._call_v1_or_v1beta(
            "GET", "list_operations", suffix, operations_page_from_json
        )
        seen: set[str] = set()
        while token:
            if token in seen:  # a server bug would otherwise keep this loop going for ever
                raise MalformedResponse("list operations: nextPageToken repeats a page already read")
            seen.add(token)
            page, token = await self._call(
                "GET", "list_operations", f"/{version}/{suffix}", operations_page_from_json, params={"pageToken": token}
            )
            operations.extend(page)
        return operations

    async def get_tuned_model(self, name: str) -> TunedModelStatus:
        """``GET /v1beta/{name}``."""
        path = f"/v1beta/{_checked(name, _MODEL_NAME)}"
        return await self._call("GET", "get_tuned_model", path, tuned_model_from_json)

    async def cancel_operation(self, name: str) -> None:
        """``POST /v1/{name}:cancel`` with ``{}`` (v1beta on 404): the API cancels at its own pace."""
        suffix = f"{_checked(name, _OPERATION_NAME)}:cancel"
        await self._call_v1_or_v1beta("POST", "cancel_operation", suffix, _ignore, body=_EMPTY_OBJECT)

    async def delete_tuned_model(self, name: str) -> None:
        """``DELETE /v1beta/{name}``."""
        await self._call("DELETE", "delete_tuned_model", f"/v1beta/{_checked(name, _MODEL_NAME)}", _ignore)

    async def _call_v1_or_v1beta(
        self, method: str, route: str, suffix: str, parse: Callable[[Any], T], *, body: bytes | None = None
    ) -> tuple[T, str]:
        """An operation route on ``/v1`` as documented, then on ``/v1beta`` if v1 does not know it."""
        try:
            return await self._call(method, route, f"/v1/{suffix}", parse, body=body), "v1"
        except NotFound:
            return await self._call(method, route, f"/v1beta/{suffix}", parse, body=body), "v1beta"

    async def _call(
        self,
        method: str,
        route: str,
        path: str,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> T:
        """One API call: 401 → refresh and repeat once; non-2xx → typed error, logged, 429 pauses all.

        ``parse`` turns the decoded body into the result inside the call, so that a malformed body is
        logged like any other failure; ``_ignore`` skips decoding for calls whose answer is ``{}``.
        """
        started = time.perf_counter()
        url = self._base + path
        try:
            status, payload, headers = await self._exchange(method, route, url, params, body)
            if status == 401:
                await self._auth.refresh()
                status, payload, headers = await self._exchange(method, route, url, params, body)
            if 200 <= status < 300:
                return parse(None if parse is _ignore else decode_json(payload, status))
            raise error_from_response(status, payload, headers)
        except ApiError as exc:
            self._failed(method, route, exc, time.perf_counter() - started)
            raise

    async def _exchange(
        self, method: str, route: str, url: str, params: Mapping[str, str] | None, body: bytes | None
    ) -> _Response:
        """Send once through the throttle; any failure to get a whole response is a TransientError.

        ``on_response`` hears of every exchange: its route and status, None when no whole response came.
        """
        try:
            answer = await self._send(method, url, params, body)
        except TransientError:
            self._on_response(route, None)
            raise
        self._on_response(route, answer[0])
        return answer

    async def _send(self, method: str, url: str, params: Mapping[str, str] | None, body: bytes | None) -> _Response:
        headers = await self._auth.headers()
        if body is not None:
            headers["content-type"] = "application/json"
        async with self._throttle.slot():
            try:
                async with self._session.request(method, url, params=params, data=body, headers=headers) as response:
                    return response.status, await response.read(), response.headers
            # Messages say what happened in our words: aiohttp's own texts can carry the URL.
            except TimeoutError:
                raise TransientError(f"no complete response within {self._timeout:g} s") from None
            except aiohttp.ServerDisconnectedError:
                raise TransientError("the server closed the connection without a response") from None
            except aiohttp.ClientPayloadError:
                raise TransientError("the response body was cut off") from None
            except (aiohttp.ClientConnectionError, OSError) as exc:
                raise TransientError(f"connection failed ({type(exc).__name__})") from None
            except aiohttp.ClientError as exc:
                raise TransientError(f"HTTP client error ({type(exc).__name__})") from None

    def _failed(self, method: str, route: str, error: ApiError, duration: float) -> None:
        """Log the failure once, here, and let a 429 pause every caller before it propagates."""
        pause = None
        if isinstance(error, RateLimited):
            pause = error.retry_after if error.retry_after is not None else DEFAULT_RATE_LIMIT_PAUSE
            self._throttle.pause(pause)
        # 404 and 409 are answers the scheduler expects and logs as decisions (version fallback,
        # adopting a landed create); at debug they cost nothing on a server without v1 operations.
        log = _log.debug if isinstance(error, NotFound | AlreadyExists) else _log.warning
        log(
            "api_request_failed",
            method=method,
            route=route,
            http_status=error.http_status,
            status=error.status,
            error=type(error).__name__,
            message=error.api_message,
            duration=round(duration, 4),
            pause=pause,
        )


@asynccontextmanager
async def open_tuning_api(
    settings: ApiSettings,
    base_url: str | None = None,
    *,
    auth: Auth | None = None,
    throttle: Throttle | None = None,
    on_response: Callable[[str, int | None], None] = _unreported,
) -> AsyncIterator[HttpTuningApi]:
    """The client and its session for the lifetime of the block.

    ``base_url`` overrides ``settings.base_url`` (the daemon passes the embedded emulator's URL).
    ``auth`` and ``throttle`` default to the ones the settings describe; tests inject their own.
    ``on_response`` hears each request's route and status (the daemon counts them for ``/metrics``).
    """
    url = base_url or settings.base_url
    if url == EMBEDDED_EMULATOR or not url.startswith(("http://", "https://")):
        raise ConfigError("api", "base_url", f"needs an http(s) URL here, not {url!r}")
    credentials = auth if auth is not None else await auth_from_settings(settings)
    gate = throttle if throttle is not None else Throttle.from_settings(settings)
    timeout = aiohttp.ClientTimeout(total=settings.timeout or None)
    # The connector pool matches the in-flight cap (0 is unlimited for both), so no request waits
    # for a connection once the throttle has let it go.
    connector = aiohttp.TCPConnector(limit=settings.max_in_flight)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=connector, raise_for_status=False
    ) as session:
        yield HttpTuningApi(session, url, credentials, gate, settings.timeout, on_response)


def _ignore(_data: Any) -> None:
    """The parser of calls whose success body (``{}``) carries nothing."""


def _checked(name: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(name):
        raise PermanentError(f"not a resource name this call accepts: {name!r}")
    return name
