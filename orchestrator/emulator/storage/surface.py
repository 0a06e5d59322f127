"""How Cloud Storage authenticates and writes errors (its JSON API envelope differs from Google's RPC one).

Requests may be anonymous while credentials are not enforced (the official clients send no token to
``STORAGE_EMULATOR_HOST``); with tokens configured a bearer token from the list (or from ``POST
/token``) is required, and the errors are production's: 401 ``required`` for an anonymous caller, 401
``authError`` "Invalid Credentials" for a bad or expired token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from orchestrator.emulator.auth import Authenticator, bearer_token
from orchestrator.emulator.errors import DEFAULT_MESSAGES, HTTP_TO_STATUS, ApiError
from orchestrator.emulator.faults import FaultRule
from orchestrator.emulator.storage.objects import StorageError
from orchestrator.emulator.wire import dumps

SERVICE: Final = "storage.googleapis.com"
ANONYMOUS: Final = "anonymous"
#: Route → the IAM permission it needs (used in the anonymous-caller message).
PERMISSIONS: Final = {
    "storage_upload": "storage.objects.create",
    "storage_upload_chunk": "storage.objects.create",
    "storage_get": "storage.objects.get",
    "storage_download": "storage.objects.get",
    "storage_list": "storage.objects.list",
    "storage_delete": "storage.objects.delete",
    "storage_bucket": "storage.buckets.get",
}
#: HTTP status → the JSON API's ``errors[].reason`` for errors that did not choose one.
REASONS: Final = {
    400: "invalid",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "conflict",
    412: "conditionNotMet",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}
RATE_LIMITED: Final = (
    "The rate of change requests to the object exceeds the rate limit. Please reduce the rate of create, "
    "update, and delete requests."
)


class StorageSurface:
    """The Cloud Storage JSON API's auth and error envelope."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def principal(
        self, route: str, params: Mapping[str, str], query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        """The caller: anonymous when credentials are not enforced and none is sent."""
        token = bearer_token(query, headers)
        if token:
            return self.auth.token_principal(token, route, SERVICE)
        if not self.auth.enforced:
            return ANONYMOUS
        permission = PERMISSIONS.get(route, "storage.objects.get")
        noun = "bucket" if permission.startswith("storage.buckets") else "object"
        raise StorageError(
            401,
            f"Anonymous caller does not have {permission} access to the Google Cloud Storage {noun}. "
            f"Permission '{permission}' denied on resource (or it may not exist).",
            "required",
            "Authorization",
        )

    def fault(self, rule: FaultRule, route: str, params: Mapping[str, str]) -> ApiError:
        """Injected faults, in Cloud Storage's words."""
        if rule.kind == "rate_limit":
            return StorageError(429, rule.message or RATE_LIMITED, "rateLimitExceeded")
        if rule.kind == "token_expired":
            return StorageError(401, "Invalid Credentials", "authError", "Authorization")
        status = HTTP_TO_STATUS.get(rule.status, "UNKNOWN")
        message = rule.message or DEFAULT_MESSAGES.get(status, "Backend Error")
        return StorageError(rule.status, message, REASONS.get(rule.status, "backendError"))

    def render(self, error: ApiError) -> bytes:
        """``{"error": {code, message, errors: [{message, domain, reason, locationType?, location?}]}}``."""
        message, reason, location = error.message, REASONS.get(error.http_status, "backendError"), None
        if isinstance(error, StorageError):
            reason, location = error.reason, error.location
        elif error.http_status == 401:
            message, location = "Invalid Credentials", "Authorization"
        item: dict[str, Any] = {"message": message, "domain": "global", "reason": reason}
        if location is not None:
            item["locationType"] = "header"
            item["location"] = location
        return dumps({"error": {"code": error.http_status, "message": message, "errors": [item]}})
