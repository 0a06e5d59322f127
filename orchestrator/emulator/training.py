"""Simulated tuning: where a job is at a given simulated time, computed lazily and deterministically.

Nothing runs in the background.  A ``Run`` knows when it started, how long a step takes and how it will
end (success, failure at step k, stall, cancellation), so its state at any instant is arithmetic on the
clock.  That keeps 10,000 simulated jobs as cheap as 10,000 small objects, makes every test reproducible
for a seed, and lets a test advance an injected clock instead of sleeping.

The arithmetic is the one verified on the transcripts (gemini-api.md §5.2):
``totalSteps = ceil(N·epochs/batch)``, one snapshot per step, ``epoch = floor(step·batch/N)``,
``completedPercent = 100·completed/total``.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final

_MASK: Final = (1 << 64) - 1
_STEP_MIX: Final = 0x632BE59BD9B4E019
#: Step completion times wander by at most ±JITTER/2 of a step, so they stay strictly increasing.
JITTER: Final = 0.4


def total_steps(examples: int, epochs: int, batch_size: int) -> int:
    """``ceil(N·E/B)``: batches wrap around the dataset, no per-epoch padding (15/2/5 → 38)."""
    return math.ceil(examples * epochs / batch_size)


def epoch_of(step: int, batch_size: int, examples: int) -> int:
    """Epochs completed after ``step`` (``floor(step·B/N)``); may equal epochCount on the last step."""
    return step * batch_size // examples


def mix64(value: int) -> int:
    """splitmix64 finaliser: a fast, well-spread hash so per-step noise needs no stored state."""
    z = (value + 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    return z ^ (z >> 31)


def unit(seed: int, index: int) -> float:
    """A deterministic uniform number in [0, 1) for (seed, index)."""
    return mix64(seed ^ ((index * _STEP_MIX) & _MASK)) / 2.0**64


class Ending(enum.Enum):
    """How a run ends; ``None`` from ``Run.ending_at`` means it is still running."""

    SUCCEEDED = "succeeded"  #: all steps done; model ACTIVE, operation has ``response``
    FAILED = "failed"  #: failed at a step; model FAILED, operation error 13 (or the configured code)
    CANCELLED = "cancelled"  #: cancel took effect at a step boundary; operation error 1


@dataclass(frozen=True, slots=True)
class Progress:
    """What is true of a run at one instant."""

    completed_steps: int
    ending: Ending | None
    end_time: float | None  #: simulated time the run ended, when it has


class Run:
    """The simulated training of one tuned model.

    Times are simulated seconds on the emulator's clock.  ``step_time(k)`` is when step ``k`` finishes:
    evenly spaced with deterministic jitter, strictly increasing, so the count of finished steps at any
    time is found in O(1).
    """

    __slots__ = (
        "_end",
        "_floor",
        "_initial",
        "cancel_requested",
        "fail_at",
        "seed",
        "stall_at",
        "start",
        "step_seconds",
        "total",
    )

    def __init__(
        self,
        *,
        start: float,
        step_seconds: float,
        total: int,
        seed: int,
        fail_at: int | None = None,
        stall_at: int | None = None,
    ) -> None:
        self.start = start
        self.step_seconds = step_seconds
        self.total = total
        self.seed = seed & _MASK
        self.fail_at = fail_at if fail_at is not None and 1 <= fail_at <= total else None
        self.stall_at = stall_at if stall_at is not None and 0 <= stall_at < total else None
        self.cancel_requested: float | None = None
        self._initial = 4.0 + 12.0 * unit(self.seed, -1)
        self._floor = 0.05 * unit(self.seed, -2)
        self._end: tuple[float, Ending, int] | None = None
        self._plan_end()

    def step_time(self, step: int) -> float:
        """Simulated time at which ``step`` (1-based) finishes."""
        if step <= 0:
            return self.start
        wobble = ((mix64(self.seed ^ ((step * _STEP_MIX) & _MASK)) >> 32) / 2.0**32 - 0.5) * JITTER
        return self.start + (step + wobble) * self.step_seconds

    def snapshot(self, step: int) -> tuple[float, float]:
        """(finish time, mean loss) of ``step`` from one hash: the upper half jitters the time, the lower
        half the loss; this is the hot loop of snapshot encoding."""
        bits = mix64(self.seed ^ ((step * _STEP_MIX) & _MASK))
        wobble = ((bits >> 32) / 2.0**32 - 0.5) * JITTER
        noise = (bits & 0xFFFFFFFF) / 2.0**32 - 0.5
        trend = self._initial * math.exp(-4.0 * step / self.total) + self._floor
        return self.start + (step + wobble) * self.step_seconds, trend * (1.0 + 0.5 * noise)

    def raw_steps(self, now: float) -> int:
        """Steps finished by ``now`` if nothing stopped the run (clamped to ``[0, total]``)."""
        if now < self.start:
            return 0
        guess = int((now - self.start) // self.step_seconds) + 1
        for step in (guess, guess - 1):
            if step <= 0:
                return 0
            if step <= self.total and self.step_time(step) <= now:
                return step
            if step > self.total and self.step_time(self.total) <= now:
                return self.total
        return max(0, min(guess - 2, self.total))

    @property
    def limit(self) -> int:
        """The last step this run can reach (a stall caps it below ``total``)."""
        return self.stall_at if self.stall_at is not None else self.total

    def request_cancel(self, now: float) -> bool:
        """Ask the run to stop at the next step boundary; False when it has already ended (a no-op)."""
        if self.progress(now).ending is not None or self.cancel_requested is not None:
            return False
        self.cancel_requested = now
        self._plan_end()
        return True

    def _next_boundary(self, now: float) -> int:
        """The first step boundary after ``now``.

        While the run trains that is the step in progress; a stalled run keeps its step rhythm, so a
        cancel long after the stall still ends at a boundary after the request, never before it.
        """
        # Steps end within ±JITTER/2 of start + k·step_seconds, so from this guess the loop runs once or twice.
        boundary = max(self.raw_steps(now) + 1, int((now - self.start) // self.step_seconds))
        while self.step_time(boundary) <= now:
            boundary += 1
        return boundary

    def _plan_end(self) -> None:
        """Pick the earliest of the possible endings; recomputed only when a cancel arrives."""
        events: list[tuple[float, Ending, int]] = []
        if self.fail_at is not None and self.fail_at <= self.limit:
            events.append((self.step_time(self.fail_at), Ending.FAILED, self.fail_at - 1))
        elif self.limit == self.total:
            events.append((self.step_time(self.total), Ending.SUCCEEDED, self.total))
        if self.cancel_requested is not None:
            boundary = self._next_boundary(self.cancel_requested)
            last = self.limit if self.fail_at is None else min(self.limit, self.fail_at - 1)
            events.append((self.step_time(boundary), Ending.CANCELLED, min(boundary, last)))
        self._end = min(events, key=lambda event: event[0]) if events else None

    @property
    def planned_end(self) -> tuple[float, Ending] | None:
        """When and how the run will end as things stand (None: it never ends unless cancelled)."""
        return None if self._end is None else (self._end[0], self._end[1])

    def progress(self, now: float) -> Progress:
        """Completed steps and ending at ``now``."""
        end = self._end
        if end is not None and now >= end[0]:
            return Progress(end[2], end[1], end[0])
        return Progress(min(self.raw_steps(now), self.limit), None, None)

    def mean_loss(self, step: int) -> float:
        """A falling, noisy loss curve (deterministic for the seed), roughly like the transcripts'."""
        return self.snapshot(step)[1]
