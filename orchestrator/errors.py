"""Every error the orchestrator raises on purpose.

Each class documents itself: the docstring is the default message, so a raise site needs no prose.
API errors carry the API's own status and message and never headers, URLs or request bodies, so
that no credential can reach an exception text (promise 7) by construction.
"""

from __future__ import annotations

from typing import Any


class OrchestratorError(Exception):
    """An orchestrator error."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip().splitlines()[0])


class ConfigError(OrchestratorError):
    """The configuration is invalid."""

    def __init__(self, source: str, key: str, problem: str) -> None:
        self.source = source
        self.key = key
        self.problem = problem
        super().__init__(f"{source}: {key}: {problem}" if key else f"{source}: {problem}")


class StatusPortUnavailable(OrchestratorError):
    """The status server cannot listen where ``[status] host`` and ``port`` say."""

    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(
            f"status.port: cannot listen on {host}:{port}: {reason} (another daemon or program there? set [status] "
            "port or ORCHESTRATOR_STATUS_PORT to a free port, or 0 for any free one)"
        )


class SpecError(OrchestratorError):
    """A job file is not a valid tuning job.

    ``field`` is the JSON path of the offending field in the snake_case spelling of the tutorial
    (``tuning_task.training_data.examples.examples[12].output``), empty when the whole file is at
    fault; ``problem`` states the rule or limit that was broken.
    """

    def __init__(self, file: str, field: str, problem: str) -> None:
        self.file = file
        self.field = field
        self.problem = problem
        where = f"{file}: {field}" if field else file
        super().__init__(f"{where}: {problem}")

    def as_dict(self) -> dict[str, str]:
        """The error as data, for ``NAME.error.json`` and the status database."""
        return {"file": self.file, "field": self.field, "problem": self.problem}


class StaleWrite(OrchestratorError):
    """A compare-and-set on a job row matched nothing: another actor moved the job first."""

    def __init__(self, job_id: str, expected: str, wanted: str) -> None:
        self.job_id = job_id
        self.expected = expected
        self.wanted = wanted
        super().__init__(f"job {job_id}: expected state {expected!r} to move to {wanted!r}, found another")


class ApiError(OrchestratorError):
    """The tuning API answered with an error.

    ``http_status`` is the HTTP status (None when no response arrived), ``status`` the Google RPC
    status name (``UNAVAILABLE``) and ``message`` the API's own words.
    """

    def __init__(self, message: str, *, http_status: int | None = None, status: str = "") -> None:
        self.http_status = http_status
        self.status = status
        self.api_message = message
        prefix = " ".join(str(p) for p in (http_status, status) if p)
        super().__init__(f"{prefix}: {message}" if prefix else message)

    def as_dict(self) -> dict[str, Any]:
        """The error as data for the status database and logs."""
        return {
            "kind": type(self).__name__,
            "http_status": self.http_status,
            "status": self.status,
            "message": self.api_message,
        }


class TransientError(ApiError):
    """A failure that may pass on its own: a timeout, a dropped connection, a 5xx, a 408."""


class NotDelivered(TransientError):
    """No connection was made (refused, DNS, TLS handshake, network unreachable): the request was never sent.

    The one transient failure after which the request certainly did not reach the service, so a
    create that failed this way cannot have landed.
    """


class MalformedResponse(TransientError):
    """The API answered 2xx with a body we cannot read: truncated JSON, HTML, wrong types."""


class RateLimited(TransientError):
    """429 RESOURCE_EXHAUSTED; ``retry_after`` is the server's delay in seconds, when it gave one."""

    def __init__(
        self, message: str, *, http_status: int | None = 429, status: str = "", retry_after: float | None = None
    ) -> None:
        super().__init__(message, http_status=http_status, status=status)
        self.retry_after = retry_after

    def as_dict(self) -> dict[str, Any]:
        """The error as data, with the server's delay."""
        return {**super().as_dict(), "retry_after": self.retry_after}


class PermanentError(ApiError):
    """A request the API will never accept as sent (400, 403, 501): repeating it cannot help."""


class Unauthenticated(ApiError):
    """401: the credential is missing, invalid or expired."""


class NotFound(ApiError):
    """404: the tuned model or operation does not exist (or not on this API version)."""


class AlreadyExists(ApiError):
    """409 ALREADY_EXISTS: a tuned model with this id exists; for our own id it means adopt it."""
