"""Map a lenient JSON request body onto the TunedModel message, the way Google's JSON front end does.

Field names may be lowerCamelCase or snake_case at any depth (mixed in one body); numbers may be JSON
numbers or numeric strings; ``null`` means "unset".  Unknown names, wrong types and oneof conflicts are
400 INVALID_ARGUMENT with a ``google.rpc.BadRequest`` whose field path uses proto (snake_case) names, as
ESF writes them.  The result uses camelCase keys only, so the rest of the emulator sees one spelling.
"""

from __future__ import annotations

import json
import math
from typing import Any, Final, TypeAlias

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.wire import camel_to_snake, snake_to_camel

#: A field is a scalar type name, a nested message (dict) or a repeated field (one-element list).
Field: TypeAlias = "str | dict[str, Field] | list[Field]"
Schema = dict[str, Field]

FLOAT32_MAX: Final = 3.4028234663852886e38
STATE_NAMES: Final = ("STATE_UNSPECIFIED", "CREATING", "ACTIVE", "FAILED")
#: Enum types by name, each value at its proto number.
ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "state": STATE_NAMES,
    "grantee": ("GRANTEE_TYPE_UNSPECIFIED", "USER", "GROUP", "EVERYONE"),
    "role": ("ROLE_UNSPECIFIED", "OWNER", "WRITER", "READER"),
    # Vertex AI SupervisedHyperParameters.AdapterSize (proto numbers: TWO is 6).
    "adapterSize": (
        "ADAPTER_SIZE_UNSPECIFIED",
        "ADAPTER_SIZE_ONE",
        "ADAPTER_SIZE_FOUR",
        "ADAPTER_SIZE_EIGHT",
        "ADAPTER_SIZE_SIXTEEN",
        "ADAPTER_SIZE_THIRTY_TWO",
        "ADAPTER_SIZE_TWO",
    ),
}
#: The Permission message (gemini-api.md §3.9).
PERMISSION: Final[Schema] = {
    "name": "string",
    "granteeType": "enum:grantee",
    "emailAddress": "string",
    "role": "enum:role",
}

_SNAPSHOT: Final[Schema] = {"step": "int32", "epoch": "int32", "meanLoss": "float", "computeTime": "timestamp"}
_TUNING_CONTENT: Final[Schema] = {"parts": [{"text": "string"}], "role": "string"}


def tuned_model_schema(version: str) -> Schema:
    """The TunedModel message as each API version defines it (v1beta3 lacks a few fields, §4.8)."""
    examples: Schema = {"examples": [{"textInput": "string", "output": "string"}]}
    if version == "v1alpha":
        examples["multiturnExamples"] = [{"systemInstruction": _TUNING_CONTENT, "contents": [_TUNING_CONTENT]}]
    hyper: Schema = {"learningRate": "float", "epochCount": "int32", "batchSize": "int32"}
    model: Schema = {
        "name": "string",
        "baseModel": "string",
        "tunedModelSource": {"tunedModel": "string", "baseModel": "string"},
        "displayName": "string",
        "description": "string",
        "temperature": "float",
        "topP": "float",
        "topK": "int32",
        "state": "enum:state",
        "createTime": "timestamp",
        "updateTime": "timestamp",
        "tuningTask": {
            "startTime": "timestamp",
            "completeTime": "timestamp",
            "snapshots": [_SNAPSHOT],
            "trainingData": {"examples": examples},
            "hyperparameters": hyper,
        },
    }
    if version != "v1beta3":
        hyper["learningRateMultiplier"] = "float"
        model["readerProjectNumbers"] = ["int64"]
    return model


#: (path of the message in camelCase, oneof name, members) — setting two members is a 400.
ONEOFS: Final = (
    ("", "source_model", ("baseModel", "tunedModelSource")),
    ("tuningTask.hyperparameters", "learning_rate_option", ("learningRate", "learningRateMultiplier")),
)


Oneofs = tuple[tuple[str, str, tuple[str, ...]], ...]


