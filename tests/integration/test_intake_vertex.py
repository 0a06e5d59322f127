"""The intake of a daemon configured for Vertex AI: its job files in, the stored document of the contract out.

The configuration is read from a TOML file as the daemon reads it (``[api] backend = "vertex"``), the
intake runs against a real database and spool under ``tmp_path``, and every file of the Vertex corpus
must end as its one specific rejection while good files of both forms become jobs whose stored body is
``{"tuningJob": …, "trainingExamples": […], "validationExamples": […]}``.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

import orchestrator
from orchestrator.clock import SystemClock
from orchestrator.config import DatabaseSettings, Settings, load_settings
from orchestrator.daemon import run_daemon
from orchestrator.intake import Intake, drop_job_file
from orchestrator.jobfiles import job_file_parser
from orchestrator.jobs import JobState
from orchestrator.store import open_store
from orchestrator.store.sql import SqlStore
from orchestrator.vertex.jobfile import jsonl
from tests.conftest import RunningDaemon
from tests.corpus import GOOD_TUTORIAL_JOB, good_job
from tests.integration.test_intake import each_rejected_with_its_reason, error_report, listing
from tests.reliability.conftest import all_jobs
from tests.vertex_corpus import BAD_VERTEX_JOB_FILES, GOOD_VERTEX_JOB, conversation, good_vertex_job

VERTEX_CONFIG = """
[api]
backend = "vertex"
auth = "none"
[vertex]
project = "my-project"
location = "us-central1"
staging_uri = "gs://my-bucket/orchestrator"
"""


def vertex_settings(tmp_path: Path, extra: str = "") -> Settings:
    config = tmp_path / "orchestrator.toml"
    spool = f'\n[spool]\npath = "{tmp_path / "spool"}"\nsettle_seconds = 0\nwatch = false\n'
    spool += f'[database]\npath = "{tmp_path / "orchestrator.db"}"\n'
    config.write_text(VERTEX_CONFIG + extra + spool)
    return load_settings(config, environ={})


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    async with open_store(DatabaseSettings(path=tmp_path / "orchestrator.db", busy_timeout=0.3)) as writer:
        yield writer


def make_intake(store: SqlStore, settings: Settings) -> Intake:
    intake = Intake(store, settings.spool, SystemClock(), "itest1", parse=job_file_parser(settings))
    intake.prepare()
    return intake


def stored_bodies(tmp_path: Path) -> dict[str, Any]:
    """Each job's stored body by source file, read as a user would, with sqlite3."""
    with sqlite3.connect(f"file:{tmp_path / 'orchestrator.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT j.source_file, s.body, s.example_count FROM jobs j JOIN job_specs s ON s.job_id = j.id"
        ).fetchall()
    return {source: (json.loads(body), count) for source, body, count in rows}


async def test_every_vertex_corpus_file_is_rejected_with_its_specific_reason(store: SqlStore, tmp_path: Path) -> None:
    settings = vertex_settings(tmp_path)
    limit = settings.spool.max_file_bytes
    entries = [entry for entry in BAD_VERTEX_JOB_FILES if entry.max_bytes >= limit]
    assert len(entries) >= 80
    await each_rejected_with_its_reason(make_intake(store, settings), store, tmp_path, entries)


