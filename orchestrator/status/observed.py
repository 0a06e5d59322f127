"""A store that reports what it commits: liveness and metrics without hooks in the scheduler.

``ObservedStore`` is the daemon's :class:`~orchestrator.store.SqlStore` with three methods wrapped:
each successful write stamps :attr:`last_write` (the second half of ``/healthz``), claims measure
how late each running job's poll is, and committed steps count the snapshots they recorded. The
scheduler and the intake receive it as a plain ``SqlStore`` and are none the wiser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from orchestrator.config import DatabaseSettings
from orchestrator.jobs import Job, JobState, Snapshot
from orchestrator.status.metrics import Metrics
from orchestrator.store import NewJob, SqlStore, migrate

_POLLED = frozenset({JobState.RUNNING, JobState.CANCELLING})


class ObservedStore(SqlStore):
    """``SqlStore`` plus a last-write stamp and metrics; ``monotonic`` is the daemon clock's."""

    def __init__(self, path: Path, busy_timeout: float, metrics: Metrics, monotonic: Callable[[], float]) -> None:
        super().__init__(path, busy_timeout)
        self._metrics = metrics
        self._monotonic = monotonic
        #: Monotonic time of the last committed write (the start-up time until the first one).
        self.last_write = monotonic()

    async def add_job(self, new: NewJob, now: datetime) -> Job:
        """See :meth:`SqlStore.add_job`."""
        job = await super().add_job(new, now)
        self.last_write = self._monotonic()
        return job

    async def claim_due(self, owner: str, now: datetime, lease: timedelta, limit: int, active_cap: int) -> list[Job]:
        """See :meth:`SqlStore.claim_due`; also observes each claimed poll's lateness."""
        claimed = await super().claim_due(owner, now, lease, limit, active_cap)
        self.last_write = self._monotonic()
        for job in claimed:
            if job.state in _POLLED and job.next_check_at is not None:
                self._metrics.poll_lateness.observe(max(0.0, (now - job.next_check_at).total_seconds()))
        return claimed

    async def commit_step(self, job: Job, owner: str, now: datetime, **kwargs: Any) -> Job:
        """See :meth:`SqlStore.commit_step`; also counts the snapshots it recorded."""
        committed = await super().commit_step(job, owner, now, **kwargs)
        self.last_write = self._monotonic()
        recorded: Sequence[Snapshot] = kwargs.get("snapshots_seen", ())
        if recorded:
            self._metrics.snapshots_recorded.inc(len(recorded))
        return committed


@asynccontextmanager
async def open_observed_store(
    settings: DatabaseSettings, metrics: Metrics, monotonic: Callable[[], float]
) -> AsyncIterator[ObservedStore]:
    """Like :func:`orchestrator.store.open_store` (migrations first), returning an observed store."""
    await asyncio.to_thread(migrate, settings.path)
    store = ObservedStore(settings.path, settings.busy_timeout, metrics, monotonic)
    try:
        yield store
    finally:
        await store.dispose()
