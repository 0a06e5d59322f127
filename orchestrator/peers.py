"""What a daemon shares with the other daemons on its database: that it is alive, and the API's 429 pause.

Several daemons on one PostgreSQL database share one Google project, so its limits are theirs
together (DESIGN.md, "Scale"): a 429 answered to one of them must hold back the others' calls too.
Each daemon's own throttle pauses all of *its* calls on a 429; once a second this loop publishes a
pause longer than the shared one (the ``api_pauses`` row of the API, only ever raised) and applies
a shared pause longer than its own, so the others stop calling within about a second. Every
``HEARTBEAT_SECONDS`` it also refreshes the daemon's ``daemons`` row, which is how people and
``/metrics`` tell a dead daemon from a live one. With one daemon (SQLite) the same loop runs and
costs a small transaction a second.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from orchestrator.clock import Clock
from orchestrator.store import JobStore
from orchestrator.store.daemons import HEARTBEAT_SECONDS, DaemonInfo

log = structlog.get_logger(__name__)

#: Seconds between two looks at the shared pause.
PAUSE_SYNC_SECONDS = 1.0
#: Pauses closer than this are the same pause (the throttle counts on the monotonic clock, the row in UTC).
SAME_PAUSE = timedelta(seconds=0.25)


class Pausable(Protocol):
    """The part of the API client's throttle this loop uses."""

    def pause(self, seconds: float) -> None:
        """Hold back every request not started yet for ``seconds`` (a longer pause stays)."""

    def pause_remaining(self) -> float:
        """Seconds until the current pause ends (0: none)."""


class PeerLink:
    """One daemon's side of the shared heartbeat and pause."""

    def __init__(self, store: JobStore, daemon: DaemonInfo, throttle: Pausable, api: str, clock: Clock) -> None:
        self._store = store
        self._daemon = daemon
        self._throttle = throttle
        self._api = api
        self._clock = clock
        #: The shared pause as last read (None: none yet).
        self._shared: datetime | None = None
        self._failing = False

    async def run(self, stop: asyncio.Event) -> None:
        """Heartbeat and pause sharing until ``stop``; then the clean-stop stamp."""
        last_heartbeat = float("-inf")
        while not stop.is_set():
            try:
                if self._clock.monotonic() - last_heartbeat >= HEARTBEAT_SECONDS:
                    await self._store.heartbeat(self._daemon, self._clock.now())
                    last_heartbeat = self._clock.monotonic()
                await self.sync_pause()
            except Exception as exc:  # a failing database must not end the daemon: try again next second
                if not self._failing:
                    log.warning("peer_sync_failed", error=f"{type(exc).__name__}: {exc}")
                self._failing = True
            else:
                if self._failing:
                    log.info("peer_sync_resumed")
                self._failing = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), PAUSE_SYNC_SECONDS)
        with contextlib.suppress(Exception):
            await self._store.daemon_stopped(self._daemon.id, self._clock.now())

    async def sync_pause(self) -> None:
        """Publish our pause when it outlasts the shared one; adopt the shared one when it outlasts ours."""
        now = self._clock.now()
        remaining = self._throttle.pause_remaining()
        ours = now + timedelta(seconds=remaining) if remaining > 0 else None
        publish = ours if ours is not None and (self._shared is None or ours > self._shared + SAME_PAUSE) else None
        self._shared = await self._store.share_pause(self._api, publish, self._daemon.id)
        if publish is not None:
            log.info("api_pause_shared", api=self._api, seconds=round(remaining, 3))
        elif self._shared is not None and self._shared > now and (ours is None or self._shared > ours + SAME_PAUSE):
            seconds = (self._shared - now).total_seconds()
            self._throttle.pause(seconds)
            log.info("api_pause_adopted", api=self._api, seconds=round(seconds, 3))
