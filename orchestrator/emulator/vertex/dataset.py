"""A supervised-tuning dataset: JSONL of ``contents`` examples, checked line by line, and its statistics.

The rules (vertex-api.md §5): one JSON object per non-empty line, with ``contents``, a list of turns
``{"role": "user"|"model", "parts": [{"text": ...}]}`` holding at least one model turn, and an optional
``systemInstruction`` (``{"role"?, "parts"}``).  A bad line is refused with its 1-based number.

Token counts follow a documented rule of thumb, not a tokenizer: each text part counts
``ceil(characters / 4)`` tokens (Google quotes ~4 characters per token for Gemini).  Input tokens are the
system instruction's and the user turns', output tokens the model turns'; billable tokens are both,
for one pass over the data ([low]: production bills what its tokenizer counts).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

CHARS_PER_TOKEN: Final = 4
ROLES: Final = frozenset({"user", "model"})
SAMPLE_EXAMPLES: Final = 3


class DatasetError(ValueError):
    """A dataset line that is not a valid example; the message names the line."""


@dataclass(frozen=True, slots=True)
class Example:
    """What the statistics need of one example."""

    input_tokens: int
    output_tokens: int
    characters: int
    messages: int
    first_user: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A parsed dataset: its examples in file order."""

    examples: tuple[Example, ...]

    def __len__(self) -> int:
        return len(self.examples)


def tokens(text: str) -> int:
    """The emulator's token count for one text part."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def _parts(value: Any, where: str) -> list[str]:
    if not isinstance(value, dict):
        raise DatasetError(f"{where} must be an object with parts")
    parts = value.get("parts")
    if not isinstance(parts, list) or not parts:
        raise DatasetError(f"{where}.parts must be a non-empty list")
    texts = []
    for index, part in enumerate(parts):
        text = part.get("text") if isinstance(part, dict) else None
        if not isinstance(text, str):
            raise DatasetError(f"{where}.parts[{index}] must be an object with a string text")
        texts.append(text)
    return texts


def _form_hint(value: dict[str, Any]) -> str:
    """A pointer for the two other formats people paste in by mistake."""
    keys = set(value)
    if keys & {"text_input", "textInput"} or keys == {"input", "output"}:
        return (
            ' (this line is a Gemini API text_input/output pair; Vertex AI wants {"contents": [{"role": "user", '
            '"parts": [{"text": ...}]}, {"role": "model", "parts": [{"text": ...}]}]})'
        )
    if "messages" in keys:
        return " (this line looks like a chat-messages example; Vertex AI wants contents with user and model turns)"
    return ""


def parse_example(line: str) -> Example:
    """One line → an ``Example``; raises ``DatasetError`` saying what is wrong (without the line number)."""
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"not valid JSON ({exc.msg} at column {exc.colno})") from exc
    if not isinstance(value, dict):
        raise DatasetError("an example must be a JSON object")
    contents = value.get("contents")
    if not isinstance(contents, list) or not contents:
        raise DatasetError("contents must be a non-empty list of turns" + _form_hint(value))
    input_tokens = output_tokens = characters = 0
    system = value.get("systemInstruction", value.get("system_instruction"))
    if system is not None:
        for text in _parts(system, "systemInstruction"):
            input_tokens += tokens(text)
            characters += len(text)
    has_model = False
    first_user: dict[str, Any] = {}
    for index, turn in enumerate(contents):
        where = f"contents[{index}]"
        role = turn.get("role") if isinstance(turn, dict) else None
        if role not in ROLES:
            raise DatasetError(f"{where}.role must be 'user' or 'model'")
        texts = _parts(turn, where)
        count = sum(tokens(text) for text in texts)
        characters += sum(len(text) for text in texts)
        if role == "model":
            has_model = True
            output_tokens += count
        else:
            input_tokens += count
            first_user = first_user or {"role": "user", "parts": [{"text": text} for text in texts]}
    if not has_model:
        raise DatasetError("contents needs at least one turn with role 'model'")
    return Example(input_tokens, output_tokens, characters, len(contents), first_user)


def parse_dataset(data: bytes, uri: str, *, max_examples: int) -> Dataset:
    """Every non-empty line of ``data`` as an example; ``DatasetError`` names the first bad line."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DatasetError(f"Dataset {uri} is not UTF-8 text (byte {exc.start}).") from exc
    examples = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            examples.append(parse_example(line))
        except DatasetError as exc:
            raise DatasetError(f"Dataset {uri} line {number}: {exc}.") from exc
        if len(examples) > max_examples:
            raise DatasetError(f"Dataset {uri} has more than {max_examples} examples.")
    if not examples:
        raise DatasetError(f"Dataset {uri} has no examples.")
    return Dataset(tuple(examples))


def _percentile(ordered: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile of a sorted sequence."""
    rank = max(1, math.ceil(fraction * len(ordered)))
    return float(ordered[rank - 1])


def distribution(values: Sequence[int]) -> dict[str, Any]:
    """A ``SupervisedTuningDatasetDistribution`` (int64 sums as strings, doubles as numbers; no buckets)."""
    ordered = sorted(values)
    total = sum(ordered)
    return {
        "sum": str(total),
        "min": ordered[0],
        "max": ordered[-1],
        "mean": total / len(ordered),
        "median": statistics.median(ordered),
        "p5": _percentile(ordered, 0.05),
        "p95": _percentile(ordered, 0.95),
        "billableSum": str(total),
    }


def data_stats(dataset: Dataset, step_count: int) -> dict[str, Any]:
    """``tuningDataStats`` for a job over ``dataset`` that will run ``step_count`` steps in all."""
    examples = dataset.examples
    characters = sum(example.characters for example in examples)
    billable = sum(example.input_tokens + example.output_tokens for example in examples)
    return {
        "supervisedTuningDataStats": {
            "tuningDatasetExampleCount": str(len(examples)),
            "totalTuningCharacterCount": str(characters),
            "totalBillableCharacterCount": str(characters),
            "tuningStepCount": str(step_count),
            "userInputTokenDistribution": distribution([example.input_tokens for example in examples]),
            "userOutputTokenDistribution": distribution([example.output_tokens for example in examples]),
            "userMessagePerExampleDistribution": distribution([example.messages for example in examples]),
            "userDatasetExamples": [example.first_user for example in examples[:SAMPLE_EXAMPLES] if example.first_user],
            "totalBillableTokenCount": str(billable),
        }
    }
