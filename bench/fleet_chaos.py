"""The long fleet chaos run: three daemons on one PostgreSQL server, killed and restarted at random for minutes.

    .venv/bin/python -m bench.fleet_chaos --jobs 300 --kills 60 --seed 1 --out bench/results/fleet-chaos.json

The same harness as the CI test (``tests/acceptance/fleet_chaos.py``), scaled up, on a PostgreSQL
cluster of its own (``tests/postgres.py``: initdb in a temporary folder, a free loopback port; the
server binaries must be installed, e.g. ``apt-get install postgresql``). Prints the report and a
table of the invariant counts; exit status 0 means every invariant held.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.acceptance.fleet_chaos import CAP, FleetChaosConfig, run_fleet_chaos
from tests.postgres import running_postgres


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--cancels", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--share-spool", action="store_true", help="daemons 2 and 3 share one spool folder")
    parser.add_argument("--fault-rate", type=float, default=1.0, help="multiplies every fault probability")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds before the run counts as stuck")
    parser.add_argument("--workdir", type=Path, help="keep the run's files here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    config = FleetChaosConfig(jobs=args.jobs, kills=args.kills, cancels=args.cancels, seed=args.seed,
                              spools=(0, 1, 1) if args.share_spool else (0, 1, 2), fault_rate=args.fault_rate,
                              deadline=args.deadline)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="orchestrator-fleet-chaos-"))
    with running_postgres() as server:
        server.create_database("fleet_chaos")
        report = asyncio.run(run_fleet_chaos(root, server.url("fleet_chaos"), config))
    data = {**report.as_json(), "violations": report.violations(), "workdir": str(root)}
    print(json.dumps(data, indent=2))
    rows = [("files dropped", report.files_dropped), ("jobs", report.jobs), ("rejected (duplicate)", report.rejected),
            ("daemon starts / SIGKILLs", f"{report.starts} / {report.kills}"),
            ("daemon instances seen", report.daemons_seen), ("creates sent", report.creates_sent),
            ("faults injected", ", ".join(f"{k}: {v}" for k, v in sorted(report.faults_injected.items()))),
            ("terminal states", ", ".join(f"{k}: {v}" for k, v in sorted(report.terminal_states.items()))),
            ("lost files", report.lost_files), ("files counted twice", report.files_counted_twice),
            ("duplicate creates", report.duplicate_creates), ("duplicate snapshots", report.duplicate_snapshots),
            ("missing snapshots", report.missing_snapshots), ("wrong terminal states", report.wrong_terminal_states),
            ("peak active jobs at the emulator (cap)", f"{report.peak_active_jobs} ({CAP})"),
            ("secret leaks", len(report.secret_leaks)), ("final exit codes", report.final_exit_codes),
            ("seconds", report.seconds)]
    print("\n| what | count |\n|---|---|\n" + "\n".join(f"| {name} | {value} |" for name, value in rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    print(f"\n{'OK' if not report.violations() else 'VIOLATIONS'}", file=sys.stderr)
    return 0 if not report.violations() else 1


if __name__ == "__main__":
    sys.exit(main())
