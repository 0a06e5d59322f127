"""Timing and outcome policy: pure functions of the facts, tested without a clock.

Back-off uses full jitter (a uniform draw up to the exponential bound) so that many jobs failing
together do not retry together, and never undercuts the server's own retry delay. Polling aims at
the operation's expected end, estimated from the observed step rate, instead of a fixed period:
the operation metadata only changes when steps complete, so earlier polls learn nothing.
"""

from __future__ import annotations

import random


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


#: The final poll lands this many steps (a uniform draw) after the expected end: late enough that
#: one poll usually finds the operation done, early enough to beat a 5-second loop on latency.
END_MARGIN_STEPS = (0.5, 1.0)
#: Jitter of the polls that are not aimed at an end (no progress yet, or the end is far off).
CADENCE_JITTER = 0.1


def next_poll_delay(
    *,
    total_steps: int | None,
    completed_steps: int,
    running_seconds: float,
    min_interval: float,
    max_interval: float,
    rng: random.Random,
) -> float:
    """Seconds until the next poll of a running operation, always within ``[min_interval, max_interval]``.

    The operation only changes when a step completes, so the poll that matters is the one just after
    the last step. With progress seen, the observed seconds per step (counting the step under way as
    half done) put the end ``remaining x seconds per step`` away:

    - an end within ``max_interval`` is polled just after it, ``END_MARGIN_STEPS`` of a step late;
    - an end a little further off, or one estimated from too few steps to hit, gets one more look
      ``min_interval`` before it, so that the final poll is on time and not pushed past the end by
      ``min_interval``;
    - a far end is polled every ``max_interval`` (jittered down by up to ``CADENCE_JITTER``), which
      keeps progress and the loss curve fresh and notices stalls.

    Before any progress, polls back off from ``min_interval`` to ``max_interval`` as the wait grows
    (half the time waited so far), jittered by ±``CADENCE_JITTER`` so that jobs created together
    spread out.
    """
    low = min_interval
    high = max(max_interval, min_interval)
    if not total_steps or completed_steps <= 0 or running_seconds <= 0:
        delay = max(low, min(high, running_seconds / 2)) * rng.uniform(1 - CADENCE_JITTER, 1 + CADENCE_JITTER)
        return min(max(delay, low), high)
    # The step under way is taken to be half done: the expected count at a random instant.
    seconds_per_step = running_seconds / (completed_steps + 0.5)
    remaining = max(0.0, total_steps - completed_steps - 0.5) * seconds_per_step
    # How far off that end can be, not knowing where in its step the job really is.
    uncertainty = 0.5 * seconds_per_step * remaining / running_seconds
    target = remaining + rng.uniform(*END_MARGIN_STEPS) * seconds_per_step
    refine = remaining - low - uncertainty
    if target > high + low:
        delay = high * rng.uniform(1 - CADENCE_JITTER, 1)
    elif uncertainty > END_MARGIN_STEPS[0] * seconds_per_step and low <= refine <= high:
        delay = refine  # too rough to aim at: one more look, far enough before the end for a final poll
    elif target > high:
        delay = target - low  # so that the next poll, ``low`` later, is the final one
    else:
        delay = target
    return min(max(delay, low), high)


#: google.rpc codes of a failed tuning that another attempt may well not meet: INTERNAL (13, the
#: tuning service's own failure), UNAVAILABLE (14) and RESOURCE_EXHAUSTED (8, out of capacity).
#: ``[scheduler] auto_retry`` retries these; anything else (a bad request, a permission) would fail again.
RETRYABLE_FAILURE_CODES: frozenset[int] = frozenset({8, 13, 14})


def should_auto_retry(code: int | None, attempt: int, limit: int) -> bool:
    """Whether a job that failed with ``code`` gets another attempt: a retryable code, and ``attempt``
    (0 for the first try, 1 for the first retry, …) under ``limit`` (``[scheduler] auto_retry``)."""
    return code in RETRYABLE_FAILURE_CODES and attempt < limit


#: ``google.rpc.Code`` names, for recording an operation's numeric error code in words.
RPC_STATUS_NAMES = (
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND", "ALREADY_EXISTS",
    "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
)


def rpc_status_name(code: int | None) -> str | None:
    """``13`` → ``INTERNAL``; None for no code or one outside the table."""
    return RPC_STATUS_NAMES[code] if code is not None and 0 <= code < len(RPC_STATUS_NAMES) else None
