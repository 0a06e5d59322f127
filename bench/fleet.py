"""Scenario 2: a fleet of 1,000 and 10,000 concurrently running jobs in one daemon process.

Method. The emulator runs in its own process. For each fleet size the bench creates N long tuning jobs
on it (10,000 steps each: hours at real speed, so none ends during the run) and records them in a fresh,
migrated status database as ``running``, each with its operation name and a first check spread evenly
over one ``poll_max_interval``: the steady state of a daemon that has been running a while, reached in
seconds instead of by ingesting N files first (scenario 3 measures intake). Then the real daemon
(``run_daemon``, default settings except ``requests_per_second = 0`` and ``max_active_jobs``) runs in a
child process that counts, without changing behaviour, each poll's lateness (the instant its poll step
starts, just before its GET, minus the ``next_check_at`` it was due at) and each database transaction
(SQLite: all run in the writer thread; PostgreSQL: each pool thread's, see ``bench/fleet_pg.py``).
After a warm-up of
100 s (the first cycle catches up with the daemon's own start-up, which bench/restart.py measures,
and the polls made late then come due together once more a cycle later), a window of ``--window``
seconds gives: sustained polls per second, lateness p50/p99, daemon CPU per poll, RSS, SQLite transactions
per second. The floor is a bare aiohttp GET loop (same
operations, same in-flight cap of 16, same rate, body read and not parsed) run in its own process
against the same emulator right after.

Command (about 7 minutes)::

    /work/venv/bin/python -m bench.fleet                 # --sizes 1000,10000 --warmup 100 --window 45
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    REPO,
    EmulatorProcess,
    cpu_seconds,
    emulator_process,
    memory_kib,
    percentile,
    self_usage,
    table,
    write_config,
    write_result,
)

#: Default daemon poll bounds (seconds): the fleet runs on the shipped defaults.
POLL_MIN, POLL_MAX = 5.0, 60.0
#: 20 examples, batch 1, 500 epochs: 10,000 steps of 2 s, about 5.5 hours; nothing ends during a run.
EXAMPLES, BATCH, EPOCHS = 20, 1, 500
IN_FLIGHT = 16


# -- set-up: N running jobs, on the emulator and in the status database ------------------------------------


async def create_remote_jobs(url: str, count: int, prefix: str) -> list[tuple[str, str]]:
    """Create ``count`` tuned models on the emulator; returns (tuned_model_id, operation name) pairs."""
    import aiohttp

    body = {
        "baseModel": "models/gemini-1.5-flash-001-tuning",
        "tuningTask": {
            "hyperparameters": {"batchSize": BATCH, "learningRate": 0.001, "epochCount": EPOCHS},
            "trainingData": {"examples": {"examples": [
                {"textInput": f"input {i}", "output": f"output {i}"} for i in range(EXAMPLES)
            ]}},
        },
    }
    payload = json.dumps(body).encode()
    out: list[tuple[str, str]] = []
    gate = asyncio.Semaphore(32)
    async with aiohttp.ClientSession(headers={"content-type": "application/json"}) as http:

        async def create(i: int) -> None:
            model_id = f"{prefix}-{i:05d}"
            async with gate, http.post(f"{url}/v1beta/tunedModels", params={"tunedModelId": model_id},
                                       data=payload) as response:
                response.raise_for_status()
                out.append((model_id, (await response.json())["name"]))

        await asyncio.gather(*(create(i) for i in range(count)))
    return out


def seed_database(database: Path | str, remote: list[tuple[str, str]], spread: float) -> None:
    """Migrate a fresh database (a SQLite file, or a PostgreSQL URL) and record every remote job as running,
    first checks spread over ``spread`` s."""
    from sqlalchemy import create_engine, insert
    from sqlalchemy.engine import make_url

    from orchestrator.store import migrate
    from orchestrator.store.schema import job_specs, jobs

    url = make_url(database if isinstance(database, str) else f"sqlite:///{database}")
    migrate(database if isinstance(database, Path) else url)
    now = datetime.now(UTC)
    engine = create_engine(url)
    rows, specs = [], []
    for i, (model_id, operation) in enumerate(remote):
        job_id = f"{i:012x}"
        rows.append({
            "id": job_id, "job_key": model_id, "state": "running", "base_model": "models/gemini-1.5-flash-001-tuning",
            "tuned_model_id": model_id, "source_file": f"{model_id}.json", "intake_id": f"seed-{job_id}",
            "operation_name": operation, "remote_state": "CREATING", "total_steps": EXAMPLES * EPOCHS // BATCH,
            "next_check_at": now + timedelta(seconds=spread * i / len(remote)),
            "created_at": now, "updated_at": now, "submitted_at": now, "started_at": now, "last_progress_at": now,
        })
        specs.append({"job_id": job_id, "body": "{}", "example_count": EXAMPLES, "file_sha256": "0" * 64,
                      "file_bytes": 2})
    with engine.begin() as conn:
        conn.execute(insert(jobs), rows)
        conn.execute(insert(job_specs), specs)
    engine.dispose()


def daemon_config(workdir: Path, emu: EmulatorProcess, jobs: int, poll_max: float) -> Path:
    """The daemon's settings: defaults, no request-rate cap, quota for every job."""
    return write_config(
        workdir / "daemon.toml", api_url=emu.url, spool_path=workdir / "spool", database=workdir / "fleet.db",
        sections={
            "scheduler": {"max_active_jobs": jobs + 1, "poll_min_interval": POLL_MIN, "poll_max_interval": poll_max},
            "api": {"requests_per_second": 0, "max_in_flight": IN_FLIGHT},
        },
    )


