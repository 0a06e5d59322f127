"""Daemons as rows: who runs, since when, and their last heartbeat (the ``daemons`` table).

Each daemon process writes its row at start, refreshes ``heartbeat_at`` every few seconds and stamps
``stopped_at`` on a clean stop. A row whose heartbeat is older than a few intervals and that never
stopped is a daemon that died: its leases run out and the others take its jobs over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: Seconds between two heartbeats of a daemon.
HEARTBEAT_SECONDS = 5.0
#: A daemon whose heartbeat is older than this many intervals (and that did not stop) is taken for dead.
MISSED_HEARTBEATS = 3


@dataclass(frozen=True, slots=True)
class DaemonInfo:
    """What a daemon says about itself when it starts."""

    id: str  #: also the owner of its leases (``jobs.lease_owner``)
    host: str
    pid: int
    spool: str


@dataclass(frozen=True, slots=True)
class DaemonRecord:
    """A ``daemons`` row, with how many jobs it holds a lease on now."""

    id: str
    host: str
    pid: int
    spool: str
    started_at: datetime
    heartbeat_at: datetime
    stopped_at: datetime | None
    jobs_held: int

    def heartbeat_age(self, now: datetime) -> float:
        """Seconds since its last heartbeat."""
        return max(0.0, (now - self.heartbeat_at).total_seconds())

    def status(self, now: datetime) -> str:
        """``running``, ``stopped`` (cleanly) or ``dead`` (no heartbeat for too long, never stopped)."""
        if self.stopped_at is not None:
            return "stopped"
        return "dead" if self.heartbeat_age(now) > MISSED_HEARTBEATS * HEARTBEAT_SECONDS else "running"

