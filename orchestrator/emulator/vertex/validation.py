"""A ``tuningJobs.create`` body checked as Vertex AI checks it, resolved into a ``TuningSpec``.

Field names may be camelCase or snake_case (Google's JSON front end takes both); unknown fields, wrong
types and oneof conflicts are 400s naming the proto path.  The rules: a base model from the catalog, a
``gs://`` training dataset that exists in the emulated Cloud Storage and is valid JSONL (the error
names the line), an optional validation dataset likewise (at most 5,000 examples), a display name of
at most 128 characters, labels as Vertex AI allows them, an adapter size the model supports, an epoch
count of 1-100 and a positive learning-rate multiplier ([low] for the last two bounds).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.schema import Schema, normalize
from orchestrator.emulator.storage.objects import ObjectStore
from orchestrator.emulator.vertex.catalog import tunable_model
from orchestrator.emulator.vertex.dataset import Dataset, DatasetError, parse_dataset

MAX_DISPLAY_NAME: Final = 128
MAX_LABELS: Final = 64
MAX_LABEL_LENGTH: Final = 64
MAX_EPOCHS: Final = 100
MAX_TRAINING_EXAMPLES: Final = 10_000_000
MAX_VALIDATION_EXAMPLES: Final = 5_000
DEFAULT_EPOCHS: Final = 10
DEFAULT_LEARNING_RATE_MULTIPLIER: Final = 1.0
GCS_URI: Final = re.compile(r"gs://([a-z0-9][a-z0-9._-]{1,220}[a-z0-9])/(.+)")
_SPEC: Final = "tuning_job.supervised_tuning_spec"

#: The TuningJob message as a create body may carry it (output-only fields are accepted and ignored).
TUNING_JOB: Final[Schema] = {
    "name": "string",
    "tunedModelDisplayName": "string",
    "description": "string",
    "baseModel": "string",
    "preTunedModel": {"tunedModelName": "string", "checkpointId": "string", "baseModel": "string"},
    "supervisedTuningSpec": {
        "trainingDatasetUri": "string",
        "validationDatasetUri": "string",
        "hyperParameters": {
            "epochCount": "int64",
            "learningRateMultiplier": "double",
            "adapterSize": "enum:adapterSize",
        },
        "exportLastCheckpointOnly": "bool",
    },
    "state": "string",
    "createTime": "timestamp",
    "startTime": "timestamp",
    "endTime": "timestamp",
    "updateTime": "timestamp",
    "labels": "map:string",
    "experiment": "string",
    "encryptionSpec": {"kmsKeyName": "string"},
    "serviceAccount": "string",
}
ONEOFS: Final = (("", "source_model", ("baseModel", "preTunedModel")),)


@dataclass(frozen=True, slots=True)
class TuningSpec:
    """A valid create request with defaults filled in, and its parsed datasets."""

    base_model: str
    display_name: str
    description: str
    labels: tuple[tuple[str, str], ...]
    training_uri: str
    validation_uri: str
    epochs: int
    learning_rate_multiplier: float
    adapter_size: str
    export_last_checkpoint_only: bool
    service_account: str
    kms_key_name: str
    training: Dataset
    validation: Dataset | None


def _invalid(message: str, field: str) -> ApiError:
    return ApiError.invalid(message, field)


def check_labels(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """Vertex AI's label rules: ≤ 64 labels; keys 1-64 and values ≤ 64 of lowercase letters, digits, ``_-``;
    keys start with a letter (international lowercase letters are allowed, as the proto says)."""
    if len(labels) > MAX_LABELS:
        raise _invalid(f"At most {MAX_LABELS} labels are allowed; got {len(labels)}.", "tuning_job.labels")
    for key, value in labels.items():
        if not key or len(key) > MAX_LABEL_LENGTH or not key[0].islower():
            raise _invalid(
                f"Label key '{key}' must be 1-{MAX_LABEL_LENGTH} characters and start with a lowercase letter.",
                "tuning_job.labels",
            )
        if len(value) > MAX_LABEL_LENGTH:
            raise _invalid(
                f"Label value of '{key}' must be at most {MAX_LABEL_LENGTH} characters; got {len(value)}.",
                "tuning_job.labels",
            )
        for text, what in ((key, "key"), (value, "value")):
            if any(not (ch.islower() or ch.isdigit() or ch in "_-") for ch in text):
                raise _invalid(
                    f"Label {what} '{text}' may contain only lowercase letters, digits, underscores and dashes.",
                    "tuning_job.labels",
                )
    return tuple(sorted(labels.items()))


def _dataset(store: ObjectStore, uri: str, field: str, max_examples: int) -> Dataset:
    """The parsed dataset a ``gs://`` URI names, or the 400 that says why it cannot be used."""
    if not GCS_URI.fullmatch(uri):
        raise _invalid(f"Dataset URI '{uri}' must be a Cloud Storage URI of the form gs://bucket/object.", field)
    stored = store.read_uri(uri)
    if stored is None:
        raise _invalid(f"Dataset {uri} does not exist or cannot be read.", field)
    try:
        return parse_dataset(stored.data, uri, max_examples=max_examples)
    except DatasetError as exc:
        raise _invalid(str(exc), field) from exc


