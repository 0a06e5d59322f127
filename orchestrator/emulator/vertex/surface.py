"""How Vertex AI authenticates and words its errors.

OAuth bearer tokens only: an API key (``?key=`` or ``x-goog-api-key``) is refused with the 401 Google's
front end gives APIs that need a principal ([med]: "API keys are not supported by this API…",
``CREDENTIALS_MISSING``), and so is a request with no credential at all, even when tokens are not
enforced.  When tokens are configured, a token given as ``TOKEN=PROJECT`` may act only on that project
(by id or number); anything else is production's 403 ``IAM_PERMISSION_DENIED`` naming the permission.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from orchestrator.emulator.auth import DEFAULT_PROJECT, Authenticator, bearer_token, credentials_missing, token_expired
from orchestrator.emulator.errors import DEFAULT_MESSAGES, HTTP_TO_STATUS, ApiError, duration, error_info
from orchestrator.emulator.faults import FaultRule
from orchestrator.emulator.projects import project_number, same_project
from orchestrator.emulator.wire import dumps

SERVICE: Final = "aiplatform.googleapis.com"
_RPC: Final = "google.cloud.aiplatform.v1"
#: Route → (RPC method, IAM permission).
METHODS: Final = {
    "vertex_create": (f"{_RPC}.GenAiTuningService.CreateTuningJob", "aiplatform.tuningJobs.create"),
    "vertex_get": (f"{_RPC}.GenAiTuningService.GetTuningJob", "aiplatform.tuningJobs.get"),
    "vertex_list": (f"{_RPC}.GenAiTuningService.ListTuningJobs", "aiplatform.tuningJobs.list"),
    "vertex_cancel": (f"{_RPC}.GenAiTuningService.CancelTuningJob", "aiplatform.tuningJobs.cancel"),
    "vertex_context": (f"{_RPC}.MetadataService.GetContext", "aiplatform.contexts.get"),
    "vertex_runs": (f"{_RPC}.TensorboardService.ListTensorboardRuns", "aiplatform.tensorboardRuns.list"),
    "vertex_time_series": (
        f"{_RPC}.TensorboardService.ListTensorboardTimeSeries",
        "aiplatform.tensorboardTimeSeries.list",
    ),
    "vertex_read": (
        f"{_RPC}.TensorboardService.ReadTensorboardTimeSeriesData",
        "aiplatform.tensorboardTimeSeries.read",
    ),
}
API_KEYS_UNSUPPORTED: Final = (
    "API keys are not supported by this API. Expected OAuth2 access token or other authentication credentials "
    "that assert a principal. See https://cloud.google.com/docs/authentication"
)
MESSAGES: Final = {**DEFAULT_MESSAGES, "INTERNAL": "Internal error encountered."}


def api_keys_unsupported(method: str) -> ApiError:
    """401 for an API key on a method that needs a principal."""
    return ApiError(
        "UNAUTHENTICATED", API_KEYS_UNSUPPORTED, [error_info("CREDENTIALS_MISSING", service=SERVICE, method=method)]
    )


def permission_denied(permission: str, resource: str) -> ApiError:
    """403 ``IAM_PERMISSION_DENIED`` as Vertex AI words it."""
    return ApiError(
        "PERMISSION_DENIED",
        f"Permission '{permission}' denied on resource '//{SERVICE}/{resource}' (or it may not exist).",
        [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": SERVICE,
                "metadata": {"permission": permission, "resource": resource},
            }
        ],
    )


def quota_exceeded(project: str, retry_delay: float, message: str | None = None) -> ApiError:
    """429 RESOURCE_EXHAUSTED with ErrorInfo, QuotaFailure and RetryInfo ([low]: the exact words)."""
    consumer = f"projects/{project_number(project)}" if project else "projects/unknown"
    metric = f"{SERVICE}/tuning_requests"
    text = message or (
        f"Quota exceeded for quota metric '{metric}' and limit 'Tuning requests per minute per region' of service "
        f"'{SERVICE}' for consumer '{consumer}'."
    )
    details: list[dict[str, Any]] = [
        error_info("RATE_LIMIT_EXCEEDED", service=SERVICE, consumer=consumer, quota_metric=metric),
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [{"subject": consumer, "description": text}],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": duration(retry_delay)},
    ]
    return ApiError("RESOURCE_EXHAUSTED", text, details)


def resource_of(params: Mapping[str, str]) -> str:
    """The resource a request names, for error messages (``projects/p/locations/l[/tuningJobs/id]``)."""
    out = f"projects/{params.get('project', '')}/locations/{params.get('location', '')}"
    if "job" in params:
        out += f"/tuningJobs/{params['job']}"
    return out


class VertexSurface:
    """Vertex AI's auth rules and error words."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def principal(
        self, route: str, params: Mapping[str, str], query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        """The caller's principal; API keys and missing credentials are refused."""
        method, permission = METHODS[route]
        if query.get("key") or headers.get("x-goog-api-key"):
            raise api_keys_unsupported(method)
        token = bearer_token(query, headers)
        if not token:
            raise credentials_missing(method, SERVICE)
        principal = self.auth.token_principal(token, method, SERVICE)
        project = params.get("project", "")
        if self.auth.enforced and principal != DEFAULT_PROJECT and not same_project(principal, project):
            raise permission_denied(permission, resource_of(params))
        return principal

    def fault(self, rule: FaultRule, route: str, params: Mapping[str, str]) -> ApiError:
        """Injected faults in Vertex AI's words."""
        method = METHODS[route][0]
        if rule.kind == "rate_limit":
            return quota_exceeded(params.get("project", ""), rule.retry_delay_seconds, rule.message)
        if rule.kind == "token_expired":
            return token_expired(method, SERVICE)
        status = HTTP_TO_STATUS.get(rule.status, "UNKNOWN")
        error = ApiError(status, rule.message or MESSAGES.get(status))
        error.http_status = rule.status
        return error

    def render(self, error: ApiError) -> bytes:
        """Google's RPC error envelope (the same shape as the Gemini API's)."""
        return dumps(error.body())