# -- the daemon child: the real daemon, with counters --------------------------------------------------------


@dataclass
class _Counters:
    lateness: list[float]
    late_at: list[float]  #: when the polls more than a second late were made (to tell bursts from drift)
    polls: int = 0
    transactions: int = 0
    since: float = 0.0


def _child_daemon(config: Path, report: Path) -> None:
    """Run ``run_daemon`` with counters on polls and write transactions; SIGUSR1 dumps and resets them."""
    from orchestrator import logs
    from orchestrator.config import load_settings
    from orchestrator.daemon import run_daemon
    from orchestrator.scheduler import Scheduler
    from orchestrator.store.connection import WriterThread
    from orchestrator.store.postgres import PostgresStore

    counters = _Counters(lateness=[], late_at=[], since=time.time())
    poll = Scheduler._poll
    transactions = WriterThread._transaction, WriterThread._driver_transaction, PostgresStore._transaction

    async def counted_poll(self: Scheduler, job: Any, *args: Any, **kwargs: Any) -> Any:
        if job.next_check_at is not None:
            now = time.time()
            counters.lateness.append(now - job.next_check_at.timestamp())
            if counters.lateness[-1] > 1.0:
                counters.late_at.append(now)
        counters.polls += 1
        return await poll(self, job, *args, **kwargs)

    def counted(transaction: Any) -> Any:
        def counted_transaction(self: WriterThread, *args: Any) -> Any:
            result = transaction(self, *args)
            counters.transactions += 1
            return result

        return counted_transaction

    Scheduler._poll = counted_poll  # type: ignore[method-assign]
    WriterThread._transaction = counted(transactions[0])  # type: ignore[method-assign]
    WriterThread._driver_transaction = counted(transactions[1])  # type: ignore[method-assign]
    PostgresStore._transaction = counted(transactions[2])  # type: ignore[method-assign]

    def dump(_signum: int, _frame: Any) -> None:
        now = time.time()
        data = {"since": counters.since, "until": now, "polls": counters.polls, "transactions": counters.transactions,
                "lateness": counters.lateness, "late_at": counters.late_at, **self_usage()}
        report.write_text(json.dumps(data))
        counters.lateness, counters.late_at, counters.polls, counters.transactions, counters.since = [], [], 0, 0, now

    signal.signal(signal.SIGUSR1, dump)
    settings = load_settings(config)
    logs.configure(settings.daemon.log_level, settings.daemon.log_format)
    asyncio.run(run_daemon(settings))


