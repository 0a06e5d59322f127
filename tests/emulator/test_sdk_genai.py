"""The new ``google-genai`` SDK, unmodified, on the Gemini-API paths it supports (gemini-api.md §9.2).

It cannot choose a tuned-model id and (3.4.0) drops the training data from ``tunings.tune``: the
emulator answers that with the 400 production would give.  Jobs are created over REST, then driven
through ``tunings.get`` and ``models.*``.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator.emulator import EmulatorSettings
from tests.emulator.conftest import threaded_emulator, tutorial_body

genai = pytest.importorskip("google.genai")
types = pytest.importorskip("google.genai.types")
errors = pytest.importorskip("google.genai.errors")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore:The SDK's tuning implementation is experimental"),
]


@pytest.fixture
def emulator_url() -> Iterator[str]:
    with threaded_emulator(EmulatorSettings(step_seconds=2.0, time_scale=400.0)) as url:
        yield url


@pytest.fixture
def client(emulator_url: str) -> Any:
    return genai.Client(api_key="test-key", http_options={"base_url": emulator_url + "/", "api_version": "v1beta"})


def _create(url: str, model_id: str) -> dict[str, Any]:
    """Create over plain REST (this SDK cannot choose an id)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        body = json.dumps(tutorial_body())
        connection.request("POST", f"/v1beta/tunedModels?tunedModelId={model_id}", body=body)
        response = connection.getresponse()
        assert response.status == 200
        result: dict[str, Any] = json.loads(response.read())
    finally:
        connection.close()
    return result


def test_tune_matches_what_the_sdk_sends(client: Any) -> None:
    """Whatever this SDK version sends, the emulator answers like production (200, or 400 without data)."""
    dataset = types.TuningDataset(
        examples=[types.TuningExample(text_input=str(n), output=str(n + 1)) for n in range(4)]
    )
    config = types.CreateTuningJobConfig(epoch_count=1, batch_size=2, learning_rate=0.001, tuned_model_display_name="g")
    try:
        job = client.tunings.tune(
            base_model="models/gemini-1.5-flash-001-tuning", training_dataset=dataset, config=config
        )
    except errors.ClientError as exc:
        assert (exc.code, exc.status) == (400, "INVALID_ARGUMENT")
        assert "training_data" in exc.message
    else:
        assert job.name.startswith("tunedModels/g-")


def test_tunings_get_and_models_routes(client: Any, emulator_url: str) -> None:
    """tunings.get maps CREATING/ACTIVE to job states; models.get/list/update/generate(stream)/delete work."""
    _create(emulator_url, "genai-model")
    job = client.tunings.get(name="tunedModels/genai-model")
    assert job.state == types.JobState.JOB_STATE_RUNNING
    deadline = time.monotonic() + 10
    while not job.has_ended:
        assert time.monotonic() < deadline
        time.sleep(0.02)
        job = client.tunings.get(name="tunedModels/genai-model")

    assert job.has_succeeded
    assert job.tuned_model.model == "tunedModels/genai-model"
    assert client.models.get(model="tunedModels/genai-model").display_name == "number generator model"
    assert [m.name for m in client.models.list(config={"query_base": False})] == ["tunedModels/genai-model"]
    updated = client.models.update(model="tunedModels/genai-model", config={"display_name": "renamed"})
    assert updated.display_name == "renamed"
    answer = client.models.generate_content(model="tunedModels/genai-model", contents="thirteen")
    assert (answer.text, answer.model_version) == ("fourteen", "emulated")
    chunks = list(client.models.generate_content_stream(model="tunedModels/genai-model", contents="seven"))
    assert "".join(chunk.text for chunk in chunks) == "eight"
    with pytest.raises((errors.ClientError, ValueError)) as not_a_route:
        client.tunings.cancel(name="tunedModels/genai-model")  # 3.4.0 posts to tunedModels/x:cancel (§9.2)
    if isinstance(not_a_route.value, errors.ClientError):
        assert not_a_route.value.code == 404
    client.models.delete(model="tunedModels/genai-model")
    with pytest.raises(errors.ClientError) as caught:
        client.models.get(model="tunedModels/genai-model")
    assert caught.value.code == 404
