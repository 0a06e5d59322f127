"""``orchestrator demo``: the whole flow in under a minute, with nothing but this package.

It starts the daemon with the embedded emulator (time-scaled), a temporary spool and database,
drops the tutorial's "number generator" job exactly as the tutorial writes it, shows its progress
and exits 0 once the job has succeeded, naming the database and a query to look at it.

``--backend vertex`` runs the same file through the Vertex AI path: the tutorial file is converted
(its base model mapped by ``[vertex] base_model``), its examples uploaded to the emulator's Cloud
Storage, the tuning job created with its label, its loss read from the TensorBoard series.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import TextIO

from orchestrator.config import Backend, Settings
from orchestrator.daemon import run_daemon
from orchestrator.intake import drop_job_file
from orchestrator.jobs import TERMINAL, JobState
from orchestrator.store import DatabaseNotReady, open_reader

TUTORIAL_JOB = "number-generator.json"
#: Simulated time runs this many times faster than real time in the demo (2 s steps → 0.1 s).
DEMO_TIME_SCALE = 20.0
DEMO_TIMEOUT_SECONDS = 50.0
STATUS_QUERY = "SELECT id, state, progress_pct, snapshot_count, last_loss FROM job_status"
#: The ``[vertex]`` settings of the Vertex demo: an emulated project and bucket, and the model the
#: tutorial's (retired) Gemini API base model is tuned as.
DEMO_PROJECT = "orchestrator-demo"
DEMO_STAGING_URI = "gs://orchestrator-demo/staging"
DEMO_VERTEX_BASE_MODEL = "gemini-2.5-flash"


def tutorial_job_bytes() -> bytes:
    """The tutorial's create body, verbatim (snake_case, trailing commas and all)."""
    return resources.files("orchestrator").joinpath("examples", TUTORIAL_JOB).read_bytes()


def demo_settings(workdir: Path, backend: Backend = "gemini") -> Settings:
    """Settings for a fast, self-contained run in ``workdir`` on ``backend``'s emulated service."""
    base = Settings()
    return replace(
        base,
        spool=replace(base.spool, path=workdir / "spool", rescan_interval=1.0),
        database=replace(base.database, path=workdir / "orchestrator.db"),
        api=replace(base.api, backend=backend),
        scheduler=replace(base.scheduler, poll_min_interval=0.25, poll_max_interval=2.0, backoff_cap=5.0),
        emulator=replace(base.emulator, time_scale=DEMO_TIME_SCALE),
        vertex=replace(base.vertex, project=DEMO_PROJECT, staging_uri=DEMO_STAGING_URI,
                       base_model=DEMO_VERTEX_BASE_MODEL),
    )


async def run_demo(workdir: Path | None = None, out: TextIO = sys.stdout, backend: Backend = "gemini") -> int:
    """Run the demo on ``backend``; 0 when the tutorial job succeeded."""
    workdir = workdir or Path(tempfile.mkdtemp(prefix="orchestrator-demo-"))
    settings = demo_settings(workdir, backend)
    stop = asyncio.Event()
    daemon = asyncio.create_task(run_daemon(settings, stop))
    print(f"orchestrator demo ({backend} backend) in {workdir}", file=out)
    try:
        drop_job_file(settings.spool.path, TUTORIAL_JOB, tutorial_job_bytes())
        print(f"dropped {TUTORIAL_JOB} (the tutorial's body, verbatim) into {settings.spool.path / 'inbox'}", file=out)
        state = await asyncio.wait_for(_follow(settings, daemon, out), DEMO_TIMEOUT_SECONDS)
    except TimeoutError:
        print(f"the job did not finish within {DEMO_TIMEOUT_SECONDS:.0f} s", file=out)
        state = None
    finally:
        stop.set()
        await daemon
    db = settings.database.path
    print(f"\nstatus database: {db}", file=out)
    print(f'look at it:  sqlite3 {db} "{STATUS_QUERY}"', file=out)
    return 0 if state is JobState.SUCCEEDED else 1


async def _follow(settings: Settings, daemon: asyncio.Task[None], out: TextIO) -> JobState:
    """Print the job's progress until it is terminal (or the daemon dies)."""
    while True:
        _check_alive(daemon)
        try:
            async with open_reader(settings.database):
                break
        except DatabaseNotReady:
            await asyncio.sleep(0.05)
    last = ""
    async with open_reader(settings.database) as reader:
        while True:
            _check_alive(daemon)
            jobs = await reader.list_jobs()
            if jobs:
                job = jobs[0]
                line = f"{job.id}  {job.state.value:<10} step {job.completed_steps:>3}/{job.total_steps or '?'}"
                if job.last_loss is not None:
                    line += f"  loss {job.last_loss:8.4f}"
                if line != last:
                    print(line, file=out, flush=True)
                    last = line
                if job.state in TERMINAL:
                    if job.error_message:
                        print(f"error: {job.error_message}", file=out)
                    for label, value in (("tuned model", job.model_name), ("endpoint", job.endpoint)):
                        if value:
                            print(f"{label}: {value}", file=out)
                    return job.state
            await asyncio.sleep(0.2)


def _check_alive(daemon: asyncio.Task[None]) -> None:
    if daemon.done():
        daemon.result()  # raises the daemon's own error, if it had one
        raise RuntimeError("the daemon stopped before the job finished")
