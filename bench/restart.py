"""Scenario 4: SIGKILL a daemon that runs 10,000 jobs, restart it, and time until polling is back at full rate.

Method. The fleet of bench/fleet.py (N long-running jobs on an emulator in its own process, recorded as
running in the status database) is run by the instrumented daemon until it is in steady state (past its
first poll cycle). The steady poll rate is read from the emulator's own request counters
(``GET /_emulator/requests``, sampled every 0.1 s, so nothing in the daemon is involved) over ten
seconds. Then the daemon gets SIGKILL and a new one is started at once on the same database. Reported:
seconds from the kill to the new process's first poll, and to the instant from which it polls at
least 90% of the steady rate (judged on the polls of the half second that follows it; the daemon then
runs above the steady rate for a while, catching up with the polls that fell due while it was down),
plus how long that catch-up lasts.

Command (about 2.5 minutes)::

    /work/venv/bin/python -m bench.restart                # --jobs 10000
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.common import EmulatorProcess, emulator_process, table, write_result
from bench.fleet import POLL_MAX, DaemonChild, prepare_fleet

SAMPLE_SECONDS = 0.1
FULL_RATE_SHARE = 0.9
#: Full rate is judged on the polls of the half second that follows an instant.
FULL_RATE_WINDOW = 0.5


def polls_seen(emu: EmulatorProcess) -> int:
    """Operation reads the emulator has answered so far (any status)."""
    request = urllib.request.Request(emu.url + "/_emulator/requests")  # noqa: S310 (the loopback URL we started)
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        counts: dict[str, dict[str, int]] = json.loads(response.read())
    return sum(counts.get("get_operation", {}).values())


def sample(emu: EmulatorProcess, seconds: float) -> list[tuple[float, int]]:
    """(monotonic time, cumulative polls) every ``SAMPLE_SECONDS`` for ``seconds``."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append((time.monotonic(), polls_seen(emu)))
        time.sleep(SAMPLE_SECONDS)
    return out


def rate_from(samples: list[tuple[float, int]], start: float, window: float) -> list[tuple[float, float]]:
    """(seconds after ``start``, polls per second over the ``window`` seconds that follow), per sample."""
    out = []
    for i, (t, n) in enumerate(samples):
        j = i
        while j + 1 < len(samples) and samples[j + 1][0] - t <= window:
            j += 1
        if samples[j][0] - t >= window / 2:
            out.append((t - start, (samples[j][1] - n) / (samples[j][0] - t)))
    return out


def run(jobs: int, warmup: float, after: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-restart-") as tmp, emulator_process(time_scale=1.0) as emu:
        workdir = Path(tmp)
        fleet = prepare_fleet(jobs, emu, workdir, POLL_MAX)
        daemon = DaemonChild(fleet.config, workdir / "counters.json")
        try:
            time.sleep(warmup)
            steady_samples = sample(emu, 10.0)
            steady = (steady_samples[-1][1] - steady_samples[0][1]) / (steady_samples[-1][0] - steady_samples[0][0])
            daemon.stop(signal.SIGKILL)
            killed = time.monotonic()
            daemon = DaemonChild(fleet.config, workdir / "counters.json")
            samples = sample(emu, after)
        finally:
            daemon.stop()
    base = next(n for t, n in samples if t >= killed)
    first_poll = next((t - killed for t, n in samples if n > base), float("nan"))
    # The sample just before the first poll starts the first window that can hold polls.
    started = max((t - killed for t, n in samples if n <= base), default=0.0)
    rates = rate_from(samples, killed, FULL_RATE_WINDOW)
    at_full = next((t for t, r in rates if t >= started and r >= FULL_RATE_SHARE * steady), math.nan)
    full = at_full if math.isnan(at_full) else max(first_poll, at_full)  # never before the first poll
    above = [t for t, r in rate_from(samples, killed, 1.0) if r > 1.1 * steady]
    return {
        "jobs": jobs, "steady_polls_per_s": steady, "seconds_to_first_poll": first_poll,
        "seconds_to_full_rate": full, "catch_up_ends_s": max(above) if above else full,
        "peak_polls_per_s_after_restart": max((r for _, r in rate_from(samples, killed, 1.0)), default=0.0),
        "rate_after_restart": [(round(t, 2), round(r, 1)) for t, r in rates],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scenario 4: SIGKILL and restart with a running fleet")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--warmup", type=float, default=70.0)
    parser.add_argument("--after", type=float, default=40.0, help="seconds observed after the restart")
    args = parser.parse_args(argv)
    result = run(args.jobs, args.warmup, args.after)
    print()
    print(table(
        ["jobs", "steady polls/s", "kill -> first poll s", "kill -> full rate s", "catch-up ends s", "peak polls/s"],
        [[result["jobs"], result["steady_polls_per_s"], result["seconds_to_first_poll"],
          result["seconds_to_full_rate"], result["catch_up_ends_s"], result["peak_polls_per_s_after_restart"]]],
    ))
    path = write_result("restart", {"parameters": vars(args), "result": result})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
