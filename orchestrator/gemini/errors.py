"""An HTTP error response → one typed :class:`~orchestrator.errors.ApiError`. Pure.

The scheduler decides what to do from the error's *type* alone (retry later, slow everyone down, fail
the job, adopt an existing model), so this one function is where that decision's input is made, and it
is tested with canned bodies. It reads Google's envelope (gemini-api.md §8.1)::

    {"error": {"code": 429, "message": "...", "status": "RESOURCE_EXHAUSTED", "details": [...]}}

and survives what front ends send instead: HTML error pages, truncated JSON, empty bodies. The error
keeps the API's status and message only; never headers, URLs or other parts of the body, so that no
credential can reach an exception text (promise 7).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final

from orchestrator.errors import (
    AlreadyExists,
    ApiError,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    Unauthenticated,
)
from orchestrator.logs import scrub

__all__ = ["error_from_response"]

#: The google.rpc.Code name a bare HTTP status stands for (§8.2), for bodies that do not say.
DEFAULT_STATUS: Final[Mapping[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: Statuses worth repeating as sent (§8.4). Every 5xx but 501 UNIMPLEMENTED is here as well.
TRANSIENT_HTTP: Final = frozenset({408, 500, 502, 503, 504})

#: The longest API message we keep: enough for any real one, bounded for the database and logs.
MAX_MESSAGE_CHARS: Final = 2000

#: ``ErrorInfo.reason`` values that mean "this credential is wrong" even when the HTTP status is 400
#: or 403 (production answers a bad API key with 400 ``API_KEY_INVALID``, gemini-api.md §11).
CREDENTIAL_REASONS: Final = frozenset({"API_KEY_INVALID", "API_KEY_EXPIRED", "ACCESS_TOKEN_EXPIRED"})

_RETRY_INFO: Final = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO: Final = "type.googleapis.com/google.rpc.ErrorInfo"


def error_from_response(
    http_status: int, body: bytes, headers: Mapping[str, str], *, now: float | None = None
) -> ApiError:
    """Classify a non-2xx response.

    ``now`` (Unix seconds, default the wall clock) is only read to turn a ``Retry-After`` HTTP-date
    into a delay; tests pass it to stay pure.
    """
    envelope = _envelope(body)
    status = _text(envelope.get("status")) or DEFAULT_STATUS.get(http_status, "")
    # Scrubbed before it is cut: a cut through a key would leave a piece of it that no scrub can find.
    message = scrub(_text(envelope.get("message")))[:MAX_MESSAGE_CHARS]
    message = message or _fallback_message(http_status, body, envelope)
    if http_status == 429:
        retry_after = _retry_after(envelope.get("details"), headers, time.time() if now is None else now)
        return RateLimited(message, http_status=http_status, status=status, retry_after=retry_after)
    if _reason(envelope.get("details")) in CREDENTIAL_REASONS:
        # A bad key is the installation's problem, not the job's: failing every job with it would
        # throw the queue away over one configuration mistake, so it pauses the scheduler like a 401.
        return Unauthenticated(message, http_status=http_status, status=status)
    return _error_class(http_status, status)(message, http_status=http_status, status=status)


def _error_class(http_status: int, status: str) -> type[ApiError]:
    if http_status == 401:
        return Unauthenticated
    if http_status == 404:
        return NotFound
    if http_status == 409:
        # ABORTED is a lost race worth repeating; anything else on 409 is taken as ALREADY_EXISTS,
        # whose handling (read the model, adopt or retry) is safe even when that guess is wrong.
        return TransientError if status == "ABORTED" else AlreadyExists
    if http_status in TRANSIENT_HTTP or (http_status >= 500 and http_status != 501):
        return TransientError
    return PermanentError


def _envelope(body: bytes) -> dict[str, Any]:
    """The ``error`` object of the body, or ``{}`` when the body is not Google's envelope."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _fallback_message(http_status: int, body: bytes, envelope: dict[str, Any]) -> str:
    """Words for an error without a message: the status phrase, never the body's text."""
    try:
        phrase = f"{HTTPStatus(http_status).phrase} ({http_status})"
    except ValueError:
        phrase = f"HTTP error ({http_status})"
    if envelope:
        return f"{phrase} without a message"
    if not body.strip():
        return f"{phrase} with an empty body"
    return f"{phrase} with a {len(body)}-byte body that is not an API error"


def _text(value: object) -> str:
    return value.strip() if isinstance(value, str) else ""


def _retry_after(details: object, headers: Mapping[str, str], now: float) -> float | None:
    """The longer of the server's two hints (``RetryInfo.retryDelay``, ``Retry-After``), if any."""
    hints = [d for d in (_retry_info_delay(details), _retry_after_header(headers, now)) if d is not None]
    return max(hints) if hints else None


def _reason(details: object) -> str:
    """The ``ErrorInfo.reason`` among the details, or ``""``."""
    if isinstance(details, list):
        for detail in details:
            if isinstance(detail, dict) and detail.get("@type") == _ERROR_INFO:
                return _text(detail.get("reason"))
    return ""


def _retry_info_delay(details: object) -> float | None:
    if not isinstance(details, list):
        return None
    for detail in details:
        if isinstance(detail, dict) and detail.get("@type") == _RETRY_INFO:
            return _duration(detail.get("retryDelay"))
    return None


def _duration(value: object) -> float | None:
    """A ``google.protobuf.Duration``: JSON ``"53s"`` / ``"1.5s"``, or ``{seconds, nanos}``."""
    if isinstance(value, str) and value.endswith("s"):
        return _non_negative(value[:-1])
    if isinstance(value, dict):
        seconds = _non_negative(value.get("seconds", 0))
        nanos = _non_negative(value.get("nanos", 0))
        return None if seconds is None or nanos is None else seconds + nanos / 1e9
    return None


def _retry_after_header(headers: Mapping[str, str], now: float) -> float | None:
    """``Retry-After``: delta seconds, or an HTTP-date (RFC 9110 §10.2.3)."""
    value = headers.get("Retry-After")
    if value is None:  # a plain dict from a test or a caller is not case-insensitive like aiohttp's
        value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    seconds = _non_negative(value.strip())
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - now) if when.tzinfo is not None else None


def _non_negative(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None
