"""Scenario 2 on PostgreSQL: the fleet of running jobs polled by 1, 2 and 3 daemons sharing one database,
beside one daemon on SQLite, in one run.

Method. As ``bench/fleet.py`` (same emulator, same seeded steady state of N long-running jobs, same
instrumented daemon child, same warm-up and window), with the status database on a PostgreSQL 15
cluster of the bench's own (``tests/postgres.py``, with PostgreSQL's durable defaults: fsync'ed
commits, as SQLite's ``synchronous=FULL``), and 1, 2 or 3 daemon processes on it, each with its own
spool folder. The N jobs are not assigned: the daemons claim whatever is due from the shared queue
(``FOR UPDATE SKIP LOCKED``). For each daemon count, a fresh database is seeded, the daemons run
through the warm-up, then every daemon's counters are read over the same window: polls/s is their
sum, lateness percentiles are over all their polls, CPU per poll is their CPU over their polls (the
PostgreSQL server's own CPU is reported apart), transactions/s is every daemon's committed
transactions. SQLite (one daemon: one writer per file) runs first, on the same machine, as the
reference. The server binaries must be installed (``apt-get install postgresql``).

Command (about 4 minutes per row at the defaults, so about 16)::

    .venv/bin/python -m bench.fleet_pg                 # --size 10000 --daemons 1,2,3 --warmup 100 --window 45
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import cpu_seconds, emulator_process, memory_kib, percentile, table, write_config, write_result
from bench.fleet import IN_FLIGHT, POLL_MAX, POLL_MIN, DaemonChild, create_remote_jobs, run_fleet, seed_database
from tests.postgres import PostgresServer, running_postgres


def server_cpu_seconds(server: PostgresServer) -> float:
    """CPU seconds so far of the bench's PostgreSQL server (its postmaster and every child)."""
    total = 0.0
    for pid in server.server_pids():
        with contextlib.suppress(FileNotFoundError):  # a child that ended meanwhile
            total += cpu_seconds(pid)
    return total


def run_daemons(server: PostgresServer, count: int, size: int, emu: Any, remote: list[tuple[str, str]],
                window: float, warmup: float, poll_max: float, tmp: Path) -> dict[str, Any]:
    """``count`` daemons on a freshly seeded database; their summed figures over one shared window."""
    name = f"fleet_{count}"
    server.create_database(name)
    url = server.url(name)
    seed_database(url, remote, spread=poll_max)
    workdir = tmp / f"pg-{count}"
    workdir.mkdir()
    daemons = []
    for index in range(count):
        config = write_config(
            workdir / f"daemon-{index}.toml", api_url=emu.url, spool_path=workdir / f"spool-{index}",
            database=workdir / "unused.db",
            sections={
                "database": {"url": url},
                "scheduler": {"max_active_jobs": size + 1, "poll_min_interval": POLL_MIN,
                              "poll_max_interval": poll_max},
                "api": {"requests_per_second": 0, "max_in_flight": IN_FLIGHT},
            },
        )
        daemons.append(DaemonChild(config, workdir / f"counters-{index}.json"))
    try:
        time.sleep(warmup)
        for daemon in daemons:
            daemon.counters()  # reset
        cpu_before = [cpu_seconds(d.process.pid) for d in daemons]
        server_before, emulator_before = server_cpu_seconds(server), cpu_seconds(emu.pid)
        time.sleep(window)
        counters = [d.counters() for d in daemons]
        cpu = sum(cpu_seconds(d.process.pid) - before for d, before in zip(daemons, cpu_before, strict=True))
        server_cpu, emulator_cpu = server_cpu_seconds(server) - server_before, cpu_seconds(emu.pid) - emulator_before
        rss = sum(memory_kib(d.process.pid)["VmRSS"] for d in daemons) / 1024
    finally:
        for daemon in daemons:
            daemon.stop()
    span = max(c["until"] - c["since"] for c in counters)
    polls = sum(c["polls"] for c in counters)
    lateness = [late for c in counters for late in c["lateness"]]
    return {
        "backend": "postgresql", "daemons": count, "jobs": size, "window_s": span, "polls": polls,
        "polls_per_s": polls / span, "polls_per_daemon": [c["polls"] for c in counters],
        "lateness_p50_s": percentile(lateness, 50), "lateness_p99_s": percentile(lateness, 99),
        "cpu_ms_per_poll": 1000 * cpu / max(polls, 1), "cpu_share_of_core": cpu / span,
        "server_cpu_share_of_core": server_cpu / span, "emulator_cpu_share_of_core": emulator_cpu / span,
        "transactions_per_s": sum(c["transactions"] for c in counters) / span, "rss_mib": rss,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--size", type=int, default=10_000)
    parser.add_argument("--daemons", default="1,2,3", help="daemon counts to run on PostgreSQL")
    parser.add_argument("--window", type=float, default=45.0)
    parser.add_argument("--warmup", type=float, default=100.0)
    parser.add_argument("--poll-max", type=float, default=POLL_MAX)
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite reference row")
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-fleet-pg-") as tmp:
        if not args.no_sqlite:
            print(f"SQLite, 1 daemon, {args.size} running jobs ...", flush=True)
            sqlite = run_fleet(args.size, args.window, args.warmup, args.poll_max, Path(tmp))
            rows.append({**sqlite, "backend": "sqlite", "daemons": 1, "server_cpu_share_of_core": 0.0,
                         "transactions_per_s": sqlite["sqlite_transactions_per_s"]})
        with emulator_process(time_scale=1.0, step_seconds=2.0) as emu, running_postgres(durable=True) as server:
            remote = asyncio.run(create_remote_jobs(emu.url, args.size, f"pgfleet{args.size}"))
            for count in (int(n) for n in args.daemons.split(",")):
                print(f"PostgreSQL, {count} daemon(s), {args.size} running jobs ...", flush=True)
                rows.append(run_daemons(server, count, args.size, emu, remote, args.window, args.warmup,
                                        args.poll_max, Path(tmp)))
    print()
    print(table(
        ["database", "daemons", "jobs", "polls/s", "lateness p50 s", "p99 s", "CPU ms/poll", "daemons' CPU",
         "server CPU", "transactions/s"],
        [[r["backend"], r["daemons"], r["jobs"], r["polls_per_s"], r["lateness_p50_s"], r["lateness_p99_s"],
          r["cpu_ms_per_poll"], f"{100 * r['cpu_share_of_core']:.0f}%", f"{100 * r['server_cpu_share_of_core']:.0f}%",
          r["transactions_per_s"]] for r in rows],
    ))
    path = write_result("fleet-pg", {"parameters": vars(args), "results": rows})
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
