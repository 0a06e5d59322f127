"""The Gemini base models the emulated Vertex AI tunes, and what each allows.

The list is the supervised-tuning table of Google's "About supervised fine-tuning" page as of 2025
([med]); adapter sizes per model are [low] (the page lists 1-16 for Flash models and 1-8 for Pro).
A base model may be named bare (``gemini-2.5-flash``) or as ``publishers/google/models/…``;
the answer echoes the request's spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PUBLISHER_PREFIX: Final = "publishers/google/models/"
_FLASH_SIZES: Final = frozenset(
    {"ADAPTER_SIZE_ONE", "ADAPTER_SIZE_TWO", "ADAPTER_SIZE_FOUR", "ADAPTER_SIZE_EIGHT", "ADAPTER_SIZE_SIXTEEN"}
)
_PRO_SIZES: Final = frozenset({"ADAPTER_SIZE_ONE", "ADAPTER_SIZE_TWO", "ADAPTER_SIZE_FOUR", "ADAPTER_SIZE_EIGHT"})


@dataclass(frozen=True, slots=True)
class TunableModel:
    """A base model and its tuning limits."""

    model_id: str
    adapter_sizes: frozenset[str]
    default_adapter_size: str = "ADAPTER_SIZE_FOUR"


TUNABLE_MODELS: Final = {
    model.model_id: model
    for model in (
        TunableModel("gemini-2.5-pro", _PRO_SIZES),
        TunableModel("gemini-2.5-flash", _FLASH_SIZES),
        TunableModel("gemini-2.5-flash-lite", _FLASH_SIZES),
        TunableModel("gemini-2.0-flash-001", _FLASH_SIZES),
        TunableModel("gemini-2.0-flash-lite-001", _FLASH_SIZES),
    )
}


def tunable_model(name: str) -> TunableModel | None:
    """The catalog entry for ``gemini-…`` or ``publishers/google/models/gemini-…`` (None: not tunable)."""
    return TUNABLE_MODELS.get(name.removeprefix(PUBLISHER_PREFIX))
