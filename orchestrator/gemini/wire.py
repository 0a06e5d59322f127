"""Gemini API JSON → the values the scheduler consumes. Pure: no I/O, no clock.

The API speaks proto3 JSON (gemini-api.md §1.3): lowerCamelCase names, fields at their default value
*omitted* (``done`` is absent while an operation runs, ``epoch: 0`` is absent in early snapshots),
enums as strings or, when asked for, as integers. So an absent field means its default here, and only
a field of the wrong type, a missing ``name`` or a ``done`` operation without an outcome is a
:class:`MalformedResponse` — one that names the offending field, so a log line says what was wrong.

Unknown fields are ignored on purpose: the API adds fields over time and a poller must not break.
"""

from __future__ import annotations

import json
from typing import Any, Final

from orchestrator.errors import MalformedResponse
from orchestrator.gemini import OperationError, OperationStatus, Snapshot, TunedModelStatus

__all__ = ["decode_json", "operation_from_json", "operations_page_from_json", "tuned_model_from_json"]

#: ``TunedModel.State`` by number, for responses encoded with ``enum-encoding=int``.
MODEL_STATES: Final = ("STATE_UNSPECIFIED", "CREATING", "ACTIVE", "FAILED")

_OPERATION_INFIX: Final = "/operations/"


def decode_json(body: bytes, http_status: int | None = None) -> Any:
    """Parse a 2xx response body; truncated JSON, HTML or bad UTF-8 is a :class:`MalformedResponse`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        # The body itself stays out of the message: it is not the API's words and could be anything.
        message = f"response body is not valid JSON ({len(body)} bytes)"
        raise MalformedResponse(message, http_status=http_status) from None


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


# Typed field readers. Each takes the enclosing object, the key, the object's path (for the message)
# and the default for an absent key; ``None`` as the default of a required field means "must exist".


def _get(obj: dict[str, Any], key: str, default: Any) -> Any:
    """``obj[key]``, with JSON ``null`` read as absent, as proto3 JSON parsers do."""
    value = obj.get(key)
    return default if value is None else value


def _object(value: object, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedResponse(f"{path}: expected an object, got {_kind(value)}")
    return value


def _list(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = _get(obj, key, [])
    if not isinstance(value, list):
        raise MalformedResponse(f"{_field(path, key)}: expected a list, got {_kind(value)}")
    return value


def _str(obj: dict[str, Any], key: str, path: str, default: str | None) -> str:
    value = _get(obj, key, default)
    if value is None:
        raise MalformedResponse(f"{_field(path, key)}: missing")
    if not isinstance(value, str):
        raise MalformedResponse(f"{_field(path, key)}: expected a string, got {_kind(value)}")
    if default is None and not value:
        raise MalformedResponse(f"{_field(path, key)}: empty")
    return value


def _bool(obj: dict[str, Any], key: str, path: str) -> bool:
    value = _get(obj, key, False)
    if not isinstance(value, bool):
        raise MalformedResponse(f"{_field(path, key)}: expected true or false, got {_kind(value)}")
    return value


def _int(obj: dict[str, Any], key: str, path: str, default: int) -> int:
    value = _optional_int(obj, key, path)
    return default if value is None else value


def _optional_int(obj: dict[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    # proto3 JSON allows integers as strings (int64 always is) and as integral floats.
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise MalformedResponse(f"{_field(path, key)}: expected an integer, got {_kind(value)}")


def _float(obj: dict[str, Any], key: str, path: str, default: float) -> float:
    value = _get(obj, key, default)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    # proto3 JSON writes non-finite floats as the strings "NaN", "Infinity" and "-Infinity".
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    raise MalformedResponse(f"{_field(path, key)}: expected a number, got {_kind(value)}")


def _field(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _kind(value: object) -> str:
    """The JSON type of a value, for messages: never the value itself, which could be large or odd."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
