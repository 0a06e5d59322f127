"""One gate every API request passes: in-flight cap, request rate, and a global pause after a 429.

Quotas are per project, not per job (gemini-api.md §8.3), so the limits are shared by every call the
process makes: a 429 seen by one job pauses them all (DESIGN.md: "a 429 slows everyone down"). Time is
injected, a monotonic clock and an async sleep, so tests drive it with a manual clock, no real waits.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from orchestrator.config import ApiSettings

__all__ = ["Throttle"]

Sleep = Callable[[float], Awaitable[None]]


class Throttle:
    """Admission control for API requests.

    ``max_in_flight`` caps concurrent requests (0: no cap). ``requests_per_second`` paces request
    starts with a token bucket holding up to ``burst`` tokens (default: one second's worth, at least 1;
    0 rate: no pacing). :meth:`pause` holds back every request not yet started until the pause ends.
    """

    def __init__(
        self,
        max_in_flight: int,
        requests_per_second: float,
        *,
        burst: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._slots = asyncio.Semaphore(max_in_flight) if max_in_flight > 0 else None
        self._interval = 1.0 / requests_per_second if requests_per_second > 0 else 0.0
        # The bucket as a "theoretical arrival time" (GCRA): one number, no refill task, and fair,
        # since each caller reserves its start time at once instead of racing for tokens later.
        self._tolerance = (max(1.0, burst if burst is not None else requests_per_second) - 1) * self._interval
        self._next_start = float("-inf")
        self._paused_until = float("-inf")
        self._clock = clock
        self._sleep = sleep

    @classmethod
    def from_settings(cls, settings: ApiSettings) -> Throttle:
        """The process-wide throttle for ``[api]`` settings, on the real clock."""
        return cls(settings.max_in_flight, settings.requests_per_second)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one in-flight slot for the body of the ``async with``, once pause and rate allow."""
        if self._slots is None:
            await self._admit()
            yield
            return
        async with self._slots:
            await self._admit()
            yield

    def pause(self, seconds: float) -> None:
        """Hold back every request that has not started for ``seconds`` (an existing longer pause stays)."""
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))

    def pause_remaining(self) -> float:
        """Seconds until the current pause ends, 0 when there is none (for logs and health reports)."""
        return max(0.0, self._paused_until - self._clock())

    async def _admit(self) -> None:
        await self._wait_out_pause()
        if self._interval:
            now = self._clock()
            start = max(now, self._next_start - self._tolerance)
            self._next_start = max(now, self._next_start) + self._interval
            if start > now:
                await self._sleep(start - now)
                # A 429 may have arrived while this caller waited for its turn.
                await self._wait_out_pause()

    async def _wait_out_pause(self) -> None:
        while (remaining := self._paused_until - self._clock()) > 0:
            await self._sleep(remaining)
