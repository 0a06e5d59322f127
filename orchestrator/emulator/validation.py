"""The rules of gemini-api.md §7 applied to a create request, and the defaults of §7.2.

Input is the camelCase dict from ``schema.normalize``; output is a ``CreateSpec`` with every default
resolved, or an ``ApiError`` carrying the status the real service uses (400 for bad arguments, 404 for
an unknown base model).  Production often says only "Request contains an invalid argument."; the
emulator names the field and the limit instead, which a client should treat the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.emulator.catalog import BASE_MODELS, BaseModel
from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.settings import EmulatorSettings

TUNED_MODEL_ID: Final = re.compile(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?")
MAX_DISPLAY_NAME_BYTES: Final = 40
MAX_INPUT_CHARS: Final = 40_000
MAX_OUTPUT_CHARS: Final = 5_000


@dataclass(frozen=True, slots=True)
class CreateSpec:
    """A validated create request with defaults filled in."""

    version: str
    base: BaseModel
    source_model: str | None
    display_name: str
    description: str
    temperature: float
    top_p: float
    top_k: int
    examples: tuple[tuple[str, str], ...]
    epochs: int
    batch_size: int
    learning_rate: float | None
    learning_rate_multiplier: float | None
    reader_project_numbers: tuple[int, ...]


def check_tuned_model_id(value: str) -> None:
    """400 unless ``value`` is a valid user-chosen id (§6.1)."""
    if not TUNED_MODEL_ID.fullmatch(value):
        raise ApiError.invalid(
            f"Invalid tuned model id '{value}': it must be 1-40 characters of lowercase letters, digits and "
            "hyphens, start with a letter and end with a letter or digit.",
            "tuned_model_id",
        )


def check_display_name(value: str) -> None:
    """400 when the display name exceeds 40 bytes of UTF-8 (production seems to count bytes, §7.1)."""
    if len(value.encode()) > MAX_DISPLAY_NAME_BYTES:
        raise ApiError.invalid(
            f"display_name must be at most {MAX_DISPLAY_NAME_BYTES} bytes; got {len(value.encode())}.",
            "tuned_model.display_name",
        )


def check_sampling(model: dict[str, Any]) -> None:
    """400 for sampling parameters outside the ranges the base models allow."""
    temperature = model.get("temperature")
    if temperature is not None and not 0.0 <= temperature <= 2.0:
        raise ApiError.invalid("temperature must be within [0.0, 2.0].", "tuned_model.temperature")
    top_p = model.get("topP")
    if top_p is not None and not 0.0 <= top_p <= 1.0:
        raise ApiError.invalid("top_p must be within [0.0, 1.0].", "tuned_model.top_p")
    top_k = model.get("topK")
    if top_k is not None and top_k < 0:
        raise ApiError.invalid("top_k must not be negative.", "tuned_model.top_k")


def _resolve_base(
    model: dict[str, Any], version: str, settings: EmulatorSettings, source_base: Callable[[str], BaseModel]
) -> tuple[BaseModel, str | None]:
    source = model.get("tunedModelSource")
    if source is not None:
        if not settings.allow_tuned_model_source:
            raise ApiError.invalid(
                "Tuning a tuned model is not supported; use a base model.", "tuned_model.tuned_model_source"
            )
        source_name = str(source.get("tunedModel", ""))
        return source_base(source_name), source_name
    name = model.get("baseModel")
    if not name:
        raise ApiError.invalid("base_model is required.", "tuned_model.base_model")
    base = BASE_MODELS.get(name)
    if base is None:
        raise ApiError(
            "NOT_FOUND",
            f"{name} is not found for API version {version}, or is not supported for createTunedModel. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    if not base.tunable:
        raise ApiError.invalid(f"Base model {name} does not support tuning.", "tuned_model.base_model")
    return base, None


def _examples(task: dict[str, Any], settings: EmulatorSettings) -> tuple[tuple[str, str], ...]:
    data = task.get("trainingData")
    if not data:
        raise ApiError.invalid("tuning_task.training_data is required.", "tuned_model.tuning_task.training_data")
    container = data.get("examples") or {}
    if container.get("multiturnExamples"):
        raise ApiError.invalid(
            "Multi-turn examples are not supported for this base model; use text_input/output pairs.",
            "tuned_model.tuning_task.training_data.examples.multiturn_examples",
        )
    raw = container.get("examples") or []
    if len(raw) < settings.min_examples:
        raise ApiError.invalid(
            f"The training dataset must contain at least {settings.min_examples} example(s); got {len(raw)}.",
            "tuned_model.tuning_task.training_data.examples.examples",
        )
    if len(raw) > settings.max_examples:
        raise ApiError.invalid(
            f"The training dataset may contain at most {settings.max_examples} examples; got {len(raw)}.",
            "tuned_model.tuning_task.training_data.examples.examples",
        )
    out = []
    for index, example in enumerate(raw):
        where = f"tuned_model.tuning_task.training_data.examples.examples[{index}]"
        text_input, output = example.get("textInput", ""), example.get("output", "")
        if not text_input:
            raise ApiError.invalid(f"Example {index} has no text_input.", f"{where}.text_input")
        if not output:
            raise ApiError.invalid(f"Example {index} has no output.", f"{where}.output")
        if len(text_input) > MAX_INPUT_CHARS:
            raise ApiError.invalid(
                f"Example {index}: text_input is {len(text_input)} characters; the limit is {MAX_INPUT_CHARS}.",
                f"{where}.text_input",
            )
        if len(output) > MAX_OUTPUT_CHARS:
            raise ApiError.invalid(
                f"Example {index}: output is {len(output)} characters; the limit is {MAX_OUTPUT_CHARS}.",
                f"{where}.output",
            )
        out.append((text_input, output))
    return tuple(out)


def default_hyperparameters(version: str, examples: int, threshold: int) -> tuple[int, int, float]:
    """(epochs, batch size, learning rate) defaults; the size threshold is not documented (§7.2)."""
    small = examples < threshold
    if version == "v1beta3":
        return 10, 16 if small else 64, 0.002 if small else 0.0002
    return 5, 4 if small else 16, 0.001 if small else 0.0002


def build_create_spec(
    model: dict[str, Any],
    version: str,
    settings: EmulatorSettings,
    source_base: Callable[[str], BaseModel],
) -> CreateSpec:
    """Validate a normalised TunedModel body and resolve every default.

    ``source_base`` maps a ``tunedModelSource.tunedModel`` name to its base model (404 when unknown);
    sampling defaults then come from that base.
    """
    base, source = _resolve_base(model, version, settings, source_base)
    display_name = model.get("displayName", "")
    check_display_name(display_name)
    check_sampling(model)
    task = model.get("tuningTask")
    if not task:
        raise ApiError.invalid("tuning_task is required.", "tuned_model.tuning_task")
    examples = _examples(task, settings)
    hyper = task.get("hyperparameters", {})
    epochs_default, batch_default, lr_default = default_hyperparameters(
        version, len(examples), settings.default_size_threshold
    )
    epochs = hyper.get("epochCount", epochs_default)
    batch = hyper.get("batchSize", batch_default)
    where = "tuned_model.tuning_task.hyperparameters"
    if epochs <= 0:
        raise ApiError.invalid("epoch_count must be positive.", f"{where}.epoch_count")
    if batch <= 0:
        raise ApiError.invalid("batch_size must be positive.", f"{where}.batch_size")
    rate, multiplier = hyper.get("learningRate"), hyper.get("learningRateMultiplier")
    if rate is not None and rate <= 0:
        raise ApiError.invalid("learning_rate must be positive.", f"{where}.learning_rate")
    if multiplier is not None and multiplier <= 0:
        raise ApiError.invalid("learning_rate_multiplier must be positive.", f"{where}.learning_rate_multiplier")
    if rate is None and multiplier is None:
        rate = lr_default
    return CreateSpec(
        version=version,
        base=base,
        source_model=source,
        display_name=display_name,
        description=model.get("description", ""),
        temperature=model.get("temperature", base.temperature),
        top_p=model.get("topP", base.top_p),
        top_k=model.get("topK", base.top_k),
        examples=examples,
        epochs=epochs,
        batch_size=batch,
        learning_rate=rate,
        learning_rate_multiplier=multiplier,
        reader_project_numbers=tuple(model.get("readerProjectNumbers", ())),
    )
