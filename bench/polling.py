"""Scenario 1: adaptive polling (the daemon) against fixed polling (the tutorial) and the SDK's ``result()``.

The same set of jobs (varied lengths, time-scaled) is watched three ways, one after the other, against one
emulator that runs in its own process:

(a) ``daemon``   - ``orchestrator run`` in a subprocess; the job files are dropped into its inbox.
(b) ``tutorial`` - the REST tutorial's loop in Python: one thread per job, ``sleep 5 s`` then
                   ``GET /v1/{operation}`` until ``done`` (seeds/001), with ``requests``.
(c) ``sdk``      - the legacy SDK: one thread per job, ``genai.create_tuned_model(...).result()``; api_core's
                   polling (1 s → 20 s x 1.5, full jitter), the SDK's own code over its REST transport.

On Vertex AI (issue #11) the same job set is watched two more ways:

(d) ``vertex-daemon`` - ``orchestrator run`` with ``[api] backend = "vertex"``: Vertex job files with inline
                        examples (uploaded once, created with the job's label, loss read from TensorBoard).
(e) ``vertex-genai``  - the google-genai README's loop: one thread per job, ``client.tunings.tune(...)``
                        on a gs:// dataset, then ``while not done: sleep(10); client.tunings.get(name)``.

Every interval (tutorial's 5 s, api_core's 1/20 s, the README's 10 s, the daemon's poll bounds) is divided
by the emulator's time scale, so the comparison is what it would be at real speed, only faster. Figures per approach:
API calls per job (every request except the create, counted by the emulator), detection latency
(the operation's real end, from its ``completeTime``, to the terminal row or the loop's exit; reported in
simulated seconds, i.e. as at real speed), CPU seconds of the watching process from hand-over to the last
detection, and its peak RSS.

Command (about 3 minutes)::

    /work/venv/bin/python -m bench.polling            # --jobs 100 --time-scale 20
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import (
    PYTHON,
    REPO,
    EmulatorProcess,
    cpu_seconds,
    emulator_process,
    job_body,
    mean,
    memory_kib,
    parse_db_time,
    percentile,
    self_usage,
    table,
    write_config,
    write_result,
)

EXAMPLES, BATCH = 20, 4  # 5 steps per epoch
STEP_SECONDS = 2.0  # simulated seconds per step (production: 1.2-2.6 s)
TUTORIAL_SLEEP = 5.0  # the tutorial's ``sleep 5``
GENAI_SLEEP = 10.0  # the google-genai README's ``time.sleep(10)`` between ``tunings.get`` calls
VERTEX_PROJECT, VERTEX_LOCATION = "bench-project", "us-central1"
VERTEX_BUCKET = "bench-project"
#: Vertex routes that are not polling: the create, and Cloud Storage (the upload of the data).
VERTEX_NOT_POLLS = frozenset({"vertex_create", "storage_upload", "storage_get", "storage_upload_chunk",
                              "storage_bucket", "oauth_token"})
#: The states the README's loop stops on (it forgets EXPIRED; none of these jobs expires).
GENAI_DONE = frozenset({"JOB_STATE_SUCCEEDED", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED"})
API_CORE = (1.0, 20.0, 1.5)  # google.api_core.future.polling.DEFAULT_POLLING: initial, maximum, multiplier
DAEMON_POLL = (5.0, 60.0)  # the daemon's default poll_min_interval, poll_max_interval


def job_set(count: int, seed: int) -> list[dict[str, Any]]:
    """``count`` jobs of 20-400 steps (40 s to 13 min at 2 s per step), log-uniform, reproducible."""
    rng = random.Random(seed)
    jobs = []
    for i in range(count):
        epochs = round(math.exp(rng.uniform(math.log(4), math.log(80))))
        steps = math.ceil(EXAMPLES * epochs / BATCH)
        jobs.append({"id": f"bench-poll-{seed}-{i:04d}", "epochs": epochs, "steps": steps})
    return jobs


def request_body(job: dict[str, Any]) -> dict[str, Any]:
    """The create request (camelCase, as the API takes it) for one job of the set."""
    from orchestrator.spec import parse_job

    body = job_body(job["id"], examples=EXAMPLES, epochs=job["epochs"], batch_size=BATCH)
    return dict(parse_job(json.dumps(body).encode(), source=job["id"]).body)


# -- (b) and (c): run in a child process, report on themselves -----------------------------------------


def _thread_per_job(jobs: list[dict[str, Any]], loop: Callable[[dict[str, Any]], None]) -> None:
    """Run ``loop(job)`` in one thread per job, as users of these approaches do, and wait for all."""
    threads = [threading.Thread(target=loop, args=(job,)) for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _watch_tutorial(url: str, jobs: list[dict[str, Any]], scale: float) -> dict[str, float]:
    """One thread per job: create, then ``sleep 5; GET /v1/{operation}`` until ``done``."""
    import requests

    detected: dict[str, float] = {}

    def loop(job: dict[str, Any]) -> None:
        with requests.Session() as http:
            created = http.post(f"{url}/v1beta/tunedModels", params={"tunedModelId": job["id"]},
                                json=request_body(job), timeout=60).json()
            operation = created["name"]
            done = False
            while not done:
                time.sleep(TUTORIAL_SLEEP / scale)
                done = bool(http.get(f"{url}/v1/{operation}", timeout=60).json().get("done"))
            detected[job["id"]] = time.time()

    _thread_per_job(jobs, loop)
    return detected


def _watch_sdk(url: str, jobs: list[dict[str, Any]], scale: float) -> dict[str, float]:
    """One thread per job: ``genai.create_tuned_model(...)`` then ``operation.result()`` (api_core polling)."""
    import google.generativeai as genai
    from google.api_core.future.polling import DEFAULT_POLLING

    genai.configure(api_key="bench", transport="rest", client_options={"api_endpoint": url})
    initial, maximum, multiplier = API_CORE
    polling = DEFAULT_POLLING.with_delay(initial=initial / scale, maximum=maximum / scale, multiplier=multiplier)
    detected: dict[str, float] = {}

    def loop(job: dict[str, Any]) -> None:
        examples = [{"text_input": f"input {i}", "output": f"output {i}"} for i in range(EXAMPLES)]
        operation = genai.create_tuned_model(
            "models/gemini-1.5-flash-001-tuning", examples, id=job["id"], display_name=job["id"][:40],
            epoch_count=job["epochs"], batch_size=BATCH, learning_rate=0.001,
        )
        operation.result(timeout=None, polling=polling)
        detected[job["id"]] = time.time()

    _thread_per_job(jobs, loop)
    return detected


def vertex_examples(job: dict[str, Any]) -> list[dict[str, Any]]:
    """The job's training examples as Vertex ``contents`` examples (the same pairs as the Gemini set)."""
    return [{"contents": [{"role": "user", "parts": [{"text": f"input {i}"}]},
                          {"role": "model", "parts": [{"text": f"output {i}"}]}]} for i in range(EXAMPLES)]


