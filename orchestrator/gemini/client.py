"""``HttpTuningApi``: the Gemini API's ``tunedModels`` and operations over HTTP, one method per call.

Requests go through the shared :class:`~orchestrator.transport.ApiTransport` (auth, throttle, error
classification, no redirects, no retries). What this adds is Gemini's: resource-name checks, and an
operation route that ``/v1`` does not know (404) asked of ``/v1beta`` (gemini-api.md §4.6: docs poll on
v1, SDKs on v1beta). ``service.GeminiTuning`` turns these calls into the scheduler's lifecycle.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from functools import partial
from typing import Any, Final, TypeVar

import aiohttp

from orchestrator.config import EMBEDDED_EMULATOR, ApiSettings, sends_credentials_in_clear
from orchestrator.errors import ConfigError, MalformedResponse, NotFound, PermanentError
from orchestrator.gemini import OperationStatus, TunedModelStatus
from orchestrator.gemini.auth import Auth, NoAuth, auth_from_settings
from orchestrator.gemini.throttle import Throttle
from orchestrator.gemini.wire import operation_from_json, operations_page_from_json, tuned_model_from_json
from orchestrator.transport import DEFAULT_RATE_LIMIT_PAUSE, ApiTransport, unreported
from orchestrator.transport import ignore_body as _ignore

__all__ = ["DEFAULT_RATE_LIMIT_PAUSE", "HttpTuningApi", "open_tuning_api"]

# Names are interpolated into URL paths, so only resource names of the documented shape are accepted:
# a name with ``/``, ``?`` or ``..`` in an id would address some other resource.
_ID: Final = r"[A-Za-z0-9][A-Za-z0-9_-]*"
_MODEL_NAME: Final = re.compile(rf"tunedModels/{_ID}")
_OPERATION_NAME: Final = re.compile(rf"tunedModels/{_ID}/operations/{_ID}")
_EMPTY_OBJECT: Final = b"{}"
T = TypeVar("T")


class HttpTuningApi:
    """The tuning API over one ``aiohttp.ClientSession``; build it with :func:`open_tuning_api`."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        auth: Auth,
        throttle: Throttle,
        timeout: float,
        on_response: Callable[[str, int | None], None] = unreported,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = ApiTransport(session, auth, throttle, timeout, on_response)

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
        return await self._http.call(method, route, self._base + path, parse, params=params, body=body)

@asynccontextmanager
async def open_tuning_api(
    settings: ApiSettings,
    base_url: str | None = None,
    *,
    auth: Auth | None = None,
    throttle: Throttle | None = None,
    on_response: Callable[[str, int | None], None] = unreported,
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
    if not isinstance(credentials, NoAuth) and sends_credentials_in_clear(url):
        raise ConfigError("api", "base_url", f"{url!r} is plain http:// to another host: credentials go over https://")
    gate = throttle if throttle is not None else Throttle.from_settings(settings)
    timeout = aiohttp.ClientTimeout(total=settings.timeout or None)
    # The connector pool matches the in-flight cap (0 is unlimited for both), so no request waits
    # for a connection once the throttle has let it go.
    connector = aiohttp.TCPConnector(limit=settings.max_in_flight)
    async with aiohttp.ClientSession(
        timeout=timeout, connector=connector, raise_for_status=False
    ) as session:
        yield HttpTuningApi(session, url, credentials, gate, settings.timeout, on_response)


def _checked(name: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(name):
        raise PermanentError(f"not a resource name this call accepts: {name!r}")
    return name
