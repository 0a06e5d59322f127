"""Google's own clients, unmodified, against the emulator: ``google-genai`` in Vertex mode and
``google-cloud-storage`` through ``STORAGE_EMULATOR_HOST``.

The genai client gets a fixed OAuth token (``google.oauth2.credentials.Credentials(token=…)``), which is
all it needs offline: with ``project``, ``location`` and ``base_url`` it builds
``{base_url}/v1beta1/projects/{p}/locations/{l}/tuningJobs`` exactly as against Google.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():  # google.api_core warns at import about the Python version's end of life
    warnings.simplefilter("ignore", FutureWarning)
    from google import genai
    from google.api_core import exceptions as gcs_exceptions
    from google.cloud import storage
    from google.genai import types
    from google.oauth2.credentials import Credentials

from orchestrator.emulator import EmulatorSettings
from tests.emulator.conftest import threaded_emulator
from tests.emulator.vertex_support import BUCKET, LOCATION, NUMBER, PROJECT, example

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:The SDK's tuning implementation is experimental"),
]


@pytest.fixture
def emulator_url() -> Iterator[str]:
    # 0.2 s per step: slow enough to see every state between polls, fast enough for the suite.
    with threaded_emulator(EmulatorSettings(step_seconds=2.0, time_scale=10.0, start_delay_seconds=2.0)) as url:
        yield url


@pytest.fixture
def gcs(emulator_url: str, monkeypatch: pytest.MonkeyPatch) -> storage.Client:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator_url)
    return storage.Client(project=PROJECT)


@pytest.fixture
def vertex(emulator_url: str) -> genai.Client:
    return genai.Client(
        vertexai=True,
        project=PROJECT,
        location=LOCATION,
        credentials=Credentials(token="offline-token"),
        http_options={"base_url": emulator_url},
    )


def test_storage_client_upload_read_list_and_precondition(gcs: storage.Client) -> None:
    """Simple (multipart) and resumable uploads, reads, listing with prefixes and pages, 412, delete."""
    bucket = gcs.bucket(BUCKET)
    data = "".join(json.dumps(example(n)) + "\n" for n in range(10)).encode()
    blob = bucket.blob("sets/train.jsonl")
    blob.upload_from_string(data, content_type="application/jsonl", if_generation_match=0)
    assert blob.generation is not None and blob.size == len(data)
    with pytest.raises(gcs_exceptions.PreconditionFailed):
        bucket.blob("sets/train.jsonl").upload_from_string(b"other", if_generation_match=0)
    assert bucket.blob("sets/train.jsonl").download_as_bytes() == data

    big = bucket.blob("sets/big.bin", chunk_size=256 * 1024)  # 3 chunks: a resumable upload
    payload = bytes(range(256)) * 2400
    with big.open("wb") as stream:
        stream.write(payload)
    fetched = bucket.get_blob("sets/big.bin")
    assert fetched is not None and fetched.size == len(payload) and fetched.crc32c
    assert fetched.download_as_bytes() == payload
    assert bucket.blob("sets/big.bin").download_as_bytes(start=10, end=19) == payload[10:20]

    bucket.blob("other.txt").upload_from_string(b"x")
    assert [item.name for item in gcs.list_blobs(BUCKET, prefix="sets/")] == ["sets/big.bin", "sets/train.jsonl"]
    listing = gcs.list_blobs(BUCKET, delimiter="/")
    assert [item.name for item in listing] == ["other.txt"] and listing.prefixes == {"sets/"}
    assert len(list(gcs.list_blobs(BUCKET, max_results=3, page_size=1))) == 3
    bucket.blob("other.txt").delete()
    with pytest.raises(gcs_exceptions.NotFound):
        bucket.blob("other.txt").download_as_bytes()


def _states(client: genai.Client, name: str, seconds: float) -> tuple[types.TuningJob, list[tuple[str, str]]]:
    """Poll until the job ends (bounded); returns the last job and the distinct (state, sub-state) seen."""
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + seconds
    while True:
        job = client.tunings.get(name=name)
        assert job.state is not None
        pair = (job.state.name, job.tuning_job_state.name if job.tuning_job_state else "")
        if pair not in seen:
            seen.append(pair)
        if job.has_ended:
            return job, seen
        assert time.monotonic() < deadline, seen
        time.sleep(0.01)


def test_genai_vertex_tune_get_list_cancel(gcs: storage.Client, vertex: genai.Client) -> None:
    """tunings.tune with a gs:// dataset, get until SUCCEEDED, list in pages, cancel a waiting job."""
    data = "".join(json.dumps(example(n)) + "\n" for n in range(16)).encode()
    gcs.bucket(BUCKET).blob("train.jsonl").upload_from_string(data, if_generation_match=0)
    config = types.CreateTuningJobConfig(
        epoch_count=2,
        tuned_model_display_name="numbers",
        adapter_size=types.AdapterSize.ADAPTER_SIZE_FOUR,
        labels={"orchestrator-job": "abc123"},
    )
    dataset = types.TuningDataset(gcs_uri=f"gs://{BUCKET}/train.jsonl")
    job = vertex.tunings.tune(base_model="gemini-2.5-flash", training_dataset=dataset, config=config)
    assert job.name is not None and job.name.startswith(f"projects/{NUMBER}/locations/{LOCATION}/tuningJobs/")
    assert job.state == types.JobState.JOB_STATE_PENDING
    assert job.tuning_job_state == types.TuningJobState.TUNING_JOB_STATE_PROCESSING_DATASET
    queued = vertex.tunings.tune(base_model="gemini-2.5-flash", training_dataset=dataset, config=config)
    assert queued.name is not None

    job, seen = _states(vertex, job.name, 30.0)  # PENDING was the create's answer, checked above
    assert ("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING") in seen
    assert seen[-1] == ("JOB_STATE_SUCCEEDED", "")
    assert job.has_succeeded and job.tuned_model is not None and job.tuned_model.endpoint
    assert job.tuning_data_stats is not None
    stats: Any = job.tuning_data_stats.supervised_tuning_data_stats
    assert (stats.tuning_dataset_example_count, stats.tuning_step_count) == (16, 4)
    assert job.labels == {"orchestrator-job": "abc123"}
    assert job.experiment and job.create_time and job.start_time and job.end_time

    pager = vertex.tunings.list(config={"page_size": 1, "filter": "labels.orchestrator-job=abc123"})
    assert [item.name for item in pager] == [queued.name, job.name]

    waiting = vertex.tunings.get(name=queued.name)
    if not waiting.has_ended:
        vertex.tunings.cancel(name=queued.name)
        cancelled, _ = _states(vertex, queued.name, 10.0)
        assert cancelled.state in (types.JobState.JOB_STATE_CANCELLED, types.JobState.JOB_STATE_SUCCEEDED)
        if cancelled.state == types.JobState.JOB_STATE_CANCELLED:
            assert cancelled.error is not None and cancelled.error.code == 1


