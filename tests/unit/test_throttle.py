"""gemini.throttle on a manual clock: no test here waits in real time."""

from __future__ import annotations

import asyncio
import heapq
import itertools

import pytest

from orchestrator.config import ApiSettings
from orchestrator.gemini.throttle import Throttle


class ManualClock:
    """A monotonic clock that moves only when the test says so; sleepers wake when their time comes."""

    def __init__(self) -> None:
        self.now = 100.0
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), future))
        await future

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking each sleeper that is due and letting it run."""
        self.now += seconds
        while self._sleepers and self._sleepers[0][0] <= self.now:
            heapq.heappop(self._sleepers)[2].set_result(None)
        await settle()


async def settle() -> None:
    """Let every ready task run until it blocks again."""
    for _ in range(20):
        await asyncio.sleep(0)


def throttle(clock: ManualClock, max_in_flight: int = 0, rps: float = 0.0, burst: float | None = None) -> Throttle:
    return Throttle(max_in_flight, rps, burst=burst, clock=clock, sleep=clock.sleep)


async def start(gate: Throttle, started: list[int], index: int, release: asyncio.Event | None = None) -> None:
    async with gate.slot():
        started.append(index)
        if release is not None:
            await release.wait()


async def test_pause_delays_every_caller_until_it_ends() -> None:
    """A 429 seen by one job holds back all the others (DESIGN.md: a 429 slows everyone down)."""
    clock = ManualClock()
    gate = throttle(clock)
    gate.pause(5)
    started: list[int] = []
    tasks = [asyncio.create_task(start(gate, started, i)) for i in range(3)]
    await settle()
    assert started == [] and gate.pause_remaining() == 5
    await clock.advance(4.9)
    assert started == []
    await clock.advance(0.1)
    assert sorted(started) == [0, 1, 2] and gate.pause_remaining() == 0
    await asyncio.gather(*tasks)


async def test_a_longer_pause_during_the_wait_extends_it_and_a_shorter_one_does_not() -> None:
    clock = ManualClock()
    gate = throttle(clock)
    gate.pause(2)
    started: list[int] = []
    task = asyncio.create_task(start(gate, started, 0))
    await clock.advance(1)
    gate.pause(3)  # until t+4
    gate.pause(1)  # shorter: ignored
    await clock.advance(1.5)
    assert started == []
    await clock.advance(1.5)
    assert started == [0]
    await task


async def test_no_pause_no_limits_means_no_wait() -> None:
    clock = ManualClock()
    gate = throttle(clock)
    gate.pause(-3)
    async with gate.slot():
        pass
    assert clock.now == 100.0


async def test_in_flight_cap() -> None:
    clock = ManualClock()
    gate = throttle(clock, max_in_flight=2)
    release = asyncio.Event()
    started: list[int] = []
    tasks = [asyncio.create_task(start(gate, started, i, release)) for i in range(5)]
    await settle()
    assert started == [0, 1]
    release.set()
    await asyncio.gather(*tasks)
    assert started == [0, 1, 2, 3, 4]


async def test_rate_paces_request_starts_after_the_burst() -> None:
    """At 2 requests/s with a burst of 2, the first two go at once, then one every 0.5 s."""
    clock = ManualClock()
    gate = throttle(clock, rps=2, burst=2)
    started: list[int] = []
    tasks = [asyncio.create_task(start(gate, started, i)) for i in range(5)]
    await settle()
    assert started == [0, 1]
    await clock.advance(0.5)
    assert started == [0, 1, 2]
    await clock.advance(0.5)
    assert started == [0, 1, 2, 3]
    await clock.advance(0.5)
    assert started == [0, 1, 2, 3, 4]
    await asyncio.gather(*tasks)


async def test_rate_bucket_refills_while_idle() -> None:
    clock = ManualClock()
    gate = throttle(clock, rps=10, burst=3)
    for _ in range(3):
        async with gate.slot():
            pass
    await clock.advance(10)
    started: list[int] = []
    tasks = [asyncio.create_task(start(gate, started, i)) for i in range(4)]
    await settle()
    assert started == [0, 1, 2]
    await clock.advance(0.1)
    assert started == [0, 1, 2, 3]
    await asyncio.gather(*tasks)


async def test_a_pause_that_starts_while_waiting_for_the_rate_is_honoured() -> None:
    clock = ManualClock()
    gate = throttle(clock, rps=1, burst=1)
    started: list[int] = []
    first = asyncio.create_task(start(gate, started, 0))
    second = asyncio.create_task(start(gate, started, 1))
    await settle()
    assert started == [0]
    gate.pause(10)
    await clock.advance(1)
    assert started == [0]
    await clock.advance(9)
    assert started == [0, 1]
    await asyncio.gather(first, second)


@pytest.mark.parametrize(("max_in_flight", "rps"), [(16, 50.0), (0, 0.0)])
def test_from_settings(max_in_flight: int, rps: float) -> None:
    gate = Throttle.from_settings(ApiSettings(max_in_flight=max_in_flight, requests_per_second=rps))
    assert gate.pause_remaining() == 0
