"""Gemini API JSON → the values the scheduler consumes. Pure: no I/O, no clock.

The API speaks proto3 JSON (gemini-api.md §1.3): lowerCamelCase names, fields at their default value
*omitted* (``done`` is absent while an operation runs, ``epoch: 0`` is absent in early snapshots),
enums as strings or, when asked for, as integers. So an absent field means its default here, and only
a field of the wrong type, a missing ``name`` or a ``done`` operation without an outcome is a
:class:`MalformedResponse` — one that names the offending field, so a log line says what was wrong.

Unknown fields are ignored on purpose: the API adds fields over time and a poller must not break.
"""

from __future__ import annotations

from typing import Any, Final

from orchestrator.errors import MalformedResponse
from orchestrator.gemini import OperationError, OperationStatus, Snapshot, TunedModelStatus
from orchestrator.protojson import boolean as _bool
from orchestrator.protojson import decode_json
from orchestrator.protojson import get as _get
from orchestrator.protojson import integer as _int
from orchestrator.protojson import items as _list
from orchestrator.protojson import json_object as _object
from orchestrator.protojson import kind as _kind
from orchestrator.protojson import number as _float
from orchestrator.protojson import optional_int as _optional_int
from orchestrator.protojson import text as _str

__all__ = ["decode_json", "operation_from_json", "operations_page_from_json", "tuned_model_from_json"]

#: ``TunedModel.State`` by number, for responses encoded with ``enum-encoding=int``.
MODEL_STATES: Final = ("STATE_UNSPECIFIED", "CREATING", "ACTIVE", "FAILED")

_OPERATION_INFIX: Final = "/operations/"


def operation_from_json(data: object, *, after_step: int = 0) -> OperationStatus:
    """An ``Operation`` of ``tunedModels.create``, as returned by create, get and list.

    Snapshots of steps up to ``after_step`` are left out undecoded: a poller has recorded them
    already, and a long tuning lists thousands of them in every answer.
    """
    return _operation(data, "operation", after_step)


def operations_page_from_json(data: object) -> tuple[list[OperationStatus], str]:
    """A ``ListOperationsResponse``: the page's operations and the next page token (``""`` on the last)."""
    obj = _object(data, "response")
    items = _list(obj, "operations", "")
    operations = [_operation(item, f"operations[{i}]") for i, item in enumerate(items)]
    return operations, _str(obj, "nextPageToken", "", "")


def tuned_model_from_json(data: object) -> TunedModelStatus:
    """A ``TunedModel`` as returned by ``GET /v1beta/tunedModels/{id}``."""
    return _tuned_model(data, "tunedModel", None)


def _operation(data: object, path: str, after_step: int = 0) -> OperationStatus:
    obj = _object(data, path)
    name = _str(obj, "name", path, None)
    meta_path = f"{path}.metadata"
    metadata = _object(_get(obj, "metadata", {}), meta_path)
    # The metadata names the tuned model; an operation name ``tunedModels/x/operations/y`` does too,
    # which covers operations listed without metadata.
    tuned_model = _str(metadata, "tunedModel", meta_path, "") or name.partition(_OPERATION_INFIX)[0]
    total_steps = _optional_int(metadata, "totalSteps", meta_path)
    done = _bool(obj, "done", path)
    raw_error, raw_response = _get(obj, "error", None), _get(obj, "response", None)
    error = None if raw_error is None else _operation_error(raw_error, f"{path}.error")
    model = None if raw_response is None else _tuned_model(raw_response, f"{path}.response", tuned_model)
    if done and (error is None) == (model is None):
        problem = "has neither" if error is None else "has both"
        raise MalformedResponse(f"{path}: done operation {problem} 'response' and 'error'")
    return OperationStatus(
        name=name,
        tuned_model=tuned_model,
        total_steps=total_steps,
        completed_steps=_int(metadata, "completedSteps", meta_path, 0),
        completed_percent=_float(metadata, "completedPercent", meta_path, 0.0),
        snapshots=_snapshots(metadata, meta_path, after_step),
        done=done,
        error=error,
        model=model,
    )


def _operation_error(data: object, path: str) -> OperationError:
    obj = _object(data, path)
    return OperationError(code=_int(obj, "code", path, 0), message=_str(obj, "message", path, ""))


def _tuned_model(data: object, path: str, default_name: str | None) -> TunedModelStatus:
    obj = _object(data, path)
    name = _str(obj, "name", path, default_name)
    task_path = f"{path}.tuningTask"
    task = _object(_get(obj, "tuningTask", {}), task_path)
    return TunedModelStatus(name=name, state=_state(obj, path), snapshots=_snapshots(task, task_path))


def _state(obj: dict[str, Any], path: str) -> str:
    value = _get(obj, "state", MODEL_STATES[0])
    if isinstance(value, str):
        # A name we do not know yet is passed on, not rejected: the scheduler treats it as "not done".
        return value
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(MODEL_STATES):
        return MODEL_STATES[value]
    raise MalformedResponse(f"{path}.state: expected a state name or 0..3, got {_kind(value)}")


def _snapshots(obj: dict[str, Any], path: str, after_step: int = 0) -> tuple[Snapshot, ...]:
    return tuple(
        _snapshot(item, f"{path}.snapshots[{i}]")
        for i, item in enumerate(_list(obj, "snapshots", path))
        if not _step_at_most(item, after_step)
    )


def _step_at_most(item: object, step: int) -> bool:
    """Whether a snapshot is plainly one of an already recorded step (anything odd is decoded, and checked)."""
    if not isinstance(item, dict):
        return False
    value = item.get("step")  # absent (step 0 in proto3) is decoded: it is checked, then ignored
    return type(value) is int and value <= step


def _snapshot(data: object, path: str) -> Snapshot:
    if type(data) is dict:  # the shape every answer has: read without the checks (~30 per poll)
        step, epoch = data.get("step", 0), data.get("epoch", 0)
        loss, compute_time = data.get("meanLoss", 0.0), data.get("computeTime", "")
        if type(step) is int and type(epoch) is int and type(loss) is float and type(compute_time) is str:
            return Snapshot(step=step, epoch=epoch, mean_loss=loss, compute_time=compute_time or None)
    obj = _object(data, path)
    compute_time = _str(obj, "computeTime", path, "")
    return Snapshot(
        step=_int(obj, "step", path, 0),
        epoch=_int(obj, "epoch", path, 0),
        mean_loss=_float(obj, "meanLoss", path, 0.0),
        compute_time=compute_time or None,
    )