def build_tuning_spec(body: dict[str, Any], store: ObjectStore) -> TuningSpec:
    """Check a create body (as parsed JSON) and resolve defaults; raises ``ApiError`` (400)."""
    job = normalize(body, TUNING_JOB, "tuning_job", ONEOFS)
    if "preTunedModel" in job:
        raise _invalid("Continuous tuning (pre_tuned_model) is not supported by the emulator.", "tuning_job")
    base_model = job.get("baseModel", "")
    model = tunable_model(base_model)
    if model is None:
        raise _invalid(
            f"Base model {base_model or '(none)'} is not supported for supervised tuning.", "tuning_job.base_model"
        )
    display_name = job.get("tunedModelDisplayName", "")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise _invalid(
            f"tuned_model_display_name must be at most {MAX_DISPLAY_NAME} characters; got {len(display_name)}.",
            "tuning_job.tuned_model_display_name",
        )
    labels = check_labels(job.get("labels", {}))
    spec = job.get("supervisedTuningSpec")
    if spec is None:
        raise _invalid("A supervised_tuning_spec is required.", "tuning_job.supervised_tuning_spec")
    hyper = spec.get("hyperParameters", {})
    epochs = hyper.get("epochCount", DEFAULT_EPOCHS)
    if not 1 <= epochs <= MAX_EPOCHS:
        raise _invalid(
            f"epoch_count must be between 1 and {MAX_EPOCHS}; got {epochs}.", f"{_SPEC}.hyper_parameters.epoch_count"
        )
    multiplier = hyper.get("learningRateMultiplier", DEFAULT_LEARNING_RATE_MULTIPLIER)
    if multiplier <= 0:
        raise _invalid(
            f"learning_rate_multiplier must be positive; got {multiplier}.",
            f"{_SPEC}.hyper_parameters.learning_rate_multiplier",
        )
    adapter = hyper.get("adapterSize", "ADAPTER_SIZE_UNSPECIFIED")
    if adapter == "ADAPTER_SIZE_UNSPECIFIED":
        adapter = model.default_adapter_size
    if adapter not in model.adapter_sizes:
        allowed = ", ".join(sorted(model.adapter_sizes))
        raise _invalid(
            f"Adapter size {adapter} is not supported for {base_model}; use one of {allowed}.",
            f"{_SPEC}.hyper_parameters.adapter_size",
        )
    training_uri = spec.get("trainingDatasetUri", "")
    if not training_uri:
        raise _invalid("training_dataset_uri is required.", f"{_SPEC}.training_dataset_uri")
    training = _dataset(store, training_uri, f"{_SPEC}.training_dataset_uri", MAX_TRAINING_EXAMPLES)
    validation_uri = spec.get("validationDatasetUri", "")
    validation = (
        _dataset(store, validation_uri, f"{_SPEC}.validation_dataset_uri", MAX_VALIDATION_EXAMPLES)
        if validation_uri
        else None
    )
    return TuningSpec(
        base_model=base_model,
        display_name=display_name,
        description=job.get("description", ""),
        labels=labels,
        training_uri=training_uri,
        validation_uri=validation_uri,
        epochs=epochs,
        learning_rate_multiplier=multiplier,
        adapter_size=adapter,
        export_last_checkpoint_only=spec.get("exportLastCheckpointOnly", False),
        service_account=job.get("serviceAccount", ""),
        kms_key_name=job.get("encryptionSpec", {}).get("kmsKeyName", ""),
        training=training,
        validation=validation,
    )
