"""The long chaos run: hundreds of jobs, many SIGKILLs, every fault on; prints and saves the invariant counts.

    /work/venv/bin/python bench/chaos.py --jobs 300 --kills 60 --seed 1 --out bench/results/chaos.json
    /work/venv/bin/python bench/chaos.py --backend vertex --jobs 300 --kills 60 --out bench/results/chaos-vertex.json

It is the same harness as the CI test (``tests/acceptance/chaos.py``), scaled up. Exit status 0 means
every invariant held: no file lost or counted twice, no duplicate create, every snapshot recorded
once, every terminal state equal to the API's, no secret in any output, and a clean SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.acceptance.chaos import ChaosConfig, run_chaos


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=300)
    parser.add_argument("--bad-files", type=int, default=40)
    parser.add_argument("--kills", type=int, default=60)
    parser.add_argument("--cancels", type=int, default=15)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--fault-rate", type=float, default=1.0, help="multiplies every fault probability")
    parser.add_argument("--deadline", type=float, default=1800.0, help="seconds before the run counts as stuck")
    parser.add_argument("--backend", choices=["gemini", "vertex"], default="gemini",
                        help="the tuning service the daemon drives (vertex: uploads, labels, TensorBoard loss)")
    parser.add_argument("--workdir", type=Path, help="keep the run's files here (default: a temporary folder)")
    parser.add_argument("--out", type=Path, help="also write the report as JSON here")
    args = parser.parse_args()
    config = ChaosConfig(jobs=args.jobs, bad_files=args.bad_files, kills=args.kills, cancels=args.cancels,
                         seed=args.seed, fault_rate=args.fault_rate, deadline=args.deadline, backend=args.backend)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="orchestrator-chaos-"))
    report = asyncio.run(run_chaos(root, config))
    text = json.dumps({**report.as_json(), "violations": report.violations(), "workdir": str(root)}, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    print(f"\n{'OK' if not report.violations() else 'VIOLATIONS'}: {asdict(config)}", file=sys.stderr)
    return 0 if not report.violations() else 1


if __name__ == "__main__":
    sys.exit(main())
