"""The most jobs ever active at once, from their intervals (so it is exact whoever polled when)."""

from __future__ import annotations

from collections.abc import Iterable


def peak_overlap(intervals: Iterable[tuple[float, float]]) -> int:
    """The largest number of ``[start, end)`` intervals covering one instant (``end`` may be ``inf``).

    An interval ending at the instant another starts does not overlap it: a slot freed and taken at
    the same moment is one job at a time.
    """
    events: list[tuple[float, int]] = []
    for start, end in intervals:
        events += [(start, 1), (end, -1)]
    level = peak = 0
    for _, delta in sorted(events):
        level += delta
        peak = max(peak, level)
    return peak