def test_genai_vertex_errors_are_the_services(gcs: storage.Client, vertex: genai.Client) -> None:
    """A dataset that is not there, and a bad JSONL line, come back as the SDK's ClientError 400."""
    dataset = types.TuningDataset(gcs_uri=f"gs://{BUCKET}/missing.jsonl")
    with pytest.raises(genai.errors.ClientError) as missing:
        vertex.tunings.tune(base_model="gemini-2.5-flash", training_dataset=dataset)
    assert missing.value.code == 400 and "does not exist" in (missing.value.message or "")
    gcs.bucket(BUCKET).blob("bad.jsonl").upload_from_string(json.dumps(example(1)) + "\n{not json\n")
    with pytest.raises(genai.errors.ClientError) as bad:
        vertex.tunings.tune(
            base_model="gemini-2.5-flash", training_dataset=types.TuningDataset(gcs_uri=f"gs://{BUCKET}/bad.jsonl")
        )
    assert "line 2" in (bad.value.message or "")


def _service_account_info(emulator_url: str) -> dict[str, str]:
    """A service-account key whose token_uri is the emulator (a fresh RSA key: only its shape matters)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": PROJECT,
        "private_key_id": "emulator-key",
        "private_key": pem,
        "client_email": f"tuner@{PROJECT}.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": f"{emulator_url}/token",
    }


def test_service_account_credentials_get_tokens_from_the_emulator() -> None:
    """google-auth signs a JWT, POSTs it to ``/token``, and the token it gets is accepted where tokens are
    enforced, for the key's own project only."""
    from google.oauth2 import service_account

    with threaded_emulator(EmulatorSettings(tokens=("someone-else=other-project",))) as url:
        info = _service_account_info(url)
        credentials = service_account.Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            info, scopes=["https://www.googleapis.com/auth/cloud-platform"]
        )
        client = genai.Client(
            vertexai=True, project=PROJECT, location=LOCATION, credentials=credentials, http_options={"base_url": url}
        )
        assert list(client.tunings.list()) == []
        assert credentials.token and credentials.token.startswith("ya29.emulator-")
        other = genai.Client(
            vertexai=True,
            project="other-project",
            location=LOCATION,
            credentials=credentials,
            http_options={"base_url": url},
        )
        with pytest.raises(genai.errors.ClientError) as denied:
            list(other.tunings.list())
        assert denied.value.code == 403