def normalize(
    body: dict[str, Any], schema: Schema, root: str = "tuned_model", oneofs: Oneofs = ONEOFS
) -> dict[str, Any]:
    """Validate ``body`` against ``schema`` and return it with camelCase keys and typed values."""
    result = _message(body, schema, root, "")
    for where, oneof, members in oneofs:
        message: Any = result
        for part in filter(None, where.split(".")):
            message = message.get(part, {}) if isinstance(message, dict) else {}
        present = [m for m in members if isinstance(message, dict) and m in message]
        if len(present) > 1:
            at = ".".join([root, *(camel_to_snake(p) for p in filter(None, where.split(".")))])
            raise ApiError.invalid(
                f"Invalid JSON payload received. Oneof field '{oneof}' is already set. Cannot set '{present[1]}'",
                at,
            )
    return result


def _message(value: Any, schema: Schema, path: str, camel_path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ApiError.invalid_json(f"Invalid value at '{path}', {json.dumps(value)[:80]}", path)
    out: dict[str, Any] = {}
    seen: dict[str, str] = {}
    for key, item in value.items():
        name = snake_to_camel(key)
        if name not in schema:
            message = f"Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
            raise ApiError.invalid_json(message, path)
        if name in seen:
            message = f"Invalid JSON payload received. Duplicate field \"{camel_to_snake(name)}\" at '{path}'."
            raise ApiError.invalid_json(message, path)
        seen[name] = key
        if item is None:
            continue
        child = f"{path}.{camel_to_snake(name)}"
        out[name] = _field(item, schema[name], child, f"{camel_path}.{name}")
    return out


def _field(value: Any, spec: Field, path: str, camel_path: str) -> Any:
    if isinstance(spec, list):
        if not isinstance(value, list):
            raise ApiError.invalid_json(
                f"Invalid JSON payload received. Proto field is repeating, cannot start a non-list at '{path}'.",
                path,
            )
        return [_field(item, spec[0], f"{path}[{index}]", camel_path) for index, item in enumerate(value)]
    if isinstance(spec, dict):
        return _message(value, spec, path, camel_path)
    return _scalar(value, spec, path)


def _bad_value(value: Any, kind: str, path: str) -> ApiError:
    return ApiError.invalid_json(f"Invalid value at '{path}' (TYPE_{kind.upper()}), {json.dumps(value)[:80]}", path)


def _scalar(value: Any, kind: str, path: str) -> Any:
    if kind == "map:string":
        if not isinstance(value, dict) or not all(isinstance(item, str) for item in value.values()):
            raise _bad_value(value, "map", path)
        return dict(value)
    if kind == "bool":
        if isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            raise _bad_value(value, kind, path)
        return value
    if kind == "double":
        number = _number(value)
        if number is None or not math.isfinite(number):
            raise _bad_value(value, kind, path)
        return number
    if kind in ("string", "timestamp"):
        if not isinstance(value, str):
            raise _bad_value(value, kind, path)
        return value
    if kind in ("int32", "int64"):
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        bits = 31 if kind == "int32" else 63
        if isinstance(value, int) and not isinstance(value, bool):
            if not -(2**bits) <= value < 2**bits:
                raise _bad_value(value, kind, path)
            return value
        number = _number(value)
        # Finite first: int() of an infinity or a NaN raises instead of comparing.
        if number is None or not math.isfinite(number) or number != int(number) or not -(2**bits) <= number < 2**bits:
            raise _bad_value(value, kind, path)
        return int(number)
    if kind == "float":
        number = _number(value)
        if number is None or not math.isfinite(number) or abs(number) > FLOAT32_MAX:
            raise _bad_value(value, kind, path)
        return float(number)
    if kind.startswith("enum:"):
        names = ENUMS[kind.removeprefix("enum:")]
        if isinstance(value, str) and value in names:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(names):
            return names[value]
        raise _bad_value(value, "enum", path)
    raise AssertionError(f"unknown scalar kind {kind}")


def _number(value: Any) -> float | None:
    """Proto JSON accepts numbers and numeric strings for numeric fields; booleans are not numbers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None
