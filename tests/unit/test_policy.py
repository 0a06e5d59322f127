"""Timing and outcome policy, as properties: bounds, caps, jitter ranges and the server's delay, no clock."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.gemini import OperationError, OperationStatus, TunedModelStatus
from orchestrator.gemini.service import judge_model_state, judge_operation
from orchestrator.policy import backoff_delay, next_poll_delay, pause_delay, rpc_status_name
from orchestrator.tuning import Outcome

ATTEMPTS = st.integers(min_value=0, max_value=10_000)
SECONDS = st.floats(min_value=0.001, max_value=3600, allow_nan=False)
SEEDS = st.integers(min_value=0, max_value=2**32)


@given(attempts=ATTEMPTS, base=SECONDS, cap=SECONDS, seed=SEEDS)
def test_backoff_is_a_full_jitter_draw_under_the_capped_exponential(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    bound = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 62))
    delay = backoff_delay(attempts, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= delay <= bound <= cap


@given(attempts=ATTEMPTS, base=SECONDS, cap=SECONDS, retry_after=SECONDS, seed=SEEDS)
def test_backoff_never_undercuts_the_server_delay(
    attempts: int, base: float, cap: float, retry_after: float, seed: int
) -> None:
    delay = backoff_delay(attempts, base=base, cap=cap, rng=random.Random(seed), retry_after=retry_after)
    assert retry_after <= delay <= max(cap, retry_after + base)


@given(attempts=st.integers(1, 20))
def test_backoff_jitter_spreads_over_the_whole_range(attempts: int) -> None:
    rng = random.Random(attempts)
    bound = min(60.0, 2.0 ** (attempts - 1))
    draws = [backoff_delay(attempts, base=1.0, cap=60.0, rng=rng) for _ in range(400)]
    assert min(draws) < 0.1 * bound and max(draws) > 0.9 * bound


def test_backoff_grows_until_the_cap() -> None:
    bounds = [max(backoff_delay(n, base=1.0, cap=60.0, rng=random.Random(s)) for s in range(300)) for n in (1, 3, 5)]
    assert bounds[0] <= 1.0 < bounds[1] <= 4.0 < bounds[2] <= 16.0


@given(failures=st.integers(0, 10_000), base=SECONDS, cap=SECONDS, seed=SEEDS)
def test_the_credentials_pause_grows_and_is_never_near_zero(failures: int, base: float, cap: float, seed: int) -> None:
    bound = min(cap, base * 2.0 ** min(max(failures - 1, 0), 62))
    assert bound / 2 <= pause_delay(failures, base=base, cap=cap, rng=random.Random(seed)) <= bound


@given(
    total=st.one_of(st.none(), st.integers(0, 100_000)),
    done=st.integers(0, 100_000),
    running=st.floats(min_value=0, max_value=1e7, allow_nan=False),
    low=st.floats(min_value=0.01, max_value=600, allow_nan=False),
    high=st.floats(min_value=0.01, max_value=3600, allow_nan=False),
    seed=SEEDS,
)
def test_polls_are_always_within_the_configured_bounds(
    total: int | None, done: int, running: float, low: float, high: float, seed: int
) -> None:
    delay = next_poll_delay(total_steps=total, completed_steps=done, running_seconds=running, min_interval=low,
                            max_interval=high, rng=random.Random(seed))
    assert low <= delay <= max(low, high)


def test_a_job_about_to_end_is_polled_near_its_end_not_at_the_cap() -> None:
    """38 steps, 36 done in 72 s: the end is ~4 s away, well under the 60 s cap."""
    delays = [next_poll_delay(total_steps=38, completed_steps=36, running_seconds=72.0, min_interval=1.0,
                              max_interval=60.0, rng=random.Random(s)) for s in range(50)]
    assert all(2.0 <= d <= 8.0 for d in delays)


def operation(**fields: object) -> OperationStatus:
    values: dict[str, object] = {"name": "tunedModels/m/operations/o", "tuned_model": "tunedModels/m",
                                 "total_steps": 10, "completed_steps": 10, "completed_percent": 100.0,
                                 "snapshots": (), "done": True}
    return OperationStatus(**{**values, **fields})  # type: ignore[arg-type]


def test_operation_outcomes_follow_the_api() -> None:
    assert judge_operation(operation(done=False)).outcome is Outcome.RUNNING
    assert judge_operation(operation(model=TunedModelStatus("tunedModels/m", "ACTIVE"))).outcome is Outcome.SUCCEEDED
    cancelled = judge_operation(operation(error=OperationError(1, "Operation cancelled.")))
    assert (cancelled.outcome, cancelled.code, cancelled.message) == (Outcome.CANCELLED, 1, "Operation cancelled.")
    failed = judge_operation(operation(error=OperationError(13, "internal")))
    assert (failed.outcome, failed.code, rpc_status_name(failed.code)) == (Outcome.FAILED, 13, "INTERNAL")
    assert judge_operation(operation(model=TunedModelStatus("tunedModels/m", "FAILED"))).outcome is Outcome.FAILED
    assert [judge_model_state(s).outcome for s in ("CREATING", "ACTIVE", "FAILED", "NEW_STATE")] == [
        Outcome.RUNNING, Outcome.SUCCEEDED, Outcome.FAILED, Outcome.RUNNING,
    ]
    assert rpc_status_name(None) is None and rpc_status_name(99) is None