def _watch_genai(url: str, jobs: list[dict[str, Any]], scale: float) -> dict[str, float]:
    """One thread per job: ``tunings.tune`` on an uploaded dataset, then ``sleep(10); tunings.get`` until done."""
    import requests
    from google import genai
    from google.genai import types
    from google.oauth2.credentials import Credentials

    client = genai.Client(vertexai=True, project=VERTEX_PROJECT, location=VERTEX_LOCATION,
                          credentials=Credentials(token="bench"),  # noqa: S106 - the emulator takes any token
                          http_options={"base_url": url})
    detected: dict[str, float] = {}

    def loop(job: dict[str, Any]) -> None:
        data = "".join(json.dumps(e) + "\n" for e in vertex_examples(job)).encode()
        requests.post(f"{url}/upload/storage/v1/b/{VERTEX_BUCKET}/o", params={"uploadType": "media",
                      "name": f"{job['id']}.jsonl"}, data=data, headers={"authorization": "Bearer bench"}, timeout=60)
        tuning_job = client.tunings.tune(
            base_model="gemini-2.5-flash",
            training_dataset=types.TuningDataset(gcs_uri=f"gs://{VERTEX_BUCKET}/{job['id']}.jsonl"),
            config=types.CreateTuningJobConfig(epoch_count=job["epochs"], tuned_model_display_name=job["id"]),
        )
        name = tuning_job.name
        while tuning_job.state is None or tuning_job.state.value not in GENAI_DONE:
            time.sleep(GENAI_SLEEP / scale)
            tuning_job = client.tunings.get(name=name)
        detected[str(name)] = time.time()

    _thread_per_job(jobs, loop)
    return detected


