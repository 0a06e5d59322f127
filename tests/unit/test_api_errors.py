"""gemini.errors.error_from_response on canned bodies: the type decides what the scheduler does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from orchestrator.errors import (
    AlreadyExists,
    ApiError,
    MalformedResponse,
    NotFound,
    PermanentError,
    RateLimited,
    TransientError,
    Unauthenticated,
)
from orchestrator.gemini.errors import MAX_MESSAGE_CHARS, error_from_response
from orchestrator.logs import REDACTED, register_secret

NOW = 1_700_000_000.0


def envelope(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error}).encode()


def retry_info(delay: object) -> dict[str, Any]:
    return {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": delay}


@pytest.mark.parametrize(
    ("http_status", "status", "kind"),
    [
        (400, "INVALID_ARGUMENT", PermanentError),
        (400, "FAILED_PRECONDITION", PermanentError),
        (401, "UNAUTHENTICATED", Unauthenticated),
        (403, "PERMISSION_DENIED", PermanentError),
        (404, "NOT_FOUND", NotFound),
        (408, "DEADLINE_EXCEEDED", TransientError),
        (409, "ALREADY_EXISTS", AlreadyExists),
        (409, "ABORTED", TransientError),
        (429, "RESOURCE_EXHAUSTED", RateLimited),
        (499, "CANCELLED", PermanentError),
        (500, "INTERNAL", TransientError),
        (501, "UNIMPLEMENTED", PermanentError),
        (502, "UNAVAILABLE", TransientError),
        (503, "UNAVAILABLE", TransientError),
        (504, "DEADLINE_EXCEEDED", TransientError),
        (507, "", TransientError),
    ],
)
def test_classification(http_status: int, status: str, kind: type[ApiError]) -> None:
    """Each status maps to exactly the documented type (not merely a subclass of it)."""
    error = error_from_response(http_status, envelope(http_status, status, "the API's words"), {}, now=NOW)
    assert type(error) is kind
    assert (error.http_status, error.status, error.api_message) == (http_status, status or "", "the API's words")


def test_envelope_of_a_missing_model_keeps_the_api_message() -> None:
    """The 404 of the transcripts (gemini-api.md §4.2)."""
    body = envelope(404, "NOT_FOUND", "Tuned model tunedModels/generate-num-2946 does not exist.")
    error = error_from_response(404, body, {"content-type": "application/json"}, now=NOW)
    assert str(error) == "404 NOT_FOUND: Tuned model tunedModels/generate-num-2946 does not exist."
    assert error.as_dict() == {
        "kind": "NotFound",
        "http_status": 404,
        "status": "NOT_FOUND",
        "message": "Tuned model tunedModels/generate-num-2946 does not exist.",
    }


@pytest.mark.parametrize(
    ("delay", "expected"), [("53s", 53.0), ("1.5s", 1.5), ("0s", 0.0), ({"seconds": 2, "nanos": 500_000_000}, 2.5)]
)
def test_rate_limited_reads_retry_info(delay: object, expected: float) -> None:
    details = [
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"quotaMetric": "x"}]},
        retry_info(delay),
    ]
    body = envelope(429, "RESOURCE_EXHAUSTED", "You exceeded your current quota. Please retry in 53.0s.", details)
    error = error_from_response(429, body, {}, now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after == expected
    assert error.as_dict()["retry_after"] == expected


@pytest.mark.parametrize("delay", ["soon", "-3s", "53", None, ["53s"], "infs"])
def test_unreadable_retry_delay_is_ignored(delay: object) -> None:
    body = envelope(429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota).", [retry_info(delay)])
    error = error_from_response(429, body, {}, now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"retry-after": "2.5"}, 2.5),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)}, 30.0),
        ({"Retry-After": format_datetime(datetime.fromtimestamp(NOW - 30, UTC), usegmt=True)}, 0.0),
        ({"Retry-After": "tomorrow"}, None),
        ({"Retry-After": "-1"}, None),
        ({}, None),
    ],
)
def test_rate_limited_reads_retry_after_header(headers: dict[str, str], expected: float | None) -> None:
    error = error_from_response(429, envelope(429, "RESOURCE_EXHAUSTED", "slow down"), headers, now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after == expected


@pytest.mark.parametrize(("delay", "header", "expected"), [("53s", "10", 53.0), ("1s", "10", 10.0)])
def test_rate_limited_takes_the_longer_hint(delay: str, header: str, expected: float) -> None:
    body = envelope(429, "RESOURCE_EXHAUSTED", "slow down", [retry_info(delay)])
    error = error_from_response(429, body, {"Retry-After": header}, now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after == expected


def test_rate_limited_without_body_still_reads_the_header() -> None:
    error = error_from_response(429, b"", {"Retry-After": "4"}, now=NOW)
    assert isinstance(error, RateLimited) and error.retry_after == 4.0
    assert error.status == "RESOURCE_EXHAUSTED"


HTML = b"<!DOCTYPE html><html><head><title>Error 502 (Server Error)!!1</title></head><body>secret-ish</body></html>"


@pytest.mark.parametrize(
    ("http_status", "body", "kind", "status"),
    [
        (502, HTML, TransientError, ""),
        (404, HTML, NotFound, "NOT_FOUND"),
        (503, b'{"error": {"code": 503, "message": "The service is cur', TransientError, "UNAVAILABLE"),
        (500, b"", TransientError, "INTERNAL"),
        (403, b"\xff\xfe\x00", PermanentError, "PERMISSION_DENIED"),
        (400, b'["not", "an", "envelope"]', PermanentError, "INVALID_ARGUMENT"),
        (409, b"", AlreadyExists, "ALREADY_EXISTS"),
    ],
)
def test_bodies_that_are_not_the_envelope(http_status: int, body: bytes, kind: type[ApiError], status: str) -> None:
    """HTML pages, truncated JSON and empty bodies: classified by HTTP status, body never quoted."""
    error = error_from_response(http_status, body, {}, now=NOW)
    assert type(error) is kind
    assert error.status == status
    assert not isinstance(error, MalformedResponse)  # a malformed *error* is still that error
    text = str(error)
    assert "html" not in text.lower() and "secret" not in text and "The service is cur" not in text
    assert str(http_status) in text


def test_fallback_message_names_status_and_body_size() -> None:
    assert error_from_response(502, HTML, {}, now=NOW).api_message == (
        f"Bad Gateway (502) with a {len(HTML)}-byte body that is not an API error"
    )
    assert error_from_response(500, b" ", {}, now=NOW).api_message == "Internal Server Error (500) with an empty body"
    assert error_from_response(599, b"", {}, now=NOW).api_message == "HTTP error (599) with an empty body"


def test_headers_never_reach_the_error() -> None:
    headers = {"x-goog-api-key": "AIzaSECRET", "Location": "https://x/?key=AIzaSECRET", "Retry-After": "1"}
    for http_status in (400, 401, 429, 503):
        error = error_from_response(http_status, envelope(http_status, "", "m"), headers, now=NOW)
        assert "AIzaSECRET" not in str(error) and "AIzaSECRET" not in repr(error.as_dict())


def test_long_messages_are_bounded() -> None:
    error = error_from_response(400, envelope(400, "INVALID_ARGUMENT", "x" * 10_000), {}, now=NOW)
    assert len(error.api_message) == MAX_MESSAGE_CHARS


def test_wrong_types_in_the_envelope_are_ignored() -> None:
    body = json.dumps({"error": {"code": "x", "message": 5, "status": ["A"], "details": "none"}}).encode()
    error = error_from_response(429, body, {}, now=NOW)
    assert isinstance(error, RateLimited)
    assert (error.status, error.retry_after) == ("RESOURCE_EXHAUSTED", None)
    assert error.api_message == "Too Many Requests (429) without a message"


def test_a_key_straddling_the_message_cut_is_scrubbed_before_the_cut() -> None:
    key = "AIzaSy-straddling-the-cut-0123456789"
    register_secret(key)
    message = "x" * (MAX_MESSAGE_CHARS - 10) + key + " and more"
    error = error_from_response(400, envelope(400, "INVALID_ARGUMENT", message), {})

    assert key[:10] not in error.api_message
    assert error.api_message.startswith("x" * (MAX_MESSAGE_CHARS - 10) + REDACTED[:10])
