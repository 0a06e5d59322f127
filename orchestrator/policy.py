"""Timing and outcome policy: pure functions of the facts, tested without a clock.

Back-off uses full jitter (a uniform draw up to the exponential bound) so that many jobs failing
together do not retry together, and never undercuts the server's own retry delay. Polling aims at
the operation's expected end, estimated from the observed step rate, instead of a fixed period:
the operation metadata only changes when steps complete, so earlier polls learn nothing.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from orchestrator.gemini import CANCELLED_CODE, OperationStatus


def backoff_delay(
    attempts: int, *, base: float, cap: float, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds to wait before try number ``attempts + 1`` of a step that failed ``attempts`` times.

    A uniform draw in ``[0, min(cap, base * 2**(attempts-1))]``; when the server named a delay, at
    least that delay plus up to ``base`` of jitter, so retries released by one 429 spread out.
    """
    bound = min(cap, base * 2.0 ** min(max(attempts - 1, 0), 62))
    delay = rng.uniform(0, bound)
    if retry_after is not None and retry_after > 0:
        delay = max(delay, retry_after + rng.uniform(0, base))
    return delay


def pause_delay(failures: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to pause every call after ``failures`` consecutive refusals of our credentials.

    "Equal jitter": half the exponential bound for sure, the other half drawn, so the pause grows
    with each refusal (a full-jitter draw could be near zero and turn a dead key into a hot loop)
    while pauses of many processes still spread out.
    """
    bound = min(cap, base * 2.0 ** min(max(failures - 1, 0), 62))
    return bound / 2 + rng.uniform(0, bound / 2)


def next_poll_delay(
    *,
    total_steps: int | None,
    completed_steps: int,
    running_seconds: float,
    min_interval: float,
    max_interval: float,
    rng: random.Random,
) -> float:
    """Seconds until the next poll of a running operation.

    With progress seen, the remaining steps times the observed seconds per step says when the job
    should end; we poll then (so one poll usually sees it done), but never sooner than
    ``min_interval`` nor later than ``max_interval``. Without progress yet, ``min_interval``.
    A ±10% jitter keeps thousands of jobs from polling in lockstep.
    """
    delay = min_interval
    if total_steps and completed_steps > 0 and running_seconds > 0:
        seconds_per_step = running_seconds / completed_steps
        delay = (total_steps - completed_steps) * seconds_per_step
    delay *= rng.uniform(0.9, 1.1)
    return min(max(delay, min_interval), max(max_interval, min_interval))


#: ``google.rpc.Code`` names, for recording an operation's numeric error code in words.
RPC_STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)


def rpc_status_name(code: int | None) -> str | None:
    """``13`` → ``INTERNAL``; None for no code or one outside the table."""
    return RPC_STATUS_NAMES[code] if code is not None and 0 <= code < len(RPC_STATUS_NAMES) else None


class Outcome(enum.Enum):
    """What one operation read means for the job."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome and, for failures, the API's own code and words."""

    outcome: Outcome
    code: int | None = None
    message: str | None = None


def judge_operation(operation: OperationStatus) -> Verdict:
    """Read an operation: ``done`` with ``error.code == 1`` is cancelled, other errors are failures,
    a response is success unless the model it names is FAILED."""
    if not operation.done:
        return Verdict(Outcome.RUNNING)
    if operation.error is not None:
        if operation.error.code == CANCELLED_CODE:
            return Verdict(Outcome.CANCELLED, operation.error.code, operation.error.message)
        return Verdict(Outcome.FAILED, operation.error.code, operation.error.message)
    if operation.model is not None and operation.model.state == "FAILED":
        return Verdict(Outcome.FAILED, None, "the operation finished but the tuned model is FAILED")
    return Verdict(Outcome.SUCCEEDED)


def judge_model_state(state: str) -> Verdict:
    """Read a tuned model's state when its operation cannot be found (the last fallback)."""
    if state == "ACTIVE":
        return Verdict(Outcome.SUCCEEDED)
    if state == "FAILED":
        return Verdict(Outcome.FAILED, None, "the tuned model is FAILED (its operation could not be read)")
    return Verdict(Outcome.RUNNING)
