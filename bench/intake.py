"""Scenario 3: intake - a burst of 1,000 small files, one maximal job, and drop-to-record latency.

Method. ``orchestrator run`` runs in a child process against an emulator in its own process. Three parts:

1. Burst: 1,000 small job files (the tutorial's body, each with its own ``job_key``) are written to a
   staging folder and renamed into ``inbox/`` at once; files per second = 1,000 / (time until the last
   one is in ``accepted/``). ``max_active_jobs = 0`` so the daemon only takes files in (submitting them
   is scenario 1's business) and the figure is the intake's.
2. Maximal job: 500 examples at the API's limits (40,000 input and 5,000 output characters each, about
   22 MB); seconds from the drop to ``accepted/`` and the daemon's resident-memory growth (VmHWM after
   minus VmRSS before) against the file's size.
3. Hostile shapes: one file of each of ``tests/hostile.py``'s ``MEMORY_SHAPES`` at the default size limit
   (``spool.max_file_bytes``, 32 MiB), dropped one at a time into one daemon; for each, seconds from the
   drop to ``rejected/`` (or ``accepted/``) and the daemon's peak resident-memory growth (VmHWM, reset
   through ``/proc/PID/clear_refs`` before each drop, minus VmRSS then) against the file's size.
4. Latency: 50 small files dropped one at a time, 0.3 s apart; for each, the job row's ``created_at``
   (drop -> recorded) and ``submitted_at`` (drop -> the create call is made) minus the drop time. Run twice:
   with file events (watchfiles/inotify, the default) and with the rescan alone (``spool.watch = false``,
   rescan every ``spool.rescan_interval`` = 5 s, the default).

Command (about 2.5 minutes; ``--only hostile`` runs part 3 alone)::

    /work/venv/bin/python -m bench.intake
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    REPO,
    EmulatorProcess,
    emulator_process,
    job_body,
    memory_kib,
    parse_db_time,
    percentile,
    table,
    write_config,
    write_result,
)
from orchestrator.spec import DEFAULT_MAX_FILE_BYTES
from tests.hostile import MEMORY_SHAPES


class Daemon:
    """``orchestrator run`` in a child process with a spool and database under ``workdir``."""

    def __init__(self, workdir: Path, emu: EmulatorProcess, **sections: dict[str, Any]) -> None:
        self.spool = workdir / "spool"
        self.database = workdir / "intake.db"
        config = write_config(workdir / "daemon.toml", api_url=emu.url, spool_path=self.spool,
                              database=self.database, sections=sections)
        self.process = subprocess.Popen([PYTHON, "-m", "orchestrator", "run", "--config", str(config)], cwd=REPO)
        deadline = time.monotonic() + 30
        while not (self.spool / "accepted").is_dir() or not self.database.exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the daemon did not start")
            time.sleep(0.05)
        time.sleep(1.0)  # past start-up (recovery scan, first tick)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    def accepted(self) -> int:
        return sum(1 for _ in os.scandir(self.spool / "accepted"))

    def outcome(self) -> str | None:
        """``accepted`` or ``rejected`` once the one file dropped is taken in, else None."""
        if self.accepted():
            return "accepted"
        return "rejected" if any(os.scandir(self.spool / "rejected")) else None

    def wait_accepted(self, count: int, timeout: float) -> float:
        """Monotonic time at which ``accepted/`` held ``count`` files."""
        deadline = time.monotonic() + timeout
        while self.accepted() < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {self.accepted()} of {count} files accepted")
            time.sleep(0.005)
        return time.monotonic()


def small_job(key: str) -> bytes:
    body = job_body(key, examples=15, epochs=5, batch_size=2)
    body["orchestrator"] = {"job_key": key}
    return json.dumps(body).encode()


def burst(emu: EmulatorProcess, workdir: Path, count: int) -> dict[str, Any]:
    daemon = Daemon(workdir, emu, scheduler={"max_active_jobs": 0})
    try:
        staging = workdir / "staging"
        staging.mkdir()
        for i in range(count):
            (staging / f"burst-{i:05d}.json").write_bytes(small_job(f"burst-{i}"))
        started = time.monotonic()
        for i in range(count):
            os.rename(staging / f"burst-{i:05d}.json", daemon.spool / "inbox" / f"burst-{i:05d}.json")
        finished = daemon.wait_accepted(count, timeout=300)
    finally:
        daemon.stop()
    seconds = finished - started
    return {"files": count, "seconds": seconds, "files_per_s": count / seconds}


def maximal(emu: EmulatorProcess, workdir: Path) -> dict[str, Any]:
    body = job_body("maximal", examples=500, epochs=1, batch_size=4, text_chars=40_000, output_chars=5_000)
    data = json.dumps(body).encode()
    daemon = Daemon(workdir, emu, scheduler={"max_active_jobs": 0})
    try:
        before = memory_kib(daemon.process.pid)["VmRSS"]
        (workdir / "maximal.json").write_bytes(data)
        started = time.monotonic()
        os.rename(workdir / "maximal.json", daemon.spool / "inbox" / "maximal.json")
        finished = daemon.wait_accepted(1, timeout=120)
        time.sleep(0.5)
        peak = memory_kib(daemon.process.pid)["VmHWM"]
    finally:
        daemon.stop()
    growth = (peak - before) * 1024
    return {"file_bytes": len(data), "seconds": finished - started, "rss_growth_bytes": growth,
            "rss_growth_vs_file": growth / len(data), "rss_before_mib": before / 1024, "peak_rss_mib": peak / 1024}


def hostile(emu: EmulatorProcess, workdir: Path) -> list[dict[str, Any]]:
    """Each shape in a daemon of its own: a fresh process has no freed memory to reuse that would hide a peak."""
    rows = []
    for index, (shape, build) in enumerate(MEMORY_SHAPES.items()):
        data = build(DEFAULT_MAX_FILE_BYTES - 64)
        size = len(data)
        (workdir / str(index)).mkdir()
        staged = workdir / str(index) / "hostile.json"
        staged.write_bytes(data)
        del data
        daemon = Daemon(workdir / str(index), emu, scheduler={"max_active_jobs": 0})
        try:
            before = memory_kib(daemon.process.pid)["VmRSS"]
            started = time.monotonic()
            os.rename(staged, daemon.spool / "inbox" / staged.name)
            deadline = started + 120
            while not (outcome := daemon.outcome()):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{shape}: not taken in")
                time.sleep(0.01)
            seconds = time.monotonic() - started
            peak = memory_kib(daemon.process.pid)["VmHWM"]
        finally:
            daemon.stop()
        growth = (peak - before) * 1024
        rows.append({"shape": shape, "file_bytes": size, "seconds": seconds, "outcome": outcome,
                     "rss_before_mib": before / 1024, "rss_growth_bytes": growth, "rss_growth_vs_file": growth / size})
    return rows


def latency(emu: EmulatorProcess, workdir: Path, count: int, watch: bool) -> dict[str, Any]:
    daemon = Daemon(workdir, emu, spool={"watch": watch}, scheduler={"max_active_jobs": count + 1})
    dropped: dict[str, float] = {}
    try:
        for i in range(count):
            name = f"latency-{i:03d}.json"
            path = workdir / name
            path.write_bytes(small_job(f"latency-{watch}-{i}"))
            dropped[name] = time.time()
            os.rename(path, daemon.spool / "inbox" / name)
            time.sleep(0.3)
        daemon.wait_accepted(count, timeout=60)
        deadline = time.monotonic() + 30
        while True:
            with sqlite3.connect(f"file:{daemon.database}?mode=ro", uri=True) as db:
                rows = db.execute("SELECT source_file, created_at, submitted_at FROM jobs").fetchall()
            if all(r[2] for r in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    finally:
        daemon.stop()
    recorded = [parse_db_time(created) - dropped[name] for name, created, _ in rows]
    submitted = [parse_db_time(sub) - dropped[name] for name, _, sub in rows if sub]
    return {"watch": watch, "files": count,
            "drop_to_record_p50_s": percentile(recorded, 50), "drop_to_record_p99_s": percentile(recorded, 99),
            "drop_to_create_p50_s": percentile(submitted, 50), "drop_to_create_p99_s": percentile(submitted, 99)}


def print_hostile(rows: list[dict[str, Any]]) -> None:
    print(table(["shape", "MB", "seconds", "outcome", "peak RSS growth MB", "x file size"],
                [[r["shape"], r["file_bytes"] / 1e6, r["seconds"], r["outcome"], r["rss_growth_bytes"] / 1e6,
                  r["rss_growth_vs_file"]] for r in rows]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scenario 3: intake")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--latency-files", type=int, default=50)
    parser.add_argument("--only", choices=["hostile"], help="run one part alone")
    args = parser.parse_args(argv)
    if args.only == "hostile":
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp, emulator_process(time_scale=20.0) as emu:
            rows = hostile(emu, Path(tmp))
        print_hostile(rows)
        print(f"wrote {write_result('intake-hostile', {'parameters': vars(args), 'hostile': rows})}")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp, emulator_process(time_scale=20.0) as emu:
        parts: dict[str, Any] = {}
        for name in ("burst", "maximal", "hostile", "events", "rescan"):
            (Path(tmp) / name).mkdir()
        print("burst ...", flush=True)
        parts["burst"] = burst(emu, Path(tmp) / "burst", args.burst)
        print("maximal job ...", flush=True)
        parts["maximal"] = maximal(emu, Path(tmp) / "maximal")
        print("hostile shapes ...", flush=True)
        parts["hostile"] = hostile(emu, Path(tmp) / "hostile")
        print("latency with file events ...", flush=True)
        parts["latency_events"] = latency(emu, Path(tmp) / "events", args.latency_files, watch=True)
        print("latency with the rescan alone ...", flush=True)
        parts["latency_rescan"] = latency(emu, Path(tmp) / "rescan", args.latency_files, watch=False)
    b, m = parts["burst"], parts["maximal"]
    print()
    print(table(["burst files", "seconds", "files/s", "maximal MB", "seconds", "RSS growth MB", "x file size"],
                [[b["files"], b["seconds"], b["files_per_s"], m["file_bytes"] / 1e6, m["seconds"],
                  m["rss_growth_bytes"] / 1e6, m["rss_growth_vs_file"]]]))
    print()
    print(table(["wake-up", "drop->record p50 s", "p99 s", "drop->create p50 s", "p99 s"],
                [["file events" if r["watch"] else "rescan alone", r["drop_to_record_p50_s"],
                  r["drop_to_record_p99_s"], r["drop_to_create_p50_s"], r["drop_to_create_p99_s"]]
                 for r in (parts["latency_events"], parts["latency_rescan"])]))
    print()
    print_hostile(parts["hostile"])
    path = write_result("intake", {"parameters": vars(args), **parts})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
