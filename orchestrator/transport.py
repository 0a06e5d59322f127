"""``ApiTransport``: one HTTP exchange with a Google API, classified: the part every service client shares.

It classifies and does not retry. Every outcome is a value or one typed ``ApiError``; the scheduler
keeps attempts and next-check times in the database, so a retry survives a restart, which an
in-memory retry loop here would not. The one exception is not a retry of a failure but part of one
call: a 401 refreshes the credential and repeats the call once.

Every request passes the shared :class:`Throttle`; a 429 pauses it for everyone before it is raised.
Redirects are never followed: a 3xx from a Google API is an error, and following one would carry the
credential to whatever host it names. The hot path (10,000 jobs polled by one process) holds one
session, one logger, no per-request binding, and parses each body once.
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import aiohttp
import structlog
import yarl

from orchestrator.errors import AlreadyExists, ApiError, NotDelivered, NotFound, RateLimited, TransientError
from orchestrator.gemini.auth import Auth
from orchestrator.gemini.errors import error_from_response
from orchestrator.gemini.throttle import Throttle
from orchestrator.protojson import decode_json

__all__ = ["DEFAULT_RATE_LIMIT_PAUSE", "ApiTransport", "ignore_body"]

#: Seconds every request waits after a 429 that named no delay.
DEFAULT_RATE_LIMIT_PAUSE: Final = 5.0

_log = structlog.get_logger(__name__)
_Response = tuple[int, bytes, Mapping[str, str]]
T = TypeVar("T")


def _host(url: str) -> str:
    """``host:port`` of ``url``: where a failed request went, without its path, query or user info."""
    parsed = yarl.URL(url)
    return f"{parsed.host}:{parsed.port}" if parsed.port is not None else str(parsed.host)


def _connect_cause(exc: aiohttp.ClientConnectorError) -> str:
    """Why a connection could not be made, in an operator's words: refused, DNS, TLS, timeout, unreachable."""
    cause = exc.os_error
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate not accepted ({getattr(exc.certificate_error, 'verify_message', '') or 'invalid'})"
    if isinstance(exc, aiohttp.ClientSSLError) or isinstance(cause, ssl.SSLError):
        return f"TLS handshake failed ({getattr(cause, 'reason', None) or type(cause).__name__})"
    if isinstance(cause, socket.gaierror):
        return f"DNS lookup failed ({cause.strerror or 'no such host'})"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused (nothing listens there)"
    if isinstance(cause, TimeoutError):
        return "connect timed out"
    if cause.errno:
        return os.strerror(cause.errno)
    return type(cause).__name__


def ignore_body(_data: Any) -> None:
    """The parser of calls whose success body (``{}``) carries nothing: the body is not even decoded."""


def unreported(_route: str, _status: int | None) -> None:
    """The default ``on_response``: nobody is counting."""


class ApiTransport:
    """Authenticated, throttled, classified requests over one ``aiohttp.ClientSession``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        auth: Auth,
        throttle: Throttle,
        timeout: float,
        on_response: Callable[[str, int | None], None] = unreported,
    ) -> None:
        self._session = session
        self._auth = auth
        self._throttle = throttle
        self._timeout = timeout
        self._on_response = on_response

    async def call(
        self,
        method: str,
        route: str,
        url: str,
        parse: Callable[[Any], T],
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str = "application/json",
    ) -> T:
        """One API call: 401 → refresh and repeat once; non-2xx → typed error, logged, 429 pauses all.

        ``parse`` turns the decoded body into the result inside the call, so that a malformed body is
        logged like any other failure; ``ignore_body`` skips decoding for calls whose answer is ``{}``.
        ``route`` names the call in logs and metrics (never the URL, which may carry names).
        """
        started = time.perf_counter()
        try:
            status, payload, headers = await self._exchange(method, route, url, params, body, content_type)
            if status == 401:
                await self._auth.refresh()
                status, payload, headers = await self._exchange(method, route, url, params, body, content_type)
            if 200 <= status < 300:
                return parse(None if parse is ignore_body else decode_json(payload, status))
            raise error_from_response(status, payload, headers)
        except ApiError as exc:
            self._failed(method, route, exc, time.perf_counter() - started)
            raise

    async def _exchange(
        self, method: str, route: str, url: str, params: Mapping[str, str] | None, body: bytes | None,
        content_type: str,
    ) -> _Response:
        """Send once through the throttle; any failure to get a whole response is a TransientError.

        ``on_response`` hears of every exchange: its route and status, None when no whole response came.
        """
        try:
            answer = await self._send(method, url, params, body, content_type)
        except TransientError:
            self._on_response(route, None)
            raise
        self._on_response(route, answer[0])
        return answer

    async def _send(
        self, method: str, url: str, params: Mapping[str, str] | None, body: bytes | None, content_type: str
    ) -> _Response:
        headers = await self._auth.headers()
        if body is not None:
            headers["content-type"] = content_type
        async with self._throttle.slot():
            try:
                async with self._session.request(
                    method, url, params=params, data=body, headers=headers, allow_redirects=False
                ) as response:
                    return response.status, await response.read(), response.headers
            # Messages say what happened in our words, naming the host (never the URL: its path and
            # query can carry names, and aiohttp's own texts quote it whole).
            except TimeoutError:
                raise TransientError(f"no complete response from {_host(url)} within {self._timeout:g} s") from None
            except aiohttp.ServerDisconnectedError:
                raise TransientError(f"{_host(url)} closed the connection without a response") from None
            except aiohttp.ClientPayloadError:
                raise TransientError(f"the response body from {_host(url)} was cut off") from None
            except aiohttp.ClientConnectorError as exc:  # no connection: nothing of the request was sent
                raise NotDelivered(f"cannot connect to {_host(url)}: {_connect_cause(exc)}") from None
            except (aiohttp.ClientConnectionError, OSError) as exc:
                raise TransientError(f"connection to {_host(url)} failed ({type(exc).__name__})") from None
            except aiohttp.ClientError as exc:
                raise TransientError(f"HTTP client error with {_host(url)} ({type(exc).__name__})") from None

    def _failed(self, method: str, route: str, error: ApiError, duration: float) -> None:
        """Log the failure once, here, and let a 429 pause every caller before it propagates."""
        pause = None
        if isinstance(error, RateLimited):
            pause = error.retry_after if error.retry_after is not None else DEFAULT_RATE_LIMIT_PAUSE
            self._throttle.pause(pause)
        # 404, 409 and 412 are answers the callers expect and log as decisions (version fallback,
        # adopting a landed create, an upload whose object exists already); at debug they cost nothing.
        expected = isinstance(error, NotFound | AlreadyExists) or error.http_status == 412
        log = _log.debug if expected else _log.warning
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