class DaemonChild:
    """The instrumented daemon in a child process."""

    def __init__(self, config: Path, report: Path) -> None:
        self.report = report
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bench.fleet", "--child-daemon", str(config), "--report", str(report)], cwd=REPO
        )

    def counters(self) -> dict[str, Any]:
        """Counters since the previous call (the first call starts the count)."""
        self.report.unlink(missing_ok=True)
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                data: dict[str, Any] = json.loads(self.report.read_text())
                return data
            except (FileNotFoundError, json.JSONDecodeError):
                time.sleep(0.02)
        raise TimeoutError("the daemon child did not report its counters")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(60)


# -- the floor: a bare aiohttp GET loop ------------------------------------------------------------------


def _child_floor(url: str, names_file: Path, rate: float, seconds: float) -> None:
    """GET the operations at ``rate`` per second with at most 16 in flight; report CPU per GET."""
    import aiohttp

    names = json.loads(names_file.read_text())

    async def run() -> dict[str, Any]:
        connector = aiohttp.TCPConnector(limit=IN_FLIGHT)
        gate = asyncio.Semaphore(IN_FLIGHT)
        done = 0
        async with aiohttp.ClientSession(connector=connector) as http:

            async def get(name: str) -> None:
                nonlocal done
                async with gate, http.get(f"{url}/v1/{name}") as response:
                    await response.read()
                done += 1

            before = self_usage()
            started = time.monotonic()
            tasks = set()
            for i in range(int(seconds * rate)):
                await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))  # paced, as polls are
                task = asyncio.create_task(get(names[i % len(names)]))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.gather(*tasks)
            wall = time.monotonic() - started
            after = self_usage()
        cpu = after["cpu_seconds"] - before["cpu_seconds"]
        return {"gets": done, "seconds": wall, "cpu_seconds": cpu, "cpu_ms_per_get": 1000 * cpu / max(done, 1),
                "peak_rss_mib": after["peak_rss_mib"]}

    print(json.dumps(asyncio.run(run())), flush=True)


