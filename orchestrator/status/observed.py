"""What the store reports, turned into liveness and metrics: no hooks in the scheduler, no store subclass.

:class:`StoreMetrics` is the :class:`~orchestrator.store.StoreObserver` the daemon hands its store:
each commit stamps :attr:`StoreMetrics.last_write` (the second half of ``/healthz``), each claim
measures how late each running job's poll is, and committed steps count the snapshots they recorded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from orchestrator.jobs import Job, JobState
from orchestrator.status.metrics import Metrics

_POLLED = frozenset({JobState.RUNNING, JobState.CANCELLING})


class StoreMetrics:
    """A store observer feeding :class:`Metrics`; ``monotonic`` is the daemon clock's."""

    def __init__(self, metrics: Metrics, monotonic: Callable[[], float]) -> None:
        self._metrics = metrics
        self._monotonic = monotonic
        #: Monotonic time of the last committed write (the start-up time until the first one).
        self.last_write = monotonic()

    def committed(self) -> None:
        self.last_write = self._monotonic()

    def claimed(self, now: datetime, jobs: Sequence[Job]) -> None:
        for job in jobs:
            if job.state in _POLLED and job.next_check_at is not None:
                self._metrics.poll_lateness.observe(max(0.0, (now - job.next_check_at).total_seconds()))

    def snapshots_recorded(self, count: int) -> None:
        self._metrics.snapshots_recorded.inc(count)