async def test_vertex_job_files_become_jobs_with_the_contracts_body(store: SqlStore, tmp_path: Path) -> None:
    intake = make_intake(store, vertex_settings(tmp_path))
    uri_job = good_vertex_job(supervised_tuning_spec={"training_dataset_uri": "gs://data/train.jsonl"}, orchestrator={})
    drop_job_file(tmp_path / "spool", "inline.json", GOOD_VERTEX_JOB)
    drop_job_file(tmp_path / "spool", "in-storage.json", uri_job)

    with capture_logs() as logs:
        assert await intake.scan() == 2

    jobs = {job.source_file: job for job in await all_jobs(store)}
    assert set(jobs) == {"inline.json", "in-storage.json"}
    inline = jobs["inline.json"]
    assert (inline.job_key, inline.priority, inline.base_model) == ("vertex-number-generator", 3, "gemini-2.5-flash")
    assert json.loads(inline.labels) == {"team": "search", "cost-center": "ml_42"}
    bodies = stored_bodies(tmp_path)
    body, count = bodies["inline.json"]
    assert count == 3 and set(body) == {"tuningJob", "trainingExamples", "validationExamples"}
    assert body["trainingExamples"][0] == conversation("1", "2")
    assert body["validationExamples"] == [conversation("7", "8")]
    assert "trainingDatasetUri" not in body["tuningJob"]["supervisedTuningSpec"]
    body, count = bodies["in-storage.json"]
    assert count is None and set(body) == {"tuningJob"}  # a gs:// dataset: counted by the service
    assert body["tuningJob"]["supervisedTuningSpec"] == {"trainingDatasetUri": "gs://data/train.jsonl"}
    assert len(listing(tmp_path, "accepted")) == 2
    # Logged by the job's own identity: a Vertex job has no tunedModels/ name (the service names it later).
    accepted = {entry["file"]: entry for entry in logs if entry["event"] == "job_accepted"}
    assert {name: (entry["job_id"], entry["job_key"]) for name, entry in accepted.items()} == {
        name: (job.id, job.job_key) for name, job in jobs.items()}
    assert not any("tuned_model" in entry for entry in accepted.values())


async def test_a_tutorial_file_without_vertex_base_model_is_rejected_naming_the_key(
    store: SqlStore, tmp_path: Path
) -> None:
    intake = make_intake(store, vertex_settings(tmp_path))
    drop_job_file(tmp_path / "spool", "tutorial.json", GOOD_TUTORIAL_JOB)

    await intake.scan()

    report = error_report(tmp_path, "tutorial.json")
    assert report["field"] == "base_model"
    assert "set [vertex] base_model in the config" in report["problem"]


async def test_a_tutorial_file_is_converted_with_vertex_base_model_and_what_it_loses_is_logged(
    store: SqlStore, tmp_path: Path
) -> None:
    intake = make_intake(store, vertex_settings(tmp_path, 'base_model = "gemini-2.5-flash"\n'))
    drop_job_file(tmp_path / "spool", "tutorial.json", GOOD_TUTORIAL_JOB)

    with capture_logs() as logs:
        await intake.scan()

    [job] = await all_jobs(store)
    assert (job.base_model, job.display_name, job.total_steps) == ("gemini-2.5-flash", "number generator model", None)
    body, count = stored_bodies(tmp_path)["tutorial.json"]
    assert count == 15 and body["trainingExamples"][0] == conversation("1", "2")
    assert body["tuningJob"]["supervisedTuningSpec"] == {"hyperParameters": {"epochCount": 5}}
    [converted] = [entry for entry in logs if entry["event"] == "job_file_converted"]
    assert converted["file"] == "tutorial.json"
    assert [note.split(" ")[0] for note in converted["left_out"]] == [
        "tuning_task.hyperparameters.learning_rate",
        "tuning_task.hyperparameters.batch_size",
    ]


async def test_the_gemini_backend_still_reads_the_tutorial_form_and_points_vertex_files_to_the_setting(
    store: SqlStore, tmp_path: Path
) -> None:
    config = tmp_path / "gemini.toml"
    config.write_text(f'[spool]\npath = "{tmp_path / "spool"}"\nsettle_seconds = 0\nwatch = false\n')
    intake = make_intake(store, load_settings(config, environ={}))
    drop_job_file(tmp_path / "spool", "tutorial.json", good_job())
    drop_job_file(tmp_path / "spool", "vertex.json", GOOD_VERTEX_JOB)

    await intake.scan()

    [job] = await all_jobs(store)
    assert job.source_file == "tutorial.json" and job.base_model == "models/gemini-1.5-flash-001-tuning"
    report = error_report(tmp_path, "vertex.json")
    assert report["field"] == "supervised_tuning_spec"
    assert 'set [api] backend = "vertex"' in report["problem"]


