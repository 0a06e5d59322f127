"""gemini.wire: proto3 JSON from the tutorial transcripts → the scheduler's values.

The canned bodies are the shapes of gemini-api.md §4.1 and §5.4, taken from the seed transcripts.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import MalformedResponse
from orchestrator.gemini import OperationError, OperationStatus, Snapshot, TunedModelStatus
from orchestrator.gemini.wire import (
    decode_json,
    operation_from_json,
    operations_page_from_json,
    tuned_model_from_json,
)

META_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.CreateTunedModelMetadata"
OP = "tunedModels/number-generator-wl1qr34x2py/operations/41vni3zk0a47"
MODEL = "tunedModels/number-generator-wl1qr34x2py"

#: The create response of the Vietnamese transcript (seed 000): no done, no progress yet.
CREATED: dict[str, Any] = {
    "name": "tunedModels/number-generator-model-dzlmi0gswwqb/operations/bvl8dymw0fhw",
    "metadata": {"@type": META_TYPE, "totalSteps": 38, "tunedModel": "tunedModels/number-generator-model-dzlmi0gswwqb"},
}

RUNNING: dict[str, Any] = {
    "name": OP,
    "metadata": {
        "@type": META_TYPE,
        "tunedModel": MODEL,
        "totalSteps": 19,
        "completedSteps": 8,
        "completedPercent": 42.105263,
        "snapshots": [
            {"step": 1, "meanLoss": 7.34, "computeTime": "2024-03-14T15:10:31.123456789Z"},
            {"step": 4, "epoch": 1, "meanLoss": 6.97, "computeTime": "2024-03-14T15:10:35.987654321Z"},
            {"step": 8, "epoch": 2, "meanLoss": 5.99, "computeTime": "2024-03-14T15:10:41.000000001Z"},
        ],
    },
}

SUCCEEDED: dict[str, Any] = {
    "name": OP,
    "metadata": {
        "@type": META_TYPE,
        "tunedModel": MODEL,
        "totalSteps": 19,
        "completedSteps": 19,
        "completedPercent": 100,
    },
    "done": True,
    "response": {
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.TunedModel",
        "name": MODEL,
        "baseModel": "models/gemini-1.0-pro-001",
        "state": "ACTIVE",
        "tuningTask": {"snapshots": [{"step": 19, "epoch": 5, "meanLoss": 1.402067}]},
    },
}


def test_created_operation_has_defaults_for_absent_fields() -> None:
    """Right after create: done, completedSteps, completedPercent and snapshots are omitted."""
    assert operation_from_json(CREATED) == OperationStatus(
        name=CREATED["name"],
        tuned_model="tunedModels/number-generator-model-dzlmi0gswwqb",
        total_steps=38,
        completed_steps=0,
        completed_percent=0.0,
        snapshots=(),
        done=False,
    )


def test_running_operation_reads_progress_and_snapshots() -> None:
    """``epoch`` is absent while 0; every snapshot keeps its compute time."""
    op = operation_from_json(RUNNING)
    assert (op.done, op.total_steps, op.completed_steps, op.completed_percent) == (False, 19, 8, 42.105263)
    assert op.snapshots == (
        Snapshot(step=1, epoch=0, mean_loss=7.34, compute_time="2024-03-14T15:10:31.123456789Z"),
        Snapshot(step=4, epoch=1, mean_loss=6.97, compute_time="2024-03-14T15:10:35.987654321Z"),
        Snapshot(step=8, epoch=2, mean_loss=5.99, compute_time="2024-03-14T15:10:41.000000001Z"),
    )


def test_snapshots_already_recorded_are_left_out() -> None:
    """A poller that recorded step 4 gets only step 8 decoded; an odd item is still decoded and checked."""
    assert operation_from_json(RUNNING, after_step=4).snapshots == (
        Snapshot(step=8, epoch=2, mean_loss=5.99, compute_time="2024-03-14T15:10:41.000000001Z"),
    )
    odd = {**RUNNING, "metadata": {**RUNNING["metadata"], "snapshots": [{"step": "2", "meanLoss": "x"}]}}
    with pytest.raises(MalformedResponse, match=r"snapshots\[0\]\.meanLoss"):
        operation_from_json(odd, after_step=4)


def test_succeeded_operation_carries_the_model() -> None:
    op = operation_from_json(SUCCEEDED)
    assert op.done and op.error is None
    assert op.model == TunedModelStatus(name=MODEL, state="ACTIVE", snapshots=(Snapshot(19, 5, 1.402067),))


def test_cancelled_operation_carries_the_error() -> None:
    body = {
        "name": OP,
        "metadata": {"tunedModel": MODEL},
        "done": True,
        "error": {"code": 1, "message": "Operation cancelled."},
    }
    op = operation_from_json(body)
    assert (op.done, op.error, op.model) == (True, OperationError(1, "Operation cancelled."), None)


def test_tuned_model_falls_back_to_the_operation_name() -> None:
    """An operation listed without metadata still says which model it belongs to."""
    assert operation_from_json({"name": OP}).tuned_model == MODEL


def test_response_without_name_takes_the_operation_model() -> None:
    body = {**SUCCEEDED, "response": {"state": "ACTIVE"}}
    assert operation_from_json(body).model == TunedModelStatus(name=MODEL, state="ACTIVE")


def test_json_null_reads_as_absent() -> None:
    body = {"name": OP, "done": None, "metadata": {"totalSteps": None, "snapshots": None}, "error": None}
    op = operation_from_json(body)
    assert (op.done, op.total_steps, op.snapshots, op.error) == (False, None, (), None)


def test_numbers_in_their_other_proto3_spellings() -> None:
    """proto3 JSON also writes integers as strings or integral floats, and floats as "NaN"."""
    body = {"name": OP, "metadata": {"totalSteps": "38", "completedSteps": 12.0, "completedPercent": "NaN"}}
    op = operation_from_json(body)
    assert (op.total_steps, op.completed_steps) == (38, 12)
    assert op.completed_percent != op.completed_percent


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (0, "STATE_UNSPECIFIED"),
        (1, "CREATING"),
        (2, "ACTIVE"),
        (3, "FAILED"),
        ("CREATING", "CREATING"),
        ("FAILED", "FAILED"),
        ("SOMETHING_NEW", "SOMETHING_NEW"),
    ],
)
def test_model_state_as_int_or_string(state: object, expected: str) -> None:
    assert tuned_model_from_json({"name": MODEL, "state": state}).state == expected


def test_model_state_absent_is_unspecified() -> None:
    assert tuned_model_from_json({"name": MODEL}) == TunedModelStatus(name=MODEL, state="STATE_UNSPECIFIED")


def test_active_model_from_get_reads_tuning_task_snapshots() -> None:
    """The ACTIVE listing of the Spanish (v1beta3) transcript, shortened."""
    body = {
        "name": "tunedModels/number-generator-model-kctlevca1g3q",
        "baseModel": "models/text-bison-001",
        "state": "ACTIVE",
        "createTime": "2023-09-18T23:43:21.461545Z",
        "tuningTask": {
            "startTime": "2023-09-18T23:43:21.542403958Z",
            "snapshots": [
                {"step": 1, "meanLoss": 7.342065, "computeTime": "2023-09-18T23:43:23.356271969Z"},
                {"step": 2, "epoch": 1, "meanLoss": -1.1145603e-06},
            ],
            "hyperparameters": {"epochCount": 3, "batchSize": 2, "learningRate": 0.001},
        },
        "temperature": 0.7,
    }
    model = tuned_model_from_json(body)
    assert model.snapshots == (
        Snapshot(1, 0, 7.342065, "2023-09-18T23:43:23.356271969Z"),
        Snapshot(2, 1, -1.1145603e-06),
    )


def test_operations_page() -> None:
    ops, token = operations_page_from_json({"operations": [CREATED, RUNNING], "nextPageToken": "abc"})
    assert [op.name for op in ops] == [CREATED["name"], OP] and token == "abc"
    assert operations_page_from_json({}) == ([], "")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"metadata": {}}, "operation.name"),
        ({"name": ""}, "operation.name"),
        ({"name": 7}, "operation.name"),
        ({"name": OP, "done": "yes"}, "operation.done"),
        ({"name": OP, "metadata": []}, "operation.metadata"),
        ({"name": OP, "metadata": {"totalSteps": "many"}}, "operation.metadata.totalSteps"),
        ({"name": OP, "metadata": {"totalSteps": "\u00b2"}}, "operation.metadata.totalSteps"),
        ({"name": OP, "metadata": {"completedSteps": True}}, "operation.metadata.completedSteps"),
        ({"name": OP, "metadata": {"completedPercent": "12%"}}, "operation.metadata.completedPercent"),
        ({"name": OP, "metadata": {"snapshots": {}}}, "operation.metadata.snapshots"),
        ({"name": OP, "metadata": {"snapshots": [{"step": 1}, {"step": 1.5}]}}, "operation.metadata.snapshots[1].step"),
        ({"name": OP, "metadata": {"snapshots": [{"meanLoss": [1]}]}}, "operation.metadata.snapshots[0].meanLoss"),
        ({"name": OP, "done": True, "error": {"code": "one"}}, "operation.error.code"),
        ({"name": OP, "done": True, "response": {"state": 9}}, "operation.response.state"),
    ],
)
def test_wrong_types_name_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(MalformedResponse, match="^" + re.escape(f"{field}: ")):
        operation_from_json(body)


def test_done_without_outcome_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match="has neither"):
        operation_from_json({"name": OP, "done": True})


def test_done_with_both_outcomes_is_malformed() -> None:
    body = {**SUCCEEDED, "error": {"code": 13, "message": "internal"}}
    with pytest.raises(MalformedResponse, match="has both"):
        operation_from_json(body)


def test_not_an_object_is_malformed() -> None:
    with pytest.raises(MalformedResponse, match=r"^operation: expected an object, got a list"):
        operation_from_json([])
    with pytest.raises(MalformedResponse, match=r"^operations\[0\]: expected an object"):
        operations_page_from_json({"operations": ["x"]})


@pytest.mark.parametrize("body", [b'{"name": "tunedMo', b"<html><body>502</body></html>", b"", b"\xff\xfe"])
def test_decode_json_rejects_unreadable_bodies_without_quoting_them(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        decode_json(body)
    assert info.value.http_status is None
    if body:
        assert body.decode(errors="replace") not in str(info.value)


_scalar = st.none() | st.booleans() | st.integers(-5, 50) | st.floats(allow_nan=False) | st.text(max_size=4)
_json = _scalar | st.lists(_scalar, max_size=2) | st.dictionaries(st.text(max_size=4), _scalar, max_size=2)
_snapshot = st.fixed_dictionaries({}, optional={"step": _json, "epoch": _json, "meanLoss": _json, "computeTime": _json})
_metadata = st.fixed_dictionaries(
    {},
    optional={
        "tunedModel": _json,
        "totalSteps": _json,
        "completedSteps": _json,
        "completedPercent": _json,
        "snapshots": st.lists(_snapshot, max_size=2) | _json,
    },
)
_operation = st.fixed_dictionaries(
    {},
    optional={
        "name": st.just(OP) | _json,
        "metadata": _metadata | _json,
        "done": _json,
        "error": st.fixed_dictionaries({}, optional={"code": _json, "message": _json}) | _json,
        "response": st.fixed_dictionaries({}, optional={"name": _json, "state": _json}) | _json,
    },
)


@given(_operation)
def test_any_json_gives_a_status_or_malformed(body: dict[str, Any]) -> None:
    """Whatever the server sends, the parser returns a status or raises MalformedResponse, nothing else."""
    with contextlib.suppress(MalformedResponse):
        assert isinstance(operation_from_json(body), OperationStatus)
