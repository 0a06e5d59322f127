"""How many polls per second the emulator serves (target: at least 2,000 on one core), on either API.

``--api gemini`` (the default) polls Gemini API operations; ``--api vertex`` polls Vertex AI
``tuningJobs.get`` instead (the same jobs: a JSONL dataset uploaded once to the emulated Cloud Storage,
``steps`` steps each, the concurrent-jobs quota lifted so all of them run, bearer token on every request)
and writes ``bench/results/emulator_polls_vertex.json``.

The emulator runs in its own process (``python -m orchestrator.emulator``), single-threaded as always,
pinned to CPU 0 while the client processes are pinned to the other CPUs (``--no-pin`` to let the OS
decide).  The client creates 1,000 jobs of 300 steps (time scale 20: 0.1 s per step), lets them train
for a warm-up (15 s: ~150 steps, ~17 KB of snapshots per operation), then runs bounded concurrent
aiohttp GETs on ``/v1/tunedModels/{id}/operations/{op}`` for a bounded time while the jobs keep
training.  It prints polls/s, latency percentiles, the emulator's CPU use and polls per emulator
CPU-second (its capacity on one core, whatever the clients could drive), and writes
``bench/results/emulator_polls.json``.

    python bench/emulator_polls.py                      # 1000 jobs x 300 steps, 64 in flight, 10 s
    python bench/emulator_polls.py --api vertex         # the same load on Vertex AI tuningJobs.get
    python bench/emulator_polls.py --jobs 200 --seconds 3 --warmup 0
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import multiprocessing
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
RESULTS = {
    "gemini": ROOT / "bench" / "results" / "emulator_polls.json",
    "vertex": ROOT / "bench" / "results" / "emulator_polls_vertex.json",
}
VERTEX_PARENT = "projects/bench-project/locations/us-central1"
VERTEX_EXAMPLES = 80  # with the emulator's 8 examples a step: 10 steps an epoch
#: Vertex AI takes OAuth tokens only; the emulator accepts any when none are configured.
VERTEX_HEADERS = {"Authorization": "Bearer bench-token"}


def job_body(steps: int) -> dict[str, Any]:
    """20 examples, batch 2, epochs = steps/10 → ``steps`` total steps."""
    examples = [{"text_input": f"input {n}", "output": f"output {n}"} for n in range(20)]
    return {
        "display_name": "bench",
        "base_model": "models/gemini-1.5-flash-001-tuning",
        "tuning_task": {
            "hyperparameters": {"batch_size": 2, "learning_rate": 0.001, "epoch_count": max(1, steps // 10)},
            "training_data": {"examples": {"examples": examples}},
        },
    }


def start_emulator(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    """The emulator as a child process on a free port; returns it and its base URL."""
    command = [
        sys.executable,
        "-m",
        "orchestrator.emulator",
        "--port",
        "0",
        "--step-seconds",
        "2",
        "--time-scale",
        str(args.time_scale),
        "--vertex-max-concurrent-jobs",
        "0",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        process.kill()
        raise SystemExit(f"emulator did not start: {line!r}")
    if args.pin and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(process.pid, {0})
        PIN_CLIENTS.update(range(1, os.cpu_count() or 2))
    return process, found.group(0)


async def create_jobs(session: aiohttp.ClientSession, url: str, count: int, steps: int) -> list[str]:
    """Create ``count`` Gemini jobs (bounded concurrency); returns their operation names."""
    body = json.dumps(job_body(steps))
    semaphore = asyncio.Semaphore(32)

    async def one(index: int) -> str:
        async with semaphore, session.post(f"{url}/v1beta/tunedModels?tunedModelId=bench-{index}", data=body) as r:
            payload = await r.json()
            if r.status != 200:
                raise SystemExit(f"create failed: {r.status} {payload}")
            return str(payload["name"])

    return list(await asyncio.gather(*(one(index) for index in range(count))))


async def create_vertex_jobs(session: aiohttp.ClientSession, url: str, count: int, steps: int) -> list[str]:
    """Upload one dataset, create ``count`` Vertex AI tuning jobs of ``steps`` steps; returns their names."""
    lines = [
        json.dumps(
            {
                "contents": [
                    {"role": "user", "parts": [{"text": f"input {n}"}]},
                    {"role": "model", "parts": [{"text": f"output {n}"}]},
                ]
            }
        )
        for n in range(VERTEX_EXAMPLES)
    ]
    upload = f"{url}/upload/storage/v1/b/bench-data/o?uploadType=media&name=train.jsonl"
    async with session.post(upload, data="\n".join(lines) + "\n", headers=VERTEX_HEADERS) as r:
        if r.status != 200:
            raise SystemExit(f"upload failed: {r.status} {await r.text()}")
    body = json.dumps(
        {
            "baseModel": "gemini-2.5-flash",
            "supervisedTuningSpec": {
                "trainingDatasetUri": "gs://bench-data/train.jsonl",
                "hyperParameters": {"epochCount": max(1, steps // 10)},
            },
        }
    )
    semaphore = asyncio.Semaphore(32)

    async def one(index: int) -> str:
        async with (
            semaphore,
            session.post(f"{url}/v1/{VERTEX_PARENT}/tuningJobs", data=body, headers=VERTEX_HEADERS) as r,
        ):
            payload = await r.json()
            if r.status != 200:
                raise SystemExit(f"create failed: {r.status} {payload}")
            return str(payload["name"])

    return list(await asyncio.gather(*(one(index) for index in range(count))))


async def _poll_worker(
    url: str, names: list[str], concurrency: int, start_at: float, stop_at: float, seed: int, headers: dict[str, str]
) -> dict[str, Any]:
    """One client process: ``concurrency`` loops of GETs between two wall-clock instants."""
    latencies: list[float] = []
    errors = 0
    body_bytes = 0
    rng = random.Random(seed)
    connector = aiohttp.TCPConnector(limit=concurrency)
    # The cheapest aiohttp client: no cookie jar, no decompression, so the figure measures the emulator.
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar(), auto_decompress=False
    ) as session:
        await asyncio.sleep(max(0.0, start_at - time.time()))

        async def loop() -> None:
            # At least one request per loop, even when this process started after ``stop_at`` (a
            # loaded machine can take longer than ``--spawn-seconds`` to spawn it): never zero samples.
            nonlocal errors, body_bytes
            while True:
                started = time.monotonic()
                async with session.get(f"{url}/v1/{rng.choice(names)}", headers=headers) as response:
                    data = await response.read()
                latencies.append(time.monotonic() - started)
                body_bytes += len(data)
                if response.status != 200:
                    errors += 1
                if time.time() >= stop_at:
                    return

        await asyncio.gather(*(loop() for _ in range(concurrency)))
    return {"latencies": latencies, "errors": errors, "bytes": body_bytes, "ended": time.time()}


def _client_process(
    url: str,
    names: list[str],
    concurrency: int,
    start_at: float,
    stop_at: float,
    seed: int,
    cpus: set[int],
    headers: dict[str, str],
) -> dict[str, Any]:
    """Entry point of a client process (optionally pinned away from the emulator's CPU)."""
    if cpus:
        os.sched_setaffinity(0, cpus)
    return asyncio.run(_poll_worker(url, names, concurrency, start_at, stop_at, seed, headers))


PIN_CLIENTS: set[int] = set()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), 0.0 elsewhere."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def poll(url: str, names: list[str], args: argparse.Namespace, server_pid: int | None) -> dict[str, Any]:
    """``args.clients`` processes with ``args.concurrency`` requests in flight in total, for ``args.seconds``."""
    start_at = time.time() + max(args.spawn_seconds, args.warmup)  # clients start up, the jobs advance
    stop_at = start_at + args.seconds
    per_client = max(1, args.concurrency // args.clients)
    headers = VERTEX_HEADERS if args.api == "vertex" else {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.clients, mp_context=context) as pool:
        futures = [
            pool.submit(_client_process, url, names, per_client, start_at, stop_at, seed, PIN_CLIENTS, headers)
            for seed in range(args.clients)
        ]
        time.sleep(max(0.0, start_at - time.time()))
        cpu_before = cpu_seconds(server_pid) if server_pid else 0.0
        parts = [future.result() for future in futures]
        cpu_used = (cpu_seconds(server_pid) - cpu_before) if server_pid else 0.0
    latencies: list[float] = sorted(latency for part in parts for latency in part["latencies"])
    elapsed = float(max(part["ended"] for part in parts)) - start_at

    def pct(q: float) -> float:
        return round(1000 * latencies[min(len(latencies) - 1, int(q * len(latencies)))], 2)

    return {
        "polls": len(latencies),
        "seconds": round(elapsed, 3),
        "polls_per_second": round(len(latencies) / elapsed, 1),
        "errors": sum(part["errors"] for part in parts),
        "mean_body_bytes": round(sum(part["bytes"] for part in parts) / max(1, len(latencies))),
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99)},
        "server_cpu_seconds": round(cpu_used, 3),
        "server_cpu_utilisation": round(cpu_used / elapsed, 3),
        "polls_per_server_cpu_second": round(len(latencies) / cpu_used, 1) if cpu_used else None,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    process, url = start_emulator(args) if args.url is None else (None, args.url)
    try:
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            created = time.monotonic()
            make = create_vertex_jobs if args.api == "vertex" else create_jobs
            names = await make(session, url, args.jobs, args.steps)
            create_seconds = time.monotonic() - created
            result = await asyncio.to_thread(poll, url, names, args, process.pid if process else None)
            jobs_route = "/_emulator/vertex/jobs" if args.api == "vertex" else "/_emulator/jobs"
            async with session.get(f"{url}{jobs_route}") as response:
                jobs = (await response.json())["jobs"]
        completed = [job["completedSteps"] for job in jobs]
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=10)
    return {
        "benchmark": "emulator_polls",
        "params": {
            "api": args.api,
            "jobs": args.jobs,
            "steps_per_job": args.steps,
            "concurrency": args.concurrency,
            "client_processes": args.clients,
            "seconds": args.seconds,
            "warmup_seconds": args.warmup,
            "time_scale": args.time_scale,
            "step_real_seconds": 2 / args.time_scale,
            "pinned_to_one_cpu": args.pin,
        },
        "create_seconds": round(create_seconds, 3),
        "completed_steps_at_end": {"min": min(completed), "max": max(completed)},
        **result,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
        },
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--api",
        choices=("gemini", "vertex"),
        default="gemini",
        help="poll Gemini API operations or Vertex AI tuningJobs.get",
    )
    parser.add_argument("--jobs", type=int, default=1000, help="running jobs to poll")
    parser.add_argument("--steps", type=int, default=300, help="training steps per job")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--warmup", type=float, default=15.0, help="seconds of training before polling starts (jobs reach ~150 steps)"
    )
    parser.add_argument(
        "--spawn-seconds", type=float, default=1.5, help="time allowed for the client processes to start"
    )
    parser.add_argument("--clients", type=int, default=2, help="client processes sharing the concurrency")
    parser.add_argument("--seconds", type=float, default=10.0, help="polling duration")
    parser.add_argument("--time-scale", type=float, default=20.0, help="emulator time scale (20 → 0.1 s per step)")
    parser.add_argument(
        "--no-pin",
        dest="pin",
        action="store_false",
        help="do not pin the emulator to CPU 0 and the clients to the other CPUs",
    )
    parser.add_argument("--url", help="poll an emulator already running there instead of starting one")
    parser.add_argument("--output", type=Path, help="where to write the JSON result (default: by --api)")
    args = parser.parse_args(argv)
    args.output = args.output or RESULTS[args.api]
    result = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"{args.api}: {result['polls_per_second']:.0f} polls/s over {result['seconds']} s "
        f"({result['polls']} polls, {args.jobs} jobs x {args.steps} steps, {args.concurrency} in flight, "
        f"p50 {result['latency_ms']['p50']} ms, p99 {result['latency_ms']['p99']} ms, "
        f"{result['mean_body_bytes']} B/body, {result['errors']} errors; emulator CPU "
        f"{100 * result['server_cpu_utilisation']:.0f}% = {result['polls_per_server_cpu_second']} polls per CPU-second)"
        f" -> {args.output}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