def run_floor(
    emu: EmulatorProcess, operations: list[str], rate: float, seconds: float, workdir: Path
) -> dict[str, Any]:
    """The bare GET loop in its own process, at ``rate`` GETs per second for ``seconds``."""
    names_file = workdir / "operations.json"
    names_file.write_text(json.dumps(operations))
    out = subprocess.run(
        [PYTHON, "-m", "bench.fleet", "--child-floor", emu.url, "--names", str(names_file), "--rate", str(rate),
         "--seconds", str(seconds)],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


# -- one fleet ----------------------------------------------------------------------------------------------


@dataclass
class Fleet:
    """A seeded fleet with its emulator, ready for a daemon."""

    size: int
    emu: EmulatorProcess
    workdir: Path
    config: Path
    operations: list[str]


def prepare_fleet(size: int, emu: EmulatorProcess, workdir: Path, poll_max: float) -> Fleet:
    started = time.monotonic()
    remote = asyncio.run(create_remote_jobs(emu.url, size, f"fleet{size}"))
    seed_database(workdir / "fleet.db", remote, spread=poll_max)
    print(f"  {size} running jobs created and recorded in {time.monotonic() - started:.1f} s", flush=True)
    return Fleet(size, emu, workdir, daemon_config(workdir, emu, size, poll_max), [op for _, op in remote])


def measure_window(daemon: DaemonChild, seconds: float, profile: Path | None = None) -> dict[str, Any]:
    """Counters, CPU and memory of the daemon over one window (py-spy samples it into ``profile``)."""
    pid = daemon.process.pid
    daemon.counters()  # reset
    cpu_before = cpu_seconds(pid)
    if profile is not None:
        subprocess.run([str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(pid), "--rate", "200", "--gil",
                        "--format", "raw", "--output", str(profile), "--duration", str(int(seconds))],
                       check=True, capture_output=True)
    else:
        time.sleep(seconds)
    counters = daemon.counters()
    cpu = cpu_seconds(pid) - cpu_before
    memory = memory_kib(pid)
    span = counters["until"] - counters["since"]
    lateness = counters["lateness"]
    return {
        "window_s": span, "polls": counters["polls"], "polls_per_s": counters["polls"] / span,
        "lateness_p50_s": percentile(lateness, 50), "lateness_p99_s": percentile(lateness, 99),
        "lateness_max_s": max(lateness) if lateness else float("nan"),
        "polls_over_1s_late": len(counters["late_at"]),
        "over_1s_late_at_s": sorted({round(t - counters["since"]) for t in counters["late_at"]}),
        "cpu_seconds": cpu, "cpu_ms_per_poll": 1000 * cpu / max(counters["polls"], 1),
        "cpu_share_of_core": cpu / span,
        "rss_mib": memory["VmRSS"] / 1024, "peak_rss_mib": memory["VmHWM"] / 1024,
        "sqlite_transactions": counters["transactions"], "sqlite_transactions_per_s": counters["transactions"] / span,
    }


def run_fleet(
    size: int, window: float, warmup: float, poll_max: float, tmp: Path, profile: Path | None = None
) -> dict[str, Any]:
    workdir = tmp / f"fleet-{size}"
    workdir.mkdir()
    with emulator_process(time_scale=1.0, step_seconds=2.0) as emu:
        fleet = prepare_fleet(size, emu, workdir, poll_max)
        daemon = DaemonChild(fleet.config, workdir / "counters.json")
        try:
            time.sleep(warmup)
            emulator_cpu_before = cpu_seconds(emu.pid)
            result = measure_window(daemon, window, profile.with_suffix(f".{size}.txt") if profile else None)
            result["emulator_cpu_share_of_core"] = (cpu_seconds(emu.pid) - emulator_cpu_before) / result["window_s"]
        finally:
            daemon.stop()
        floor = run_floor(emu, fleet.operations, result["polls_per_s"], min(window, 20.0), workdir)
    result.update(jobs=size, rss_kib_per_job=result["rss_mib"] * 1024 / size, floor=floor,
                  cpu_vs_floor=result["cpu_ms_per_poll"] / floor["cpu_ms_per_get"])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scenario 2: fleet of running jobs in one daemon")
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--window", type=float, default=45.0, help="measured seconds per fleet")
    parser.add_argument("--warmup", type=float, default=100.0,
                        help="seconds before the window: past the start-up catch-up and its echo one cycle later")
    parser.add_argument("--poll-max", type=float, default=POLL_MAX, help="scheduler.poll_max_interval")
    parser.add_argument("--profile", type=Path, help="py-spy the daemon during each window (PROFILE.SIZE.txt)")
    parser.add_argument("--child-daemon", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-floor", help=argparse.SUPPRESS)
    parser.add_argument("--names", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_daemon:
        _child_daemon(args.child_daemon, args.report)
        return 0
    if args.child_floor:
        _child_floor(args.child_floor, args.names, args.rate, args.seconds)
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"fleet of {size} running jobs ...", flush=True)
            results.append(run_fleet(size, args.window, args.warmup, args.poll_max, Path(tmp), args.profile))
    print()
    print(table(
        ["jobs", "polls/s", "lateness p50 s", "p99 s", "CPU ms/poll", "floor ms/GET", "vs floor", "RSS MiB",
         "KiB/job", "transactions/s", "daemon CPU", "emulator CPU"],
        [[r["jobs"], r["polls_per_s"], r["lateness_p50_s"], r["lateness_p99_s"], r["cpu_ms_per_poll"],
          r["floor"]["cpu_ms_per_get"], r["cpu_vs_floor"], r["rss_mib"], r["rss_kib_per_job"],
          r["sqlite_transactions_per_s"], f"{100 * r['cpu_share_of_core']:.0f}%",
          f"{100 * r['emulator_cpu_share_of_core']:.0f}%"] for r in results],
    ))
    path = write_result("fleet", {
        "parameters": {"sizes": args.sizes, "window_s": args.window, "warmup_s": args.warmup,
                       "poll_min_interval": POLL_MIN, "poll_max_interval": args.poll_max, "max_in_flight": IN_FLIGHT,
                       "steps_per_job": EXAMPLES * EPOCHS // BATCH},
        "results": results,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