def test_submit_validates_with_the_configured_service(tmp_path: Path) -> None:
    """``orchestrator submit`` reads a file as the daemon it feeds would: here, a Vertex one."""
    import subprocess

    settings = vertex_settings(tmp_path)
    for folder in ("inbox", "processing", "accepted", "rejected"):
        (settings.spool.path / folder).mkdir(parents=True, exist_ok=True)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_bytes(GOOD_VERTEX_JOB)
    bad.write_bytes(good_vertex_job(base_model="models/gemini-2.5-flash"))
    command = [sys.executable, "-m", "orchestrator", "submit", "--config", str(tmp_path / "orchestrator.toml")]
    environment = {name: value for name, value in os.environ.items() if not name.startswith("ORCHESTRATOR_")}

    accepted = subprocess.run([*command, str(good)], capture_output=True, text=True, env=environment, timeout=60)
    rejected = subprocess.run([*command, str(bad)], capture_output=True, text=True, env=environment, timeout=60)

    assert accepted.returncode == 0, accepted.stderr
    assert "3 examples" in accepted.stdout
    assert listing(tmp_path, "inbox") == ["good.json"]
    assert rejected.returncode == 1
    assert 'base_model: "models/gemini-2.5-flash" is a Gemini API model name' in rejected.stderr


# --- a Vertex daemon, end to end on the emulator -------------------------------------------------------


def example_file(name: str) -> bytes:
    """A job file shipped in ``orchestrator/examples`` (the ones the README shows)."""
    return (Path(orchestrator.__file__).parent / "examples" / name).read_bytes()


async def upload(storage_url: str, uri: str, data: bytes) -> None:
    """Put ``data`` at ``gs://bucket/object`` in the emulator's Cloud Storage, as a user's own upload."""
    bucket, _, name = uri.removeprefix("gs://").partition("/")
    url = f"{storage_url}/upload/storage/v1/b/{bucket}/o"
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, params={"uploadType": "media", "name": name}, data=data) as response,
    ):
        assert response.status == 200, await response.text()


async def test_a_vertex_daemon_tunes_every_example_file_form(settings: Settings, emulator_url: str) -> None:
    """The README's example files, inline and in Cloud Storage, and the tutorial converted, all end succeeded."""
    settings = replace(
        settings,
        api=replace(settings.api, backend="vertex", auth="none"),
        vertex=replace(
            settings.vertex,
            project="my-project",
            staging_uri="gs://orchestrator-staging/jobs",
            storage_url=emulator_url,
            base_model="gemini-2.0-flash-001",
            list_settle_seconds=1.0,
        ),
    )
    gcs_job = json.loads(example_file("vertex-gcs-dataset.json"))
    dataset = gcs_job["supervised_tuning_spec"]
    await upload(
        emulator_url, dataset["training_dataset_uri"], jsonl([conversation(str(n), str(n + 1)) for n in range(8)])
    )
    await upload(emulator_url, dataset["validation_dataset_uri"], jsonl([conversation("41", "42")]))
    for name in ("vertex-number-generator.json", "vertex-gcs-dataset.json", "number-generator.json"):
        drop_job_file(settings.spool.path, name, example_file(name))
    stop = asyncio.Event()
    daemon = RunningDaemon(settings, stop, asyncio.create_task(run_daemon(settings, stop)))
    try:
        jobs = {job.source_file: job for job in await daemon.wait_for_jobs(3, within=60)}
    finally:
        stop.set()
        await asyncio.wait_for(daemon.task, 15)

    assert {name: job.state for name, job in jobs.items()} == dict.fromkeys(
        ("vertex-number-generator.json", "vertex-gcs-dataset.json", "number-generator.json"), JobState.SUCCEEDED
    )
    assert jobs["number-generator.json"].base_model == "gemini-2.0-flash-001"
    inline, in_storage = jobs["vertex-number-generator.json"], jobs["vertex-gcs-dataset.json"]
    assert inline.training_data_uri is not None and inline.training_data_uri.startswith(
        "gs://orchestrator-staging/jobs/"
    )
    assert in_storage.training_data_uri in (None, dataset["training_dataset_uri"])
    assert in_storage.dataset_example_count == 8  # as Vertex counted the user's own upload
    for job in jobs.values():
        assert job.remote_job is not None and "/tuningJobs/" in job.remote_job
        assert job.completed_steps and job.completed_steps > 0
