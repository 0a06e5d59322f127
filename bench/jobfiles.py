"""Job-file parsing by form: the Gemini tutorial form, a tutorial file converted for Vertex AI, Vertex job files.

Method. Each case is a file at about the default size limit (``spool.max_file_bytes``, 32 MiB), written
once to a temporary folder; a child process per case reads it, resets its peak resident memory
(``/proc/self/clear_refs``), parses it the way the intake does (``parse_job`` for a Gemini daemon,
``parse_vertex_job`` for a Vertex one), serializes the body as the intake stores it, and for Vertex
builds the JSONL the backend uploads. It reports seconds for each step and the peak resident-memory
growth against the file's size. Cases:

- ``tutorial-max``: 700 pairs at the Gemini API's limits (40,000 and 5,000 characters), parse_job.
- ``tutorial-as-vertex``: the same file given to a Vertex daemon (validated, then converted).
- ``vertex-pairs``: the same texts as a Vertex job file with inline pairs.
- ``vertex-small-contents``: the densest useful Vertex file, ``contents`` examples of one-character
  turns (about 300,000 examples): the most Python objects a file of this size can ask for.

Command (about a minute)::

    .venv/bin/python -m bench.jobfiles
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import PYTHON, REPO, table, write_result
from orchestrator.spec import DEFAULT_MAX_FILE_BYTES

CASES = ("tutorial-max", "tutorial-as-vertex", "vertex-pairs", "vertex-small-contents")
#: Room under the limit for the envelope around the examples.
_MARGIN = 4096


def _pairs(budget: int) -> list[dict[str, str]]:
    pair = {"text_input": "i" * 40_000, "output": "o" * 5_000}
    size = len(json.dumps(pair)) + 2
    return [pair] * (budget // size)


def build(case: str) -> bytes:
    """The case's file, just under the default size limit."""
    budget = DEFAULT_MAX_FILE_BYTES - _MARGIN
    if case in ("tutorial-max", "tutorial-as-vertex"):
        job = {
            "display_name": "maximal",
            "base_model": "models/gemini-1.5-flash-001-tuning",
            "tuning_task": {
                "hyperparameters": {"epoch_count": 1, "batch_size": 4},
                "training_data": {"examples": {"examples": _pairs(budget)}},
            },
        }
        return json.dumps(job).encode()
    if case == "vertex-pairs":
        examples: list[Any] = _pairs(budget)
    else:
        turn = {"contents": [{"role": "user", "parts": [{"text": "1"}]}, {"role": "model", "parts": [{"text": "2"}]}]}
        examples = [turn] * (budget // (len(json.dumps(turn)) + 2))
    job = {
        "base_model": "gemini-2.5-flash",
        "supervised_tuning_spec": {},
        "orchestrator": {"training_examples": examples},
    }
    return json.dumps(job).encode()


def _memory() -> dict[str, int]:
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0])
    return fields


def measure(case: str, path: Path) -> dict[str, Any]:
    """In the child: read, parse, serialize (and build the JSONL), timing each; peak memory growth."""
    from orchestrator.spec import parse_job
    from orchestrator.vertex.jobfile import jsonl, parse_vertex_job

    data = path.read_bytes()
    Path("/proc/self/clear_refs").write_text("5")
    before = _memory()["VmRSS"]
    start = time.perf_counter()
    if case == "tutorial-max":
        spec = parse_job(data, source=path.name)
    else:
        spec = parse_vertex_job(data, source=path.name, default_base_model="gemini-2.5-flash")
    parsed = time.perf_counter()
    body = json.dumps(spec.body, ensure_ascii=False, separators=(",", ":"))
    serialized = time.perf_counter()
    uploaded = len(jsonl(spec.body["trainingExamples"])) if "trainingExamples" in spec.body else 0
    built = time.perf_counter()
    growth = _memory()["VmHWM"] - before
    return {
        "case": case,
        "file_bytes": len(data),
        "examples": spec.example_count,
        "parse_s": parsed - start,
        "serialize_s": serialized - parsed,
        "jsonl_s": built - serialized if uploaded else None,
        "body_bytes": len(body),
        "jsonl_bytes": uploaded,
        "peak_growth_mib": growth / 1024,
        "growth_per_file_byte": growth * 1024 / len(data),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(measure(args.case, args.file)))
        return 0
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for case in CASES:
            path = Path(folder) / f"{case}.json"
            path.write_bytes(build(case))
            child = [PYTHON, "-m", "bench.jobfiles", "--case", case, "--file", str(path)]
            result = subprocess.run(child, capture_output=True, text=True, cwd=REPO, check=True, timeout=600)
            rows.append(json.loads(result.stdout))
            path.unlink()
    print(
        table(
            ["case", "file MB", "examples", "parse s", "store s", "JSONL s", "JSONL MB", "peak MiB", "x file"],
            [
                [
                    row["case"],
                    row["file_bytes"] / 1e6,
                    row["examples"],
                    row["parse_s"],
                    row["serialize_s"],
                    row["jsonl_s"] if row["jsonl_s"] is not None else float("nan"),
                    row["jsonl_bytes"] / 1e6,
                    row["peak_growth_mib"],
                    row["growth_per_file_byte"],
                ]
                for row in rows
            ],
        )
    )
    print(f"written to {write_result('jobfiles', {'cases': rows})}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
