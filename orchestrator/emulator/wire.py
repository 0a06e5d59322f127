"""The wire format of the Gemini API as the emulator writes and reads it.

Production is lenient on input (trailing commas, snake_case or camelCase at any depth) and strict in a
particular way on output (proto3 JSON: lowerCamelCase, defaults omitted, float32 values, RFC 3339
timestamps with 6 or 9 fractional digits).  Everything here is pure so that it can be tested without a
server and reused by every route.
"""

from __future__ import annotations

import json
import math
import struct
import time
from typing import Any, Final

from orchestrator.emulator.errors import ApiError, duration

JsonObject = dict[str, Any]
__all__ = ["JsonObject", "dumps", "duration", "f32", "parse_json_body", "timestamp"]

_FLOAT32: Final = struct.Struct("<f")


def strip_trailing_commas(text: str) -> str:
    """Remove commas that directly precede ``}`` or ``]`` outside string literals.

    Google's JSON front end accepts ``{"epoch_count":5,}`` (the tutorial bodies contain it and the real
    server answered 200), so an emulator that rejected it would be stricter than production.
    """
    if "," not in text:
        return text
    out: list[str] = []
    in_string = False
    escaped = False
    pending_comma: int | None = None
    for ch in text:
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch in " \t\r\n":
            out.append(ch)
            continue
        if ch in "}]" and pending_comma is not None:
            out[pending_comma] = ""
        pending_comma = None
        if ch == ",":
            pending_comma = len(out)
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


def parse_json_body(raw: bytes) -> JsonObject:
    """Parse a request body the way the Google front end does: lenient commas, empty body means ``{}``."""
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        return {}
    try:
        try:
            # The common case; the character scan below is only for sloppy bodies.
            value = json.loads(text, parse_constant=_no_constant)
        except json.JSONDecodeError:
            value = json.loads(strip_trailing_commas(text), parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise ApiError.invalid_json(f"Invalid JSON payload received. {exc.msg} at line {exc.lineno}.") from exc
    if not isinstance(value, dict):
        raise ApiError.invalid_json("Invalid JSON payload received. Expected an object.")
    return value


def _no_constant(name: str) -> Any:
    """``NaN``, ``Infinity`` and ``-Infinity`` are not JSON, so the front end refuses them (Python's
    parser would take them); proto JSON spells non-finite doubles as the *strings* "NaN", "Infinity"."""
    raise json.JSONDecodeError(f"Unexpected token {name}", name, 0)


def snake_to_camel(name: str) -> str:
    """``tuning_task`` → ``tuningTask``; camelCase input is returned unchanged."""
    if "_" not in name:
        return name
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def camel_to_snake(name: str) -> str:
    """``tuningTask`` → ``tuning_task`` (used in error messages, which name proto fields)."""
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name)


def f32(value: float) -> float | int:
    """Round to float32 and return the shortest decimal that round-trips, as protobuf's JSON printer does.

    Integral values come back as ``int`` so that ``100`` prints as ``100`` (not ``100.0``).
    """
    if math.isnan(value) or math.isinf(value):
        return value
    as32: float = _FLOAT32.unpack(_FLOAT32.pack(value))[0]
    if as32 == int(as32) and abs(as32) < 1e15:
        return int(as32)
    pack, unpack = _FLOAT32.pack, _FLOAT32.unpack
    for digits in (7, 8):
        candidate = float(f"{as32:.{digits}g}")
        if unpack(pack(candidate))[0] == as32:
            return candidate
    return float(f"{as32:.9g}")


_SECOND_PREFIX: dict[int, str] = {}


def _second_prefix(whole: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` for a Unix second, memoised (snapshots share seconds; strftime is slow)."""
    prefix = _SECOND_PREFIX.get(whole)
    if prefix is None:
        if len(_SECOND_PREFIX) > 65_536:
            _SECOND_PREFIX.clear()
        prefix = _SECOND_PREFIX[whole] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return prefix


def timestamp(seconds: float, digits: int) -> str:
    """RFC 3339 UTC with exactly ``digits`` fractional digits (the real API uses 6 and 9)."""
    scale = 10**digits
    units = round(seconds * scale)
    whole, frac = divmod(units, scale)
    base = _second_prefix(whole)
    if digits <= 0:
        return base + "Z"
    return f"{base}.{frac:0{digits}d}Z"


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON (the real service pretty-prints; clients do not care and compact is cheaper)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