def _child(approach: str, url: str, jobs_file: str, scale: float) -> None:
    """Child process body: watch every job, then print detection times and own CPU/RSS as JSON."""
    jobs = json.loads(Path(jobs_file).read_text())
    watch = {"tutorial": _watch_tutorial, "sdk": _watch_sdk, "vertex-genai": _watch_genai}[approach]
    if approach in ("sdk", "vertex-genai"):  # imported before the clock starts, as a user's program would
        importlib.import_module("google.generativeai" if approach == "sdk" else "google.genai")
    before = self_usage()
    print(json.dumps({"ready": True}), flush=True)
    sys.stdin.readline()  # the parent says go once it has reset the emulator's counters
    detected = watch(url, jobs, scale)
    after = self_usage()
    print(json.dumps({"detected": detected, "cpu_seconds": after["cpu_seconds"] - before["cpu_seconds"],
                      "peak_rss_mib": after["peak_rss_mib"]}), flush=True)


def run_thread_approach(
    approach: str, emu: EmulatorProcess, jobs: list[dict[str, Any]], workdir: Path
) -> dict[str, Any]:
    """Start the child, reset the counters, let it go, and collect what it reports."""
    jobs_file = workdir / "jobs.json"
    jobs_file.write_text(json.dumps(jobs))
    child = subprocess.Popen(
        [PYTHON, "-m", "bench.polling", "--child", approach, "--url", emu.url, "--jobs-file", str(jobs_file),
         "--time-scale", str(emu.time_scale)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    json.loads(child.stdout.readline())
    _reset_stats(emu)
    started = time.time()
    child.stdin.write("go\n")
    child.stdin.flush()
    report = json.loads(child.stdout.readline())
    child.wait()
    return {"started": started, "detected": report["detected"], "cpu_seconds": report["cpu_seconds"],
            "peak_rss_mib": report["peak_rss_mib"], "requests": _stats(emu)["requests"]}


# -- (a): the daemon ---------------------------------------------------------------------------------------


def run_daemon_approach(
    emu: EmulatorProcess, jobs: list[dict[str, Any]], workdir: Path, profile: Path | None = None,
    backend: str = "gemini",
) -> dict[str, Any]:
    """``orchestrator run`` against the emulator; drop the job files; wait until every row is terminal.

    With ``profile``, py-spy samples the daemon for the whole run (collapsed stacks, to that file).
    ``backend="vertex"`` runs the Vertex AI backend on Vertex job files of the same jobs.
    """
    from orchestrator.intake import drop_job_file

    scale = emu.time_scale
    database = workdir / "daemon.db"
    sections: dict[str, dict[str, Any]] = {
        "scheduler": {"max_active_jobs": len(jobs), "poll_min_interval": DAEMON_POLL[0] / scale,
                      "poll_max_interval": DAEMON_POLL[1] / scale, "backoff_cap": 30 / scale},
        "api": {"requests_per_second": 0, "backend": backend},
        "spool": {"rescan_interval": 1.0},
    }
    if backend == "vertex":
        sections["vertex"] = {"project": VERTEX_PROJECT, "location": VERTEX_LOCATION,
                              "staging_uri": f"gs://{VERTEX_BUCKET}/staging"}
    config = write_config(workdir / "daemon.toml", api_url=emu.url, spool_path=workdir / "spool", database=database,
                          sections=sections)
    daemon = subprocess.Popen([PYTHON, "-m", "orchestrator", "run", "--config", str(config)], cwd=REPO)
    try:
        _wait_for(lambda: database.exists() and (workdir / "spool" / "inbox").is_dir(), 30)
        time.sleep(1.0)  # start-up (migrations, emulator URL) is not what is measured
        _reset_stats(emu)
        spy = None
        if profile is not None:
            spy = subprocess.Popen([str(Path(PYTHON).parent / "py-spy"), "record", "--pid", str(daemon.pid),
                                    "--rate", "250", "--gil", "--format", "raw", "--output", str(profile)])
            time.sleep(1.0)
        cpu_before = cpu_seconds(daemon.pid)
        started = time.time()
        for job in jobs:
            body = vertex_job_file(job) if backend == "vertex" else job_body(
                job["id"], examples=EXAMPLES, epochs=job["epochs"], batch_size=BATCH, tuned_model_id=job["id"])
            drop_job_file(workdir / "spool", f"{job['id']}.json", json.dumps(body).encode())
        finished = _wait_terminal(database, len(jobs), timeout=600,
                                  key="remote_job" if backend == "vertex" else "tuned_model_id")
        cpu = cpu_seconds(daemon.pid) - cpu_before
        peak = memory_kib(daemon.pid)["VmHWM"] / 1024
        requests = _stats(emu)["requests"]
        if spy is not None:
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
    finally:
        daemon.terminate()
        daemon.wait(30)
    return {"started": started, "detected": finished, "cpu_seconds": cpu, "peak_rss_mib": peak, "requests": requests}


def vertex_job_file(job: dict[str, Any]) -> dict[str, Any]:
    """The job as a Vertex job file: the same examples inline, the same epochs."""
    return {
        "base_model": "gemini-2.5-flash", "tuned_model_display_name": job["id"],
        "supervised_tuning_spec": {"hyper_parameters": {"epoch_count": job["epochs"]}},
        "orchestrator": {"job_key": job["id"], "training_examples": vertex_examples(job)},
    }


def _wait_terminal(database: Path, count: int, timeout: float, key: str = "tuned_model_id") -> dict[str, float]:
    """Poll the status database (read-only, from this process) until ``count`` rows are terminal.

    The rows' finish times by ``key``: the tuned-model id (Gemini) or the tuning job's name (Vertex).
    """
    deadline = time.monotonic() + timeout
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        while time.monotonic() < deadline:
            rows = db.execute(
                f"SELECT {key}, state, finished_at FROM jobs WHERE finished_at IS NOT NULL"  # noqa: S608 (a column)
            ).fetchall()
            if len(rows) >= count:
                failed = [r for r in rows if r[1] != "succeeded"]
                if failed:
                    raise RuntimeError(f"{len(failed)} daemon jobs did not succeed, e.g. {failed[0]}")
                return {r[0]: parse_db_time(r[2]) for r in rows}
            time.sleep(0.2)
    finally:
        db.close()
    raise TimeoutError(f"the daemon did not finish {count} jobs in {timeout} s")


def _wait_for(condition: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.05)


# -- the emulator's side ---------------------------------------------------------------------------------


def _http(emu: EmulatorProcess, method: str, path: str, headers: dict[str, str] | None = None) -> Any:
    import urllib.request

    request = urllib.request.Request(emu.url + path, method=method, headers=headers or {})  # noqa: S310 (loopback)
    with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
        return json.loads(response.read())


def _reset_stats(emu: EmulatorProcess) -> None:
    _http(emu, "DELETE", "/_emulator/stats")


def _stats(emu: EmulatorProcess) -> dict[str, Any]:
    stats: dict[str, Any] = _http(emu, "GET", "/_emulator/stats")
    return stats


def remote_end(emu: EmulatorProcess, tuned_model_id: str) -> float:
    """Real Unix time at which the job's operation became done (its model's ``completeTime``)."""
    model = _http(emu, "GET", f"/v1beta/tunedModels/{tuned_model_id}")
    if model["state"] != "ACTIVE":
        raise RuntimeError(f"{tuned_model_id} ended {model['state']}")
    return emu.real_time(model["tuningTask"]["completeTime"])


def vertex_end(emu: EmulatorProcess, name: str) -> float:
    """Real Unix time at which the tuning job ended (its ``endTime``)."""
    job = _http(emu, "GET", f"/v1/{name}", {"authorization": "Bearer bench"})
    if job["state"] != "JOB_STATE_SUCCEEDED":
        raise RuntimeError(f"{name} ended {job['state']}")
    return emu.real_time(job["endTime"])


def summarise(name: str, run: dict[str, Any], ids: list[str], emu: EmulatorProcess) -> dict[str, Any]:
    """Calls per job, detection latency (simulated seconds), CPU and RSS of one approach.

    Calls are every request but the creates (and, on Vertex, the uploads of the data); the Vertex
    daemon's include its reads of the loss series, which the README's loop does not make at all.
    """
    requests = run["requests"]
    vertex = name.startswith("vertex")
    creates = sum(requests.get("vertex_create" if vertex else "create", {}).values())
    not_polls = VERTEX_NOT_POLLS if vertex else frozenset({"create"})
    polls = sum(sum(by_status.values()) for route, by_status in requests.items() if route not in not_polls)
    if vertex:
        ids = sorted(run["detected"])  # the service chose the names: whatever the approach saw end
    end = vertex_end if vertex else remote_end
    latencies = [(run["detected"][i] - end(emu, i)) * emu.time_scale for i in ids]
    return {
        "approach": name, "jobs": len(ids), "creates": creates, "poll_calls": polls,
        "calls_per_job": polls / len(ids), "requests_by_route": requests,
        "latency_mean_s": mean(latencies), "latency_p95_s": percentile(latencies, 95),
        "latency_max_s": max(latencies), "latency_min_s": min(latencies),
        "cpu_seconds": run["cpu_seconds"], "peak_rss_mib": run["peak_rss_mib"],
        "latencies_s": {i: round(value, 3) for i, value in zip(ids, latencies, strict=True)},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Scenario 1: adaptive vs fixed polling")
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--time-scale", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--approaches", default="daemon,tutorial,sdk,vertex-daemon,vertex-genai",
                        help="comma-separated: daemon, tutorial, sdk (Gemini API); vertex-daemon, vertex-genai")
    parser.add_argument("--vertex-quota", type=int, default=0,
                        help="Vertex concurrent tuning jobs per project (0: no cap); with 1 the jobs wait their turn")
    parser.add_argument("--profile", type=Path, help="py-spy the daemon into this file (collapsed stacks)")
    parser.add_argument("--child", choices=["tutorial", "sdk", "vertex-genai"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--jobs-file", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child, args.url, args.jobs_file, args.time_scale)
        return 0

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-polling-") as tmp:
        for approach in args.approaches.split(","):
            jobs = job_set(args.jobs, args.seed)
            for job in jobs:  # each approach creates its own remote jobs: same specs, fresh ids
                job["id"] = f"{approach[:3]}-{job['id']}"
            workdir = Path(tmp) / approach
            workdir.mkdir()
            # Vertex: no quota cap by default (every job runs at once, as on the Gemini API) and its batch
            # size, so that a job has the same steps on both services.
            with emulator_process(time_scale=args.time_scale, step_seconds=STEP_SECONDS, seed=args.seed,
                                  vertex_max_concurrent_jobs=args.vertex_quota, vertex_batch_size=BATCH) as emu:
                print(f"{approach}: {len(jobs)} jobs, {sum(j['steps'] for j in jobs)} steps in all ...", flush=True)
                if approach in ("daemon", "vertex-daemon"):
                    run = run_daemon_approach(emu, jobs, workdir, args.profile,
                                              backend="vertex" if approach == "vertex-daemon" else "gemini")
                else:
                    run = run_thread_approach(approach, emu, jobs, workdir)
                results.append(summarise(approach, run, [j["id"] for j in jobs], emu))
    by_name = {r["approach"]: r for r in results}
    print()
    print(table(
        ["approach", "jobs", "calls/job", "latency mean s", "latency p95 s", "CPU s", "peak RSS MiB"],
        [[r["approach"], r["jobs"], r["calls_per_job"], r["latency_mean_s"], r["latency_p95_s"], r["cpu_seconds"],
          r["peak_rss_mib"]] for r in results],
    ))
    targets = {}
    if {"daemon", "tutorial"} <= by_name.keys():
        d, t = by_name["daemon"], by_name["tutorial"]
        targets["calls_ratio_vs_tutorial"] = d["calls_per_job"] / t["calls_per_job"]
        targets["calls_target_met"] = targets["calls_ratio_vs_tutorial"] <= 0.2
        targets["latency_target_met"] = d["latency_mean_s"] <= t["latency_mean_s"]
    if {"vertex-daemon", "vertex-genai"} <= by_name.keys():
        d, g = by_name["vertex-daemon"], by_name["vertex-genai"]
        targets["vertex_calls_ratio_vs_genai_loop"] = d["calls_per_job"] / g["calls_per_job"]
        targets["vertex_latency_daemon_minus_genai_s"] = d["latency_mean_s"] - g["latency_mean_s"]
    if {"daemon", "sdk"} <= by_name.keys():
        targets["cpu_ratio_sdk_over_daemon"] = by_name["sdk"]["cpu_seconds"] / by_name["daemon"]["cpu_seconds"]
        targets["cpu_target_met"] = targets["cpu_ratio_sdk_over_daemon"] >= 10
    print(json.dumps(targets, indent=2))
    path = write_result("polling", {
        "parameters": {"jobs": args.jobs, "time_scale": args.time_scale, "seed": args.seed,
                       "step_seconds": STEP_SECONDS, "examples": EXAMPLES, "batch_size": BATCH,
                       "tutorial_sleep": TUTORIAL_SLEEP, "api_core_polling": API_CORE, "daemon_poll": DAEMON_POLL,
                       "genai_sleep": GENAI_SLEEP},
        "latency_unit": "simulated seconds (real seconds x time_scale)",
        "results": results, "targets": targets,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
