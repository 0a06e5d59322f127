"""Properties of ``next_poll_delay``: bounds, caps, jitter range, and aiming at the expected end."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.policy import CADENCE_JITTER, END_MARGIN_STEPS, next_poll_delay

intervals = st.tuples(
    st.floats(min_value=0.01, max_value=600, allow_nan=False),
    st.floats(min_value=0.01, max_value=3600, allow_nan=False),
)
steps = st.integers(min_value=0, max_value=100_000)
seconds = st.floats(min_value=0, max_value=1e7, allow_nan=False)
seeds = st.integers(min_value=0, max_value=2**32)


@given(intervals, st.one_of(st.none(), steps), steps, seconds, seeds)
def test_the_delay_stays_within_the_bounds(bounds: tuple[float, float], total: int | None, done: int,
                                           running: float, seed: int) -> None:
    """Whatever the progress, the next poll is no sooner than min_interval and no later than the cap
    (the larger of the two bounds, when they are given the wrong way round)."""
    low, high = bounds
    delay = next_poll_delay(total_steps=total, completed_steps=done, running_seconds=running, min_interval=low,
                            max_interval=high, rng=random.Random(seed))
    assert math.isfinite(delay)
    assert low <= delay <= max(low, high)


@given(st.floats(min_value=1, max_value=60), st.floats(min_value=60, max_value=600), seeds)
def test_without_progress_polls_back_off_from_the_minimum_with_bounded_jitter(low: float, high: float,
                                                                               seed: int) -> None:
    """No step seen yet: half the time waited so far, within ±CADENCE_JITTER, inside the bounds."""
    for running in (0.0, low, 4 * low, 10 * high):
        delay = next_poll_delay(total_steps=100, completed_steps=0, running_seconds=running, min_interval=low,
                                max_interval=high, rng=random.Random(seed))
        base = max(low, min(high, running / 2))
        assert max(low, base * (1 - CADENCE_JITTER)) - 1e-9 <= delay <= min(high, base * (1 + CADENCE_JITTER)) + 1e-9


@given(st.integers(min_value=1_000, max_value=100_000), seeds)
def test_a_far_end_is_polled_at_the_cap_jittered_down(total: int, seed: int) -> None:
    """Far from the end, polls come every max_interval, jittered down by at most CADENCE_JITTER."""
    delay = next_poll_delay(total_steps=total, completed_steps=10, running_seconds=20.0, min_interval=10,
                            max_interval=60, rng=random.Random(seed))
    assert 60 * (1 - CADENCE_JITTER) <= delay <= 60


@given(st.integers(min_value=100, max_value=10_000), st.integers(min_value=1, max_value=20),
       st.floats(min_value=0.5, max_value=5), seeds)
def test_a_near_end_is_polled_just_after_it(done: int, left: int, seconds_per_step: float, seed: int) -> None:
    """Within reach and well measured, the poll lands END_MARGIN_STEPS of a step after the expected end
    (the step under way counted as half done)."""
    running = (done + 0.5) * seconds_per_step
    delay = next_poll_delay(total_steps=done + left, completed_steps=done, running_seconds=running,
                            min_interval=0.1, max_interval=1e6, rng=random.Random(seed))
    expected_end = (left - 0.5) * seconds_per_step
    low, high = END_MARGIN_STEPS
    assert expected_end + low * seconds_per_step - 1e-6 <= delay <= expected_end + high * seconds_per_step + 1e-6


@given(st.integers(min_value=2, max_value=5), seeds)
def test_a_rough_estimate_gets_one_more_look_before_the_end(done: int, seed: int) -> None:
    """Few steps seen, end far enough off: the next poll is at least min_interval before the expected end,
    so the final one can still land just after it."""
    seconds_per_step, total, low = 2.0, 40, 10.0
    running = (done + 0.5) * seconds_per_step
    delay = next_poll_delay(total_steps=total, completed_steps=done, running_seconds=running, min_interval=low,
                            max_interval=1000, rng=random.Random(seed))
    assert low <= delay <= (total - done - 0.5) * seconds_per_step - low


def test_jitter_spreads_jobs_that_are_alike() -> None:
    """Identical jobs get different delays: a fleet does not poll in lockstep."""
    rng = random.Random(7)
    delays = {next_poll_delay(total_steps=10_000, completed_steps=100, running_seconds=200.0, min_interval=10,
                              max_interval=60, rng=rng) for _ in range(50)}
    assert len(delays) == 50
