"""The training arithmetic of gemini-api.md §5.2 and the run's time behaviour."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.emulator.training import Ending, Run, epoch_of, total_steps


@pytest.mark.parametrize(
    ("examples", "batch", "epochs", "expected"),
    [(15, 2, 5, 38), (15, 4, 5, 19), (15, 2, 3, 23), (15, 4, 3, 12), (15, 4, 100, 375), (25, 16, 10, 16)],
)
def test_total_steps_match_transcripts(examples: int, batch: int, epochs: int, expected: int) -> None:
    """Every (N, B, E) → totalSteps pair seen in a transcript."""
    assert total_steps(examples, epochs, batch) == expected


def test_epochs_match_transcripts() -> None:
    """N=15, B=2: steps 1-7 epoch 0, 8-14 epoch 1, 15-22 epoch 2, 23 epoch 3; N=25, B=16: 3→1, 16→10."""
    epochs = [epoch_of(step, 2, 15) for step in range(1, 24)]

    assert epochs == [0] * 7 + [1] * 7 + [2] * 8 + [3]
    assert (epoch_of(3, 16, 25), epoch_of(16, 16, 25)) == (1, 10)


@given(
    total=st.integers(1, 500),
    step_seconds=st.floats(0.01, 10.0),
    seed=st.integers(0, 2**64 - 1),
    offset=st.floats(0.0, 6000.0),
)
def test_raw_steps_agree_with_step_times(total: int, step_seconds: float, seed: int, offset: float) -> None:
    """The O(1) step count equals a linear scan over the (strictly increasing) step times."""
    run = Run(start=5.0, step_seconds=step_seconds, total=total, seed=seed)
    now = 5.0 + offset * step_seconds / 10
    times = [run.step_time(step) for step in range(1, total + 1)]

    assert all(a < b for a, b in itertools.pairwise(times))
    assert run.raw_steps(now) == sum(1 for t in times if t <= now)


def test_run_succeeds_after_last_step() -> None:
    """Nothing changes until the last step's time; then the run has succeeded with every step done."""
    run = Run(start=0.0, step_seconds=1.0, total=10, seed=1)

    assert run.progress(run.step_time(10) - 1e-6) == run.progress(run.step_time(9))
    assert run.progress(run.step_time(10)).ending is Ending.SUCCEEDED
    assert run.progress(run.step_time(10)).completed_steps == 10


def test_cancel_takes_effect_at_next_step_boundary() -> None:
    """A cancel during step 4 ends the run when step 4 finishes; a late cancel is refused."""
    run = Run(start=0.0, step_seconds=1.0, total=10, seed=1)
    asked = run.step_time(3) + 0.1

    assert run.request_cancel(asked)
    assert run.progress(asked).ending is None
    end = run.progress(run.step_time(4))
    assert (end.ending, end.completed_steps) == (Ending.CANCELLED, 4)
    assert not run.request_cancel(run.step_time(5))


def test_fail_and_stall() -> None:
    """A failure ends the run before the failing step; a stall caps progress and never ends."""
    failing = Run(start=0.0, step_seconds=1.0, total=10, seed=2, fail_at=4)
    stalled = Run(start=0.0, step_seconds=1.0, total=10, seed=2, stall_at=3)

    assert failing.progress(failing.step_time(4)).ending is Ending.FAILED
    assert failing.progress(100.0).completed_steps == 3
    assert stalled.progress(1e9).completed_steps == 3
    assert stalled.progress(1e9).ending is None


def test_loss_is_deterministic_and_falls() -> None:
    """Same seed, same curve; the loss falls by a large factor over training."""
    a = Run(start=0.0, step_seconds=1.0, total=300, seed=7)
    b = Run(start=0.0, step_seconds=1.0, total=300, seed=7)
    losses = [a.mean_loss(step) for step in range(1, 301)]

    assert losses == [b.mean_loss(step) for step in range(1, 301)]
    assert sum(losses[:30]) > 5 * sum(losses[-30:])


def test_failure_messages_follow_the_code() -> None:
    """A failed operation's message is production's wording for its code."""
    from orchestrator.emulator.errors import message_for_code

    assert message_for_code(13).startswith("An internal error has occurred")
    assert message_for_code(8) == "Resource has been exhausted (e.g. check quota)."
    assert message_for_code(99) == "Unknown error."


def test_cancel_of_a_stalled_run_ends_after_the_request_whenever_it_comes() -> None:
    """A stalled run keeps its step rhythm: a cancel long after the stall ends at the next boundary after it."""
    from orchestrator.emulator.training import Ending, Run

    for when in (5.0, 1_000.0, 1e7):
        run = Run(start=0.0, step_seconds=2.0, total=10, seed=3, stall_at=4)
        assert run.request_cancel(when)
        planned = run.planned_end
        assert planned is not None
        end, ending = planned
        assert ending is Ending.CANCELLED and when < end <= when + 2.0 * 1.4
        assert run.progress(end).completed_steps == (3 if when == 5.0 else 4)  # the step under way completes
