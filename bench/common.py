"""Shared pieces of the benchmarks: the emulator in its own process, process accounting, job files, tables.

The emulator always runs in a process of its own (``python -m bench.common serve-emulator``), so the CPU
and memory figures of whatever is measured never include the server's. Its timestamps (``completeTime``,
``updateTime``) are real wall-clock times whatever the time scale, so they say when an operation really
finished.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# -- the emulator in its own process ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmulatorProcess:
    """A running emulator subprocess: where it listens and how to read its simulated clock."""

    url: str
    pid: int
    wall_start: float
    time_scale: float
    process: subprocess.Popen[bytes]

    def real_time(self, rfc3339: str) -> float:
        """The Unix time an API timestamp stands for (the emulator stamps real wall-clock times)."""
        return parse_rfc3339(rfc3339)


@contextmanager
def emulator_process(
    time_scale: float, step_seconds: float = 2.0, seed: int = 0, **knobs: Any
) -> Iterator[EmulatorProcess]:
    """Start ``serve-emulator`` in a subprocess and stop it (SIGTERM) when the block ends."""
    config = {"time_scale": time_scale, "step_seconds": step_seconds, "seed": seed, **knobs}
    process = subprocess.Popen(
        [PYTHON, "-m", "bench.common", "serve-emulator", json.dumps(config)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=None,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        raise RuntimeError("the emulator process exited before it was ready")
    ready = json.loads(line)
    try:
        yield EmulatorProcess(ready["url"], process.pid, ready["wall_start"], time_scale, process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _serve_emulator(config: dict[str, Any]) -> None:
    """Child side: serve the emulator on a free loopback port; print ``{url, wall_start}`` once ready."""
    from aiohttp import web

    from orchestrator.emulator import EmulatorSettings, create_app

    async def serve() -> None:
        wall_start = time.time()
        app = create_app(EmulatorSettings(**config), wall_start=wall_start)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = runner.addresses[0][1]
        print(json.dumps({"url": f"http://127.0.0.1:{port}", "wall_start": wall_start}), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(serve())


def parse_rfc3339(text: str) -> float:
    """``2026-11-21T09:30:00.123456789Z`` → Unix time (nanoseconds truncated to microseconds)."""
    head, _, fraction = text.rstrip("Z").partition(".")
    base = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
    return base + (float(f"0.{fraction}") if fraction else 0.0)


def parse_db_time(text: str) -> float:
    """A status-database timestamp (naive UTC ISO text) → Unix time."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


# -- process accounting ------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a live process has used so far (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """Current (VmRSS) and peak (VmHWM) resident memory of a live process, in KiB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def self_usage() -> dict[str, float]:
    """This process's CPU seconds and peak RSS (MiB), for a child that reports on itself."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu_seconds": usage.ru_utime + usage.ru_stime, "peak_rss_mib": usage.ru_maxrss / 1024}


# -- statistics and output ---------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def mean(values: Sequence[float]) -> float:
    """The arithmetic mean; NaN for no values."""
    return sum(values) / len(values) if values else math.nan


def machine() -> dict[str, Any]:
    """The machine the figures were measured on."""
    model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    import sqlite3

    import aiohttp
    import sqlalchemy

    return {
        "cpu": model, "cores": os.cpu_count(), "memory_gib": round(int(memory) / 1024**2, 1),
        "kernel": platform.release(), "python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
        "aiohttp": aiohttp.__version__, "sqlalchemy": sqlalchemy.__version__,
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Write ``bench/results/NAME-<utc time>.json`` (and ``NAME-latest.json``); returns the path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    document = {"benchmark": name, "at": stamp, "machine": machine(), **payload}
    text = json.dumps(document, indent=2, default=str) + "\n"
    path = RESULTS / f"{name}-{stamp}.json"
    path.write_text(text)
    (RESULTS / f"{name}-latest.json").write_text(text)
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain-text table, numbers right-aligned (Markdown-compatible, so it pastes into BENCHMARKS.md)."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            if math.isnan(value):
                return "-"
            return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
             "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for row, raw in zip(cells, rows, strict=True):
        parts = [c.rjust(w) if isinstance(v, int | float) else c.ljust(w)
                 for c, w, v in zip(row, widths, raw, strict=True)]
        lines.append("| " + " | ".join(parts) + " |")
    return "\n".join(lines)


# -- job files -------------------------------------------------------------------------------------


def job_body(name: str, *, examples: int, epochs: int, batch_size: int, tuned_model_id: str | None = None,
             text_chars: int = 0, output_chars: int = 0) -> dict[str, Any]:
    """A job file's content: ``ceil(examples * epochs / batch_size)`` training steps on the emulator."""
    def text(i: int, size: int, prefix: str) -> str:
        base = f"{prefix} {i}"
        return (base + " " + "x" * max(0, size - len(base) - 1))[:size] if size else base

    body: dict[str, Any] = {
        "display_name": name[:40],
        "base_model": "models/gemini-1.5-flash-001-tuning",
        "tuning_task": {
            "hyperparameters": {"batch_size": batch_size, "learning_rate": 0.001, "epoch_count": epochs},
            "training_data": {"examples": {"examples": [
                {"text_input": text(i, text_chars, "input"), "output": text(i, output_chars, "output")}
                for i in range(examples)
            ]}},
        },
    }
    if tuned_model_id:
        body["orchestrator"] = {"job_key": tuned_model_id, "tuned_model_id": tuned_model_id}
    return body


def write_config(path: Path, *, api_url: str, spool_path: Path, database: Path,
                 sections: dict[str, dict[str, Any]] | None = None) -> Path:
    """A daemon TOML config for a benchmark run (JSON-quoted values are valid TOML for str/int/float/bool)."""
    merged: dict[str, dict[str, Any]] = {
        "api": {"base_url": api_url, "auth": "none"},
        "spool": {"path": str(spool_path)},
        "database": {"path": str(database)},
        "daemon": {"log_level": "warning", "log_format": "json"},
    }
    for section, values in (sections or {}).items():
        merged.setdefault(section, {}).update(values)
    lines = []
    for section, values in merged.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {json.dumps(value)}" for key, value in values.items())
        lines.append("")
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.common serve-emulator '{"time_scale": 20}'``: the emulator child process."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve-emulator")
    serve.add_argument("config", help="EmulatorSettings fields as a JSON object")
    args = parser.parse_args(argv)
    if args.command == "serve-emulator":
        _serve_emulator(json.loads(args.config))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
