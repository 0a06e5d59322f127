"""The legacy ``google-generativeai`` SDK (REST transport), unmodified, against the emulator.

It parses operations strictly (an unknown field is a ParseError), polls ``/v1beta`` operations, sends
``$alt=json;enum-encoding=int`` and PATCHes whole objects: passing here means the wire format is right.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from orchestrator.emulator import EmulatorSettings
from tests.emulator.conftest import threaded_emulator

genai = pytest.importorskip("google.generativeai")
gexc = pytest.importorskip("google.api_core.exceptions")

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
]

BASE = "models/gemini-1.5-flash-001-tuning"
DATA = [{"text_input": str(n), "output": str(n + 1)} for n in range(15)]


@pytest.fixture
def emulator_url() -> Iterator[str]:
    """A fresh emulator in a thread (0.005 s per step); the SDK is blocking."""
    with threaded_emulator(EmulatorSettings(step_seconds=2.0, time_scale=400.0)) as url:
        yield url


@pytest.fixture
def sdk(emulator_url: str) -> Any:
    """The SDK configured for that emulator, as gemini-api.md §12.15 says."""
    genai.configure(api_key="test-key", transport="rest", client_options={"api_endpoint": emulator_url})
    return genai


def test_create_wait_bar_result_get_list_update_delete(sdk: Any) -> None:
    """The SDK's walk-through, unmodified: create with an id, wait_bar, result, get, list, update, 409, delete."""
    operation = sdk.create_tuned_model(
        source_model=BASE,
        training_data=DATA,
        id="sdk-model",
        display_name="sdk model",
        epoch_count=2,
        batch_size=4,
        learning_rate=0.001,
    )
    assert operation.metadata.total_steps == 8
    for polls, _ in enumerate(operation.wait_bar(disable=True)):
        time.sleep(0.02)
        assert polls < 500
    model = operation.result()

    assert model.name == "tunedModels/sdk-model"
    assert model.state == sdk.protos.TunedModel.State.ACTIVE
    assert [s["step"] for s in model.tuning_task.snapshots] == list(range(1, 9))
    assert sdk.get_tuned_model("tunedModels/sdk-model").display_name == "sdk model"
    assert [m.name for m in sdk.list_tuned_models()] == ["tunedModels/sdk-model"]
    assert sdk.update_tuned_model("tunedModels/sdk-model", {"description": "new"}).description == "new"
    with pytest.raises(gexc.Conflict):
        sdk.create_tuned_model(source_model=BASE, training_data=DATA, id="sdk-model")
    answer = sdk.GenerativeModel("tunedModels/sdk-model").generate_content("3")
    assert answer.text == "4"
    streamed = sdk.GenerativeModel("tunedModels/sdk-model").generate_content("5", stream=True)
    assert "".join(chunk.text for chunk in streamed) == "6"
    sdk.delete_tuned_model("tunedModels/sdk-model")
    with pytest.raises(gexc.NotFound):
        sdk.get_tuned_model("tunedModels/sdk-model")


def test_operations_module_and_base_model(sdk: Any) -> None:
    """``genai.operations.get_operation`` works; ``delete_operation`` gets production's 501."""
    from google.generativeai import operations

    operation = sdk.create_tuned_model(source_model=BASE, training_data=DATA, id="sdk-ops")
    fetched = operations.get_operation(operation.operation.name)

    assert fetched.metadata.tuned_model == "tunedModels/sdk-ops"
    with pytest.raises(gexc.MethodNotImplemented):
        operations.delete_operation(operation.operation.name)
    assert "createTunedModel" in sdk.get_base_model(BASE).supported_generation_methods


def test_strict_parsing_of_every_optional_field(sdk: Any, emulator_url: str) -> None:
    """A REST-created job using the optional fields (description, sampling, readers) parses strictly
    through the SDK's operations client once done.  (Not learningRateMultiplier: the SDK's own
    Hyperparameters dataclass lacks it and raises TypeError on any model that has one.)"""
    import http.client
    import json
    from urllib.parse import urlsplit

    from google.generativeai import operations

    body = {
        "display_name": "full",
        "description": '{"description":"json blob as AI Studio writes it"}',
        "base_model": BASE,
        "temperature": 0.5,
        "top_p": 0.9,
        "top_k": 10,
        "reader_project_numbers": ["1234567890123"],
        "tuning_task": {
            "hyperparameters": {"epoch_count": 1, "batch_size": 4, "learning_rate": 0.0005},
            "training_data": {"examples": {"examples": DATA}},
        },
    }
    endpoint = urlsplit(emulator_url)
    connection = http.client.HTTPConnection(endpoint.hostname or "127.0.0.1", endpoint.port, timeout=10)
    connection.request("POST", "/v1beta/tunedModels?tunedModelId=full", body=json.dumps(body))
    created = json.loads(connection.getresponse().read())
    connection.close()

    model = operations.get_operation(created["name"]).result(timeout=10)

    assert [int(number) for number in model.reader_project_numbers] == [1234567890123]
    assert (model.top_k, model.tuning_task.hyperparameters.learning_rate) == (10, 0.0005)
    assert sdk.get_tuned_model("tunedModels/full").description.startswith('{"description"')


def test_list_pages_through_next_page_token(sdk: Any) -> None:
    """list_tuned_models follows nextPageToken across pages."""
    for index in range(5):
        sdk.create_tuned_model(source_model=BASE, training_data=DATA, id=f"page-{index}")

    names = [model.name for model in sdk.list_tuned_models(page_size=2)]

    assert names == [f"tunedModels/page-{index}" for index in range(5)]


def test_permissions(sdk: Any) -> None:
    """TunedModel.permissions: create, list, update, get, delete and transfer_ownership."""
    sdk.create_tuned_model(source_model=BASE, training_data=DATA, id="sdk-shared")
    model = sdk.get_tuned_model("tunedModels/sdk-shared")

    grant = model.permissions.create(role="READER", grantee_type="USER", email_address="bob@example.com")
    assert [p.email_address for p in model.permissions.list()] == ["bob@example.com"]
    grant.update({"role": "WRITER"})
    assert model.permissions.get(grant.name).role == sdk.protos.Permission.Role.WRITER
    grant.delete()
    assert list(model.permissions.list()) == []
    model.permissions.transfer_ownership(email_address="carol@example.com")
    assert [p.role for p in model.permissions.list()] == [sdk.protos.Permission.Role.WRITER]


def test_cancel(sdk: Any) -> None:
    """operation.cancel() then result() raises Cancelled; the model ends FAILED."""
    operation = sdk.create_tuned_model(source_model=BASE, training_data=DATA, id="sdk-cancel", epoch_count=500)

    assert operation.cancel() is True
    with pytest.raises(gexc.Cancelled):
        operation.result(timeout=10)
    assert operation.cancelled()
    assert sdk.get_tuned_model("tunedModels/sdk-cancel").state == sdk.protos.TunedModel.State.FAILED


def test_failed_job_raises_its_error(sdk: Any) -> None:
    """A job failing at a step surfaces as the operation's error 13 (InternalServerError)."""
    from orchestrator.emulator import FaultPlan

    with threaded_emulator(
        EmulatorSettings(time_scale=400.0, faults=FaultPlan.from_json([{"kind": "fail_job", "step": 2}]))
    ) as url:
        sdk.configure(api_key="test-key", transport="rest", client_options={"api_endpoint": url})
        operation = sdk.create_tuned_model(source_model=BASE, training_data=DATA, id="sdk-fail")
        with pytest.raises(gexc.InternalServerError):
            operation.result(timeout=10)
