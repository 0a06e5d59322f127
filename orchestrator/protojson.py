"""Proto3 JSON, read defensively: typed field readers shared by the services' wire modules. Pure.

Google's APIs speak proto3 JSON: lowerCamelCase names, fields at their default value *omitted*, int64 as
strings, non-finite floats as strings. Each reader takes the enclosing object, the key, the object's
path (for the message) and the default for an absent key (``None`` as the default of a required field
means "must exist"); a value of the wrong type is a :class:`MalformedResponse` naming the field, never
quoting the value.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrator.errors import MalformedResponse

__all__ = [
    "boolean", "decode_json", "field", "get", "integer", "items", "json_object", "kind", "number", "optional_int",
    "text",
]


def decode_json(body: bytes, http_status: int | None = None) -> Any:
    """Parse a 2xx response body; truncated JSON, HTML or bad UTF-8 is a :class:`MalformedResponse`."""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        # The body itself stays out of the message: it is not the API's words and could be anything.
        message = f"response body is not valid JSON ({len(body)} bytes)"
        raise MalformedResponse(message, http_status=http_status) from None


def get(obj: dict[str, Any], key: str, default: Any) -> Any:
    """``obj[key]``, with JSON ``null`` read as absent, as proto3 JSON parsers do."""
    value = obj.get(key)
    return default if value is None else value


def json_object(value: object, path: str) -> dict[str, Any]:
    """``value`` as a JSON object, or a :class:`MalformedResponse` naming ``path``."""
    if not isinstance(value, dict):
        raise MalformedResponse(f"{path}: expected an object, got {kind(value)}")
    return value


def items(obj: dict[str, Any], key: str, path: str) -> list[Any]:
    value = get(obj, key, [])
    if not isinstance(value, list):
        raise MalformedResponse(f"{field(path, key)}: expected a list, got {kind(value)}")
    return value


def text(obj: dict[str, Any], key: str, path: str, default: str | None) -> str:
    value = get(obj, key, default)
    if value is None:
        raise MalformedResponse(f"{field(path, key)}: missing")
    if not isinstance(value, str):
        raise MalformedResponse(f"{field(path, key)}: expected a string, got {kind(value)}")
    if default is None and not value:
        raise MalformedResponse(f"{field(path, key)}: empty")
    return value


def boolean(obj: dict[str, Any], key: str, path: str) -> bool:
    value = get(obj, key, False)
    if not isinstance(value, bool):
        raise MalformedResponse(f"{field(path, key)}: expected true or false, got {kind(value)}")
    return value


def integer(obj: dict[str, Any], key: str, path: str, default: int) -> int:
    value = optional_int(obj, key, path)
    return default if value is None else value


def optional_int(obj: dict[str, Any], key: str, path: str) -> int | None:
    value = obj.get(key)
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    # proto3 JSON allows integers as strings (int64 always is) and as integral floats.
    if isinstance(value, str) and value.isascii() and value.lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise MalformedResponse(f"{field(path, key)}: expected an integer, got {kind(value)}")


def number(obj: dict[str, Any], key: str, path: str, default: float) -> float:
    value = get(obj, key, default)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    # proto3 JSON writes non-finite floats as the strings "NaN", "Infinity" and "-Infinity".
    if value in ("NaN", "Infinity", "-Infinity"):
        return float(value)
    raise MalformedResponse(f"{field(path, key)}: expected a number, got {kind(value)}")


def field(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def kind(value: object) -> str:
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
