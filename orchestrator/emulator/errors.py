"""Google's error envelope (gemini-api.md §8.1) and the google.rpc.Code → HTTP table (§8.2).

Every failure the emulator produces, from validation to injected faults, is an ``ApiError`` rendered
by ``ApiError.body()``, so clients see one shape: ``{"error": {code, message, status, details?}}``.
"""

from __future__ import annotations

from typing import Any, Final

SERVICE: Final = "generativelanguage.googleapis.com"

#: google.rpc.Code name → (numeric code, HTTP status).
RPC_CODES: Final[dict[str, tuple[int, int]]] = {
    "OK": (0, 200),
    "CANCELLED": (1, 499),
    "UNKNOWN": (2, 500),
    "INVALID_ARGUMENT": (3, 400),
    "DEADLINE_EXCEEDED": (4, 504),
    "NOT_FOUND": (5, 404),
    "ALREADY_EXISTS": (6, 409),
    "PERMISSION_DENIED": (7, 403),
    "RESOURCE_EXHAUSTED": (8, 429),
    "FAILED_PRECONDITION": (9, 400),
    "ABORTED": (10, 409),
    "OUT_OF_RANGE": (11, 400),
    "UNIMPLEMENTED": (12, 501),
    "INTERNAL": (13, 500),
    "UNAVAILABLE": (14, 503),
    "DATA_LOSS": (15, 500),
    "UNAUTHENTICATED": (16, 401),
}

#: HTTP status → rpc status name, for faults given as a bare HTTP status.
HTTP_TO_STATUS: Final[dict[int, str]] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

#: Messages production uses for the bare server-side failures (§7.4).
DEFAULT_MESSAGES: Final[dict[str, str]] = {
    "INTERNAL": (
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting"
    ),
    "UNAVAILABLE": "The service is currently unavailable.",
    "DEADLINE_EXCEEDED": "The request timed out. Please try again.",
    "RESOURCE_EXHAUSTED": "Resource has been exhausted (e.g. check quota).",
    "INVALID_ARGUMENT": "Request contains an invalid argument.",
    "UNAUTHENTICATED": (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
        "other valid authentication credential. See "
        "https://developers.google.com/identity/sign-in/web/devconsole-project."
    ),
    "PERMISSION_DENIED": "The caller does not have permission",
    "NOT_FOUND": "Requested entity was not found.",
    "ABORTED": "The operation was aborted.",
    "UNIMPLEMENTED": "Operation is not implemented, or supported, or enabled.",
    "CANCELLED": "The operation was cancelled.",
    "UNKNOWN": "Unknown error.",
}


def message_for_code(code: int) -> str:
    """Production's usual message for a google.rpc code (used for failed operations)."""
    for name, (number, _) in RPC_CODES.items():
        if number == code:
            return DEFAULT_MESSAGES.get(name, name)
    return DEFAULT_MESSAGES["UNKNOWN"]


def error_info(reason: str, *, service: str = SERVICE, **metadata: str) -> dict[str, Any]:
    """A ``google.rpc.ErrorInfo`` detail in the domain production uses."""
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": "googleapis.com",
        "metadata": {"service": service, **metadata},
    }


class ApiError(Exception):
    """An error response: a google.rpc status name, a message and optional typed details."""

    def __init__(self, status: str, message: str | None = None, details: list[dict[str, Any]] | None = None):
        self.status = status
        self.code, self.http_status = RPC_CODES[status]
        self.message = message if message is not None else DEFAULT_MESSAGES.get(status, status)
        self.details = details or []
        super().__init__(self.message)

    def body(self) -> dict[str, Any]:
        """The ``{"error": {...}}`` envelope; ``code`` is the HTTP status, as Google writes it."""
        error: dict[str, Any] = {"code": self.http_status, "message": self.message, "status": self.status}
        if self.details:
            error["details"] = self.details
        return {"error": error}

    @classmethod
    def invalid(cls, message: str, field: str | None = None) -> ApiError:
        """400 INVALID_ARGUMENT, with a ``google.rpc.BadRequest`` naming the field when there is one."""
        details = []
        if field is not None:
            details.append(
                {
                    "@type": "type.googleapis.com/google.rpc.BadRequest",
                    "fieldViolations": [{"field": field, "description": message}],
                }
            )
        return cls("INVALID_ARGUMENT", message, details)

    @classmethod
    def invalid_json(cls, message: str, field: str | None = None) -> ApiError:
        """400 for a body the JSON front end cannot map onto the request message."""
        return cls.invalid(message, field if field is not None else "")

    @classmethod
    def model_not_found(cls, name: str) -> ApiError:
        """404 with the message observed in the transcripts."""
        return cls("NOT_FOUND", f"Tuned model {name} does not exist.")

    @classmethod
    def operation_not_found(cls, name: str) -> ApiError:
        """404 for an unknown operation (message text not captured from production)."""
        return cls("NOT_FOUND", f"Operation {name} does not exist.")


def duration(seconds: float) -> str:
    """protobuf Duration JSON: ``53s`` or ``2.500s``."""
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:.3f}s"


def resource_exhausted(
    *,
    retry_delay: float,
    quota_id: str = "GenerateRequestsPerMinutePerProjectPerModel",
    metric: str = "generativelanguage.googleapis.com/generate_requests_per_model",
    limit: int = 60,
    message: str | None = None,
) -> ApiError:
    """429 RESOURCE_EXHAUSTED with QuotaFailure, Help and RetryInfo details, as production sends them."""
    text = message or (
        "You exceeded your current quota, please check your plan and billing details. For more information on "
        f"this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. Please retry in {retry_delay:.1f}s."
    )
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": metric,
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global"},
                    "quotaValue": str(limit),
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": duration(retry_delay)},
    ]
    return ApiError("RESOURCE_EXHAUSTED", text, details)
