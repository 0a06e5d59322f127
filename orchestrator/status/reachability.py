"""Whether the tuning service answers: the readiness side of an unreachable API.

Fed by every exchange's outcome (the API clients' ``on_response`` hook). An answer of any kind
(2xx, 4xx, 429) means the service is reachable; no response at all (refused, DNS, TLS, timeout, a
dropped connection) or a gateway's 502/503/504 means it is not. When nothing but such failures has
come back for ``max_unreachable`` seconds, ``/readyz`` says so. Liveness (``/healthz``) is not
affected: restarting the daemon cannot bring a network back, and it keeps retrying on its own.
"""

from __future__ import annotations

from collections.abc import Callable

#: HTTP statuses that come from a proxy or load balancer in front of an unreachable service.
NO_ANSWER_STATUSES = frozenset({502, 503, 504})


class ApiReachability:
    """Counts the time since the API last answered, once requests start failing."""

    def __init__(self, monotonic: Callable[[], float], max_unreachable: float) -> None:
        self._monotonic = monotonic
        self._max_unreachable = max_unreachable
        self._failing_since: float | None = None
        self._failures = 0

    def observe(self, _route: str, status: int | None) -> None:
        """One exchange ended with ``status`` (None: no response at all)."""
        if status is None or status in NO_ANSWER_STATUSES:
            if self._failing_since is None:
                self._failing_since, self._failures = self._monotonic(), 0
            self._failures += 1
        else:
            self._failing_since = None

    def unready_reason(self) -> str | None:
        """Why the daemon is not ready because of the API, or None while it answers (0 disables)."""
        if self._failing_since is None or not self._max_unreachable:
            return None
        silent = self._monotonic() - self._failing_since
        if silent < self._max_unreachable:
            return None
        return (f"API unreachable for {silent:.0f} s ({self._failures} requests without an answer; "
                "the log's api_request_failed lines name the host and the cause)")
