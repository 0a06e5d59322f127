"""Job files for Vertex AI: bytes in, a :class:`JobSpec` whose body is the document the Vertex backend submits.

A daemon whose ``[api] backend`` is ``"vertex"`` takes two forms of job file:

- **a Vertex job file**: the ``tuningJobs.create`` body (a ``TuningJob``) as Google documents it, snake_case
  or camelCase, plus our ``orchestrator`` section. The training data is either
  ``supervised_tuning_spec.training_dataset_uri`` (a ``gs://`` JSONL file, used as is) or inline, under
  ``orchestrator.training_examples`` (and ``orchestrator.validation_examples``): each item a Vertex
  ``contents`` example or the tutorial's ``{"text_input", "output"}`` pair.
- **a tutorial-format file** (``tuning_task``…, the Gemini API body): validated exactly as the Gemini
  backend validates it, then converted (:func:`converted_tutorial_job`).

The result's ``body`` is the stored document of the Vertex contract (HELPERS.md): ``{"tuningJob": {camelCase
TuningJob}, "trainingExamples": [...], "validationExamples": [...]}``; the backend writes the examples as
JSONL (:func:`jsonl`), uploads them and completes ``tuningJob`` with their URIs and its own label.

What the service would refuse is refused here, with the file, the field path and the example index:
vertex-api.md and Google's "About supervised fine-tuning for Gemini models" / "Prepare supervised
fine-tuning data" give the rules. The reading bounds (size, encoding, depth, duplicate keys) are
:func:`orchestrator.spec.read_document`'s, the same for every form. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from orchestrator.errors import SpecError
from orchestrator.spec import (
    DEFAULT_MAX_FILE_BYTES,
    MAX_LABEL_CHARS,
    ORCHESTRATOR_FIELDS,
    TUTORIAL_VOCABULARY,
    FieldReader,
    JobSpec,
    Vocabulary,
    cyclic_gc_paused,
    file_job_key,
    read_document,
    tutorial_job,
)

#: ``tunedModelDisplayName``: "up to 128 characters long and can consist of any UTF-8 characters".
MAX_DISPLAY_NAME_CHARS: Final = 128
#: Labels on one Google Cloud resource; the backend adds :data:`JOB_LABEL`, so a file may give one fewer.
MAX_VERTEX_LABELS: Final = 64
#: The label the backend puts on every tuning job it creates (its own job id), to find it after a crash.
JOB_LABEL: Final = "orchestrator-job"
#: "Maximum validation dataset size: 5000 examples" (every current Gemini model).
MAX_VALIDATION_EXAMPLES: Final = 5_000
#: "Maximum training dataset size: 1M text-only examples".
MAX_TRAINING_EXAMPLES: Final = 1_000_000
#: "Maximum training dataset file size: 1GB for JSONL" (read as 10^9 bytes, the stricter reading).
MAX_JSONL_BYTES: Final = 1_000_000_000
#: More JSONL bytes an example can take than its text in the job file: a pair's conversion into two
#: turns adds 62 (``{"contents":[{"parts":[{"text":…}],"role":"user"},…]}`` against
#: ``{"text_input":…,"output":…}``), plus the newline; everything else only shrinks when compacted.
_JSONL_GROWTH_PER_EXAMPLE: Final = 64

#: Gemini models Google documents as tunable on Vertex AI, with the adapter sizes each takes. A newer
#: *stable* Gemini id (``gemini-3.5-flash``) is accepted too, with every size: Google adds models faster
#: than this table can follow, and the service has the last word on those.
DOCUMENTED_MODELS: Final[Mapping[str, frozenset[int]]] = {
    "gemini-2.5-pro": frozenset({1, 2, 4, 8}),
    "gemini-2.5-flash": frozenset({1, 2, 4, 8, 16}),
    "gemini-2.5-flash-lite": frozenset({1, 2, 4, 8, 16}),
    "gemini-2.0-flash-001": frozenset({1, 2, 4, 8}),
    "gemini-2.0-flash-lite-001": frozenset({1, 2, 4, 8}),
}
#: Once tunable, no longer.
RETIRED_MODELS: Final = frozenset({"gemini-1.0-pro-002", "gemini-1.5-pro-002", "gemini-1.5-flash-002"})
#: A stable Gemini text model: ``gemini-<version>-<pro|flash|flash-lite>[-<three digits>]``. Previews,
#: experiments, ``-latest`` aliases and special-purpose models (image, TTS, live) are not tuned.
STABLE_GEMINI_MODEL: Final = re.compile(r"gemini-[0-9]+(\.[0-9]+)?-(pro|flash|flash-lite)(-[0-9]{3})?")
ADAPTER_SIZES: Final[Mapping[str, int]] = {
    "ADAPTER_SIZE_ONE": 1,
    "ADAPTER_SIZE_TWO": 2,
    "ADAPTER_SIZE_FOUR": 4,
    "ADAPTER_SIZE_EIGHT": 8,
    "ADAPTER_SIZE_SIXTEEN": 16,
    "ADAPTER_SIZE_THIRTY_TWO": 32,
}
_ADAPTER_SIZE_DEFAULT: Final = "ADAPTER_SIZE_UNSPECIFIED"
#: The publisher's resource prefix a base model may also be named with (``publishers/google/models/gemini-…``).
PUBLISHER_PREFIX: Final = "publishers/google/models/"
_EXAMPLE_MODEL: Final = 'e.g. "gemini-2.5-flash"'

#: ``gs://bucket/object``: a bucket name as Cloud Storage allows it, and a non-empty object name.
GCS_URI: Final = re.compile(r"gs://[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]/[^\s]+")
_SERVICE_ACCOUNT: Final = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_KMS_KEY: Final = re.compile(r"projects/[^/\s]+/locations/[^/\s]+/keyRings/[^/\s]+/cryptoKeys/[^/\s]+")
_INT64_MAX: Final = 2**63 - 1
_LABEL_ASCII: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-")

_TOP_FIELDS: Final = frozenset(
    {
        "base_model",
        "tuned_model_display_name",
        "description",
        "labels",
        "supervised_tuning_spec",
        "service_account",
        "encryption_spec",
        "orchestrator",
    }
)
_TOP_OUTPUT_ONLY: Final = frozenset(
    {
        "state",
        "create_time",
        "start_time",
        "end_time",
        "update_time",
        "error",
        "experiment",
        "tuned_model",
        "tuning_data_stats",
        "pipeline_job",
        "evaluate_dataset_runs",
        "tuning_job_state",
        "tuning_job_metadata",
    }
)
#: Fields of the API that this daemon does not take, and why (the general "unknown field" would mislead).
_TOP_REFUSED: Final[Mapping[str, str]] = {
    "name": "is output only: Vertex AI names the job when it creates it; to find the job, use "
    "orchestrator.job_key or labels",
    "pre_tuned_model": "continuing from a tuned model is not supported; the orchestrator tunes base models",
    "custom_base_model": "is only for open models; Gemini models are tuned from base_model",
    "output_uri": "is only for open models; Vertex AI keeps a tuned Gemini model in its Model Registry",
    "distillation_spec": "only supervised tuning (supervised_tuning_spec) is supported",
    "partner_model_tuning_spec": "only supervised tuning of Gemini models (supervised_tuning_spec) is supported",
    "veo_tuning_spec": "only supervised tuning of Gemini models (supervised_tuning_spec) is supported",
    "preference_optimization_spec": "only supervised tuning (supervised_tuning_spec) is supported",
    "reinforcement_tuning_spec": "only supervised tuning (supervised_tuning_spec) is supported",
}
_SPEC_FIELDS: Final = frozenset(
    {"training_dataset_uri", "validation_dataset_uri", "hyper_parameters", "export_last_checkpoint_only"}
)
_SPEC_REFUSED: Final[Mapping[str, str]] = {
    "evaluation_config": "is not supported by the orchestrator; the validation set's loss is recorded instead",
    "tuning_mode": "is only for open models; Gemini models are tuned with adapters (hyper_parameters.adapter_size)",
}
_HYPER_FIELDS: Final = frozenset({"epoch_count", "learning_rate_multiplier", "adapter_size"})
_HYPER_REFUSED: Final[Mapping[str, str]] = {
    "learning_rate": "is only for open models; for Gemini models Vertex AI takes learning_rate_multiplier "
    "(a multiple of the model's own rate)",
    "batch_size": "is only for open models; Vertex AI chooses the batch size of Gemini models",
}
_ENCRYPTION_FIELDS: Final = frozenset({"kms_key_name"})
_EXTRA_ORCHESTRATOR_FIELDS: Final = frozenset({"training_examples", "validation_examples"})
_EXAMPLE_FIELDS: Final = frozenset({"contents", "system_instruction", "text_input", "output"})
_CONTENT_FIELDS: Final = frozenset({"role", "parts"})
#: The kinds of ``Part`` other than text: valid in a JSONL file the user uploads, not inline here.
_OTHER_PARTS: Final = frozenset(
    {
        "inline_data",
        "file_data",
        "function_call",
        "function_response",
        "executable_code",
        "code_execution_result",
        "video_metadata",
        "thought",
        "thought_signature",
    }
)
_PART_FIELDS: Final = _OTHER_PARTS | {"text"}
_ROLES: Final = ("user", "model")

#: Field names of both forms (a Vertex daemon reads either) and the two objects whose keys are label names.
VERTEX_VOCABULARY: Final = Vocabulary(
    TUTORIAL_VOCABULARY.fields
    | _TOP_FIELDS
    | _TOP_OUTPUT_ONLY
    | _TOP_REFUSED.keys()
    | _SPEC_FIELDS
    | _SPEC_REFUSED.keys()
    | _HYPER_FIELDS
    | _HYPER_REFUSED.keys()
    | _ENCRYPTION_FIELDS
    | _EXTRA_ORCHESTRATOR_FIELDS
    | _EXAMPLE_FIELDS
    | _CONTENT_FIELDS
    | _PART_FIELDS,
    TUTORIAL_VOCABULARY.label_maps | {"labels"},
)


def parse_vertex_job(
    data: bytes,
    *,
    source: str,
    max_bytes: int = DEFAULT_MAX_FILE_BYTES,
    default_base_model: str | None = None,
) -> JobSpec:
    """Parse and validate a job file for Vertex AI, of either form.

    ``default_base_model`` is ``[vertex] base_model``: the model a tutorial-format file is tuned on (its own
    ``base_model`` names a Gemini API model); without it such files are rejected with a message naming the
    key. Raises :class:`SpecError` like :func:`orchestrator.spec.parse_job`, and nothing else.
    """
    with cyclic_gc_paused():
        return _vertex_job(data, source, max_bytes, default_base_model)


def _vertex_job(data: bytes, source: str, max_bytes: int, default_base_model: str | None) -> JobSpec:
    root = read_document(data, source=source, max_bytes=max_bytes, vocabulary=VERTEX_VOCABULARY)
    tutorial = {"tuning_task", "tuningTask"} & root.keys()
    if tutorial:
        vertex = {"supervised_tuning_spec", "supervisedTuningSpec"} & root.keys()
        if vertex:
            raise SpecError(
                source,
                "",
                f"the file has both {min(tutorial)!r} (the tutorial's form) and {min(vertex)!r} (the Vertex AI "
                "form); a job file is one or the other",
            )
        return converted_tutorial_job(tutorial_job(root, data, source=source), source, default_base_model)
    return _VertexValidator(source).job(root, data)


@dataclass(frozen=True, slots=True)
class VertexJobParser:
    """:class:`~orchestrator.spec.JobFileParser` of a Vertex daemon: :func:`parse_vertex_job` with its config."""

    default_base_model: str | None  #: ``[vertex] base_model``; None or empty when not set

    def __call__(self, data: bytes, *, source: str, max_bytes: int) -> JobSpec:
        return parse_vertex_job(
            data, source=source, max_bytes=max_bytes, default_base_model=self.default_base_model or None
        )


def base_model_problem(model: str) -> str | None:
    """Why ``model`` is not a Gemini model Vertex AI tunes, or None when it is; also checks ``[vertex] base_model``.

    The model is named by its id (``gemini-2.5-flash``) or with the publisher's prefix
    (``publishers/google/models/gemini-2.5-flash``), as the service takes either.
    """
    model = model.removeprefix(PUBLISHER_PREFIX)
    if model in DOCUMENTED_MODELS:
        return None
    if model in RETIRED_MODELS:
        return f"is retired: Vertex AI no longer tunes it; use a current model, {_EXAMPLE_MODEL}"
    if model.startswith("models/"):
        return f'is a Gemini API model name; Vertex AI names base models without "models/", {_EXAMPLE_MODEL}'
    if "/" in model:
        return f"must be a base model's id, {_EXAMPLE_MODEL}, not another resource's name"
    if STABLE_GEMINI_MODEL.fullmatch(model):
        return None
    documented = ", ".join(DOCUMENTED_MODELS)
    if model.startswith("gemini-"):
        return (
            "is not a stable Gemini text model; previews, experiments, -latest aliases and special-purpose "
            f"models cannot be tuned. Tunable: {documented}, or a newer stable version"
        )
    return f"is not a Gemini model Vertex AI tunes; supervised tuning takes {documented}, or a newer stable version"


def jsonl(examples: Sequence[Mapping[str, Any]]) -> bytes:
    """Examples as the JSONL Vertex AI reads: one compact object a line, keys sorted, ``\\n``-terminated.

    Deterministic, so the bytes (and their SHA-256, which names the uploaded object) depend on the
    examples alone.
    """
    return b"".join(
        json.dumps(example, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode() + b"\n"
        for example in examples
    )


def pair_example(text_input: str, output: str) -> dict[str, Any]:
    """The tutorial's ``{text_input, output}`` pair as a Vertex example: one user turn, one model turn."""
    return {
        "contents": [
            {"role": "user", "parts": [{"text": text_input}]},
            {"role": "model", "parts": [{"text": output}]},
        ]
    }


def converted_tutorial_job(spec: JobSpec, source: str, base_model: str | None) -> JobSpec:
    """A validated tutorial-format job (a ``tunedModels.create`` body) as the same job on Vertex AI.

    The rule, in the README's words: the pairs become user/model turns; ``epoch_count`` and
    ``learning_rate_multiplier`` carry over (the same meaning on both services); the base model is
    ``[vertex] base_model``. What has no Vertex equivalent for Gemini models is left out, and each
    omission is a note logged with the accepted job: ``learning_rate`` (Vertex takes only a multiplier of
    the model's own rate and documents no base rate to convert with), ``batch_size`` (Vertex chooses it),
    ``temperature``, ``top_p``, ``top_k`` and ``reader_project_numbers`` (settings of a Gemini API tuned
    model), and ``orchestrator.tuned_model_id`` (Vertex names tuned models itself). The file was valid
    for the Gemini API, so its own limits (40-byte display name, 40,000/5,000-character texts) held.
    """
    if not base_model:
        raise SpecError(
            source,
            "base_model",
            f"{spec.base_model!r} is a Gemini API model and this daemon tunes on Vertex AI: set [vertex] base_model "
            f"in the config ({_EXAMPLE_MODEL}) to run tutorial-format files on it, or write a Vertex job file",
        )
    problem = base_model_problem(base_model)
    if problem is not None:
        raise SpecError(source, "base_model", f"[vertex] base_model {base_model!r}, which replaces it, {problem}")
    body = spec.body
    task = body["tuningTask"]
    hyper: Mapping[str, Any] = task.get("hyperparameters", {})
    notes: list[str] = []
    vertex_hyper: dict[str, Any] = {}
    if "epochCount" in hyper:
        vertex_hyper["epochCount"] = hyper["epochCount"]
    if "learningRateMultiplier" in hyper:
        vertex_hyper["learningRateMultiplier"] = hyper["learningRateMultiplier"]
    if "learningRate" in hyper:
        notes.append(
            f"tuning_task.hyperparameters.learning_rate ({hyper['learningRate']:g}) left out: Vertex AI tunes Gemini "
            "models with learning_rate_multiplier, a multiple of the model's own rate, and documents no base rate "
            "to convert with; the model's default rate is used"
        )
    if "batchSize" in hyper:
        notes.append(
            f"tuning_task.hyperparameters.batch_size ({hyper['batchSize']}) left out: Vertex AI chooses the batch "
            "size of Gemini models"
        )
    for key, name in (("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k")):
        if key in body:
            notes.append(f"{name} left out: a default of Gemini API tuned models, which Vertex AI has no field for")
    if "readerProjectNumbers" in body:
        notes.append("reader_project_numbers left out: on Vertex AI, access to a tuned model is granted with IAM")
    if spec.tuned_model_id is not None:
        notes.append("orchestrator.tuned_model_id left out: Vertex AI names the tuned models it creates")
    supervised: dict[str, Any] = {"hyperParameters": vertex_hyper} if vertex_hyper else {}
    tuning_job: dict[str, Any] = {"baseModel": base_model, "supervisedTuningSpec": supervised}
    if spec.display_name is not None:
        tuning_job["tunedModelDisplayName"] = spec.display_name
    if "description" in body:
        tuning_job["description"] = body["description"]
    pairs = task["trainingData"]["examples"]["examples"]
    examples = [pair_example(pair["textInput"], pair["output"]) for pair in pairs]
    return JobSpec(
        job_key=spec.job_key,
        priority=spec.priority,
        tuned_model_id=None,
        labels=spec.labels,
        max_run_time=spec.max_run_time,
        stall_timeout=spec.stall_timeout,
        display_name=spec.display_name,
        base_model=base_model,
        example_count=len(examples),
        epoch_count=spec.epoch_count,
        batch_size=None,
        expected_total_steps=None,
        body={"tuningJob": tuning_job, "trainingExamples": examples},
        notes=tuple(notes),
    )


class _VertexValidator(FieldReader):
    """Checks a Vertex job file: the ``TuningJob`` create body and the ``orchestrator`` section."""

    def job(self, root: dict[str, Any], data: bytes) -> JobSpec:
        """Validate the whole file; ``data`` gives the default job key."""
        top = self.refusing(root, "", _TOP_FIELDS, _TOP_REFUSED, _TOP_OUTPUT_ONLY)
        tuning_job: dict[str, Any] = {}
        base_model = self.string(
            self.required(top, "base_model", "", f"the Gemini model to tune, {_EXAMPLE_MODEL}"), "base_model"
        )
        problem = base_model_problem(base_model)
        if problem is not None:
            self.fail("base_model", f"{self.shown(base_model)} {problem}")
        tuning_job["baseModel"] = base_model
        display_name = None
        if "tuned_model_display_name" in top:
            display_name = self.display_name(top["tuned_model_display_name"])
            tuning_job["tunedModelDisplayName"] = display_name
        if "description" in top:
            tuning_job["description"] = self.string(top["description"], "description")
        vertex_labels: dict[str, str] = {}
        if "labels" in top:
            vertex_labels = self.vertex_labels(top["labels"])
            tuning_job["labels"] = vertex_labels
        if "service_account" in top:
            tuning_job["serviceAccount"] = self.matching(
                top["service_account"], "service_account", _SERVICE_ACCOUNT, "a service account's email address"
            )
        if "encryption_spec" in top:
            encryption = self.fields(top["encryption_spec"], "encryption_spec", _ENCRYPTION_FIELDS)
            key = self.required(encryption, "kms_key_name", "encryption_spec", "the Cloud KMS key's resource name")
            tuning_job["encryptionSpec"] = {
                "kmsKeyName": self.matching(
                    key,
                    "encryption_spec.kms_key_name",
                    _KMS_KEY,
                    "a key's resource name, projects/P/locations/L/keyRings/R/cryptoKeys/K",
                )
            }
        supervised, epochs = self.supervised_tuning_spec(
            self.required(top, "supervised_tuning_spec", "", "the training data and hyper-parameters"), base_model
        )
        tuning_job["supervisedTuningSpec"] = supervised
        options = self.vertex_orchestrator(top.get("orchestrator", {}))
        body: dict[str, Any] = {"tuningJob": tuning_job}
        training = options.get("training_examples")
        validation = options.get("validation_examples")
        self.dataset_sources(supervised, training is not None, validation is not None)
        example_count: int | None = None  # a gs:// dataset: the service counts it
        if training is not None:
            body["trainingExamples"] = self.examples(training, "orchestrator.training_examples", MAX_TRAINING_EXAMPLES)
            example_count = len(body["trainingExamples"])
        if validation is not None:
            body["validationExamples"] = self.examples(
                validation, "orchestrator.validation_examples", MAX_VALIDATION_EXAMPLES
            )
        self.jsonl_size(data, body)
        return JobSpec(
            job_key=options.get("job_key") or file_job_key(data),
            priority=options.get("priority", 0),
            tuned_model_id=None,
            labels=self.merged_labels(vertex_labels, options.get("labels", {})),
            max_run_time=options.get("max_run_time"),
            stall_timeout=options.get("stall_timeout"),
            display_name=display_name,
            base_model=base_model,
            example_count=example_count,
            epoch_count=epochs,
            batch_size=None,
            expected_total_steps=None,
            body=body,
        )

    # --- readers of this form's shapes

    def refusing(
        self,
        value: object,
        path: str,
        known: frozenset[str],
        refused: Mapping[str, str],
        output_only: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """:meth:`fields`, after refusing the API's fields that this daemon does not take, each with its reason."""
        members = self.fields(value, path, known | refused.keys(), output_only)
        for name, reason in refused.items():
            if name in members:
                self.fail(f"{path}.{name}" if path else name, reason)
        return members

    def matching(self, value: object, field: str, pattern: re.Pattern[str], what: str) -> str:
        text = self.string(value, field)
        if pattern.fullmatch(text) is None:
            self.fail(field, f"must be {what}, not {self.shown(text)}")
        return text

    def display_name(self, value: object) -> str:
        name = self.string(value, "tuned_model_display_name")
        if len(name) > MAX_DISPLAY_NAME_CHARS:
            self.fail("tuned_model_display_name", f"is {len(name):,} characters; the limit is {MAX_DISPLAY_NAME_CHARS}")
        return self.printable(name, "tuned_model_display_name")

    def vertex_labels(self, value: object) -> dict[str, str]:
        """Google Cloud labels: lowercase letters (international ones too), digits, ``_`` and ``-``, ≤ 64 each."""
        if not isinstance(value, dict):
            self.wrong_type("labels", 'an object of string labels, e.g. {"team": "search"}', value)
        if JOB_LABEL in value:
            self.fail(
                f"labels.{JOB_LABEL}",
                "is the label the orchestrator puts on every job it creates (its job id), to find the job again; "
                "choose another name",
            )
        if len(value) > MAX_VERTEX_LABELS - 1:
            self.fail(
                "labels",
                f"has {len(value):,} labels; the limit is {MAX_VERTEX_LABELS - 1} (Google Cloud allows "
                f"{MAX_VERTEX_LABELS}, and the orchestrator adds {JOB_LABEL})",
            )
        labels: dict[str, str] = {}
        for key, item in value.items():
            field = f"labels.{key if len(key) <= MAX_LABEL_CHARS else key[:MAX_LABEL_CHARS] + '…'}"
            self.string(key, field)
            if not key:
                self.fail(field, "a label name must not be empty")
            if not (key[0].islower() or (not key[0].isascii() and key[0].isalpha() and not key[0].isupper())):
                self.fail(field, f"the label name must start with a lowercase letter, not {key[0]!r}")
            self.label_text(key, field, "the label name")
            self.label_text(self.string(item, field), field, "the value")
            labels[key] = item
        return labels

    def label_text(self, text: str, field: str, what: str) -> None:
        if len(text) > MAX_LABEL_CHARS:
            self.fail(field, f"{what} is {len(text):,} characters; the limit is {MAX_LABEL_CHARS}")
        for index, char in enumerate(text):
            if char in _LABEL_ASCII:
                continue
            if char.isascii() or not char.isprintable() or char.isspace() or char.isupper() or char.istitle():
                self.fail(
                    field,
                    f"{what} has {char!r} at character {index}: Google Cloud labels take lowercase letters "
                    "(international ones too), digits, '_' and '-'",
                )

    def merged_labels(self, vertex: Mapping[str, str], local: Mapping[str, str]) -> dict[str, str]:
        """The job's labels as the status database records them: the Vertex ones and ``orchestrator.labels``."""
        for key, value in local.items():
            if key in vertex and vertex[key] != value:
                self.fail(
                    f"orchestrator.labels.{key}",
                    f"is {self.shown(value)} here and {self.shown(vertex[key])} in labels; a job has one value a label",
                )
        return {**vertex, **local}

    def supervised_tuning_spec(self, value: object, base_model: str) -> tuple[dict[str, Any], int | None]:
        """``supervisedTuningSpec`` in camelCase, and the epoch count when given."""
        path = "supervised_tuning_spec"
        members = self.refusing(value, path, _SPEC_FIELDS, _SPEC_REFUSED)
        spec: dict[str, Any] = {}
        uris = (("training_dataset_uri", "trainingDatasetUri"), ("validation_dataset_uri", "validationDatasetUri"))
        for name, key in uris:
            if name in members:
                spec[key] = self.matching(
                    members[name], f"{path}.{name}", GCS_URI, "a Cloud Storage JSONL file, gs://BUCKET/OBJECT"
                )
        epochs = None
        if "hyper_parameters" in members:
            spec["hyperParameters"], epochs = self.hyper_parameters(members["hyper_parameters"], base_model)
        if "export_last_checkpoint_only" in members:
            flag = members["export_last_checkpoint_only"]
            if not isinstance(flag, bool):
                self.wrong_type(f"{path}.export_last_checkpoint_only", "true or false", flag)
            spec["exportLastCheckpointOnly"] = flag
        return spec, epochs

    def hyper_parameters(self, value: object, base_model: str) -> tuple[dict[str, Any], int | None]:
        path = "supervised_tuning_spec.hyper_parameters"
        members = self.refusing(value, path, _HYPER_FIELDS, _HYPER_REFUSED)
        hyper: dict[str, Any] = {}
        epochs = None
        if "epoch_count" in members:
            epochs = hyper["epochCount"] = self.int64(members["epoch_count"], f"{path}.epoch_count")
        if "learning_rate_multiplier" in members:
            hyper["learningRateMultiplier"] = self.positive_float(
                members["learning_rate_multiplier"], f"{path}.learning_rate_multiplier"
            )
        if "adapter_size" in members:
            hyper["adapterSize"] = self.adapter_size(members["adapter_size"], f"{path}.adapter_size", base_model)
        return hyper, epochs

    def int64(self, value: object, field: str) -> int:
        """A positive int64, as a number or as the decimal string proto3 JSON writes int64 as."""
        if isinstance(value, str):
            if not value.isascii() or not value.isdigit():
                self.fail(field, f"must be a whole number, not {self.shown(value)}")
            if len(value.lstrip("0")) > len(str(_INT64_MAX)):  # before int(), which is slow on many digits
                self.fail(field, f"{self.shown(value)} is out of range; it must be between 1 and {_INT64_MAX:,}")
            value = int(value)
        return self.whole(value, field, 1, _INT64_MAX)

    def adapter_size(self, value: object, field: str, base_model: str) -> str:
        size = self.string(value, field)
        if size == _ADAPTER_SIZE_DEFAULT:
            return size
        if size not in ADAPTER_SIZES:
            self.fail(field, f"must be one of {', '.join(ADAPTER_SIZES)}, not {self.shown(size)}")
        model = base_model.removeprefix(PUBLISHER_PREFIX)
        allowed = DOCUMENTED_MODELS.get(model)
        if allowed is not None and ADAPTER_SIZES[size] not in allowed:
            sizes = ", ".join(str(n) for n in sorted(allowed))
            self.fail(field, f"{model} takes adapter sizes {sizes}; {size} is {ADAPTER_SIZES[size]}")
        return size

    def dataset_sources(self, spec: Mapping[str, Any], inline_training: bool, inline_validation: bool) -> None:
        """Training data from exactly one place; validation data from at most one."""
        if "trainingDatasetUri" in spec and inline_training:
            self.fail(
                "orchestrator.training_examples",
                "the training data is given twice: here and as supervised_tuning_spec.training_dataset_uri; give one",
            )
        if "trainingDatasetUri" not in spec and not inline_training:
            self.fail(
                "supervised_tuning_spec.training_dataset_uri",
                "is required unless the examples are inline: give a gs:// JSONL file here, or the examples under "
                "orchestrator.training_examples",
            )
        if "validationDatasetUri" in spec and inline_validation:
            self.fail(
                "orchestrator.validation_examples",
                "the validation data is given twice: here and as supervised_tuning_spec.validation_dataset_uri; "
                "give one",
            )

    def vertex_orchestrator(self, value: object) -> dict[str, Any]:
        """Our section: the shared fields, and the inline examples (returned unchecked, see :meth:`examples`)."""
        section = self.fields(value, "orchestrator", ORCHESTRATOR_FIELDS | _EXTRA_ORCHESTRATOR_FIELDS)
        if "tuned_model_id" in section:
            self.fail(
                "orchestrator.tuned_model_id",
                "Vertex AI names the tuned models it creates; to find the job, use orchestrator.job_key or labels",
            )
        return self.orchestrator(value, _EXTRA_ORCHESTRATOR_FIELDS)

    def jsonl_size(self, data: bytes, body: Mapping[str, Any]) -> None:
        """The JSONL the backend writes stays within the service's 1 GB; measured only when it might not."""
        examples = [*body.get("trainingExamples", ()), *body.get("validationExamples", ())]
        if len(data) + _JSONL_GROWTH_PER_EXAMPLE * len(examples) <= MAX_JSONL_BYTES:
            return
        for name, field in (("trainingExamples", "training_examples"), ("validationExamples", "validation_examples")):
            size = len(jsonl(body.get(name, ())))
            if size > MAX_JSONL_BYTES:
                self.fail(
                    f"orchestrator.{field}",
                    f"come to {size:,} bytes of JSONL; Vertex AI reads at most {MAX_JSONL_BYTES:,} bytes a file",
                )

    # --- examples

    def examples(self, value: object, path: str, most: int) -> list[dict[str, Any]]:
        """A non-empty list of at most ``most`` examples, each a ``contents`` example or a pair."""
        if not isinstance(value, list):
            self.wrong_type(path, "an array of examples", value)
        if not value:
            self.fail(path, 'must not be empty: give at least one example, e.g. {"text_input": "1", "output": "2"}')
        if len(value) > most:
            self.fail(path, f"has {len(value):,} examples; Vertex AI takes at most {most:,}")
        return [self.example(item, f"{path}[{index}]") for index, item in enumerate(value)]

    def example(self, value: object, where: str) -> dict[str, Any]:
        if type(value) is dict and len(value) == 1 and "contents" in value:  # the usual shape, read directly
            return {"contents": self.contents(value["contents"], f"{where}.contents")}
        members = self.fields(value, where, _EXAMPLE_FIELDS)
        if "text_input" in members or "output" in members:
            if "contents" in members or "system_instruction" in members:
                given = "contents" if "contents" in members else "system_instruction"
                self.fail(
                    f"{where}.{given}",
                    "an example is either a {text_input, output} pair or a contents example, not both",
                )
            text_input = self.nonempty(
                self.required(members, "text_input", where, "the user's text"), f"{where}.text_input"
            )
            output = self.nonempty(
                self.required(members, "output", where, "the answer the model should learn"), f"{where}.output"
            )
            return pair_example(text_input, output)
        turns = self.required(
            members, "contents", where, 'the conversation, e.g. [{"role": "user", "parts": [{"text": "1"}]}, ...]'
        )
        example: dict[str, Any] = {"contents": self.contents(turns, f"{where}.contents")}
        if "system_instruction" in members:
            example["systemInstruction"] = self.system_instruction(
                members["system_instruction"], f"{where}.system_instruction"
            )
        return example

    def contents(self, value: object, path: str) -> list[dict[str, Any]]:
        """Turns that begin with the user, alternate between user and model, and end with the model.

        A turn of the usual shape (exactly ``role`` and ``parts``, the role expected next) is read
        without the per-field walk: a file of many short conversations is millions of such objects.
        """
        if not isinstance(value, list):
            self.wrong_type(path, "an array of turns", value)
        if not value:
            self.fail(path, "must not be empty: give a user turn and the model's answer")
        turns: list[dict[str, Any]] = []
        for index, item in enumerate(value):
            expected = _ROLES[index % 2]
            if type(item) is dict and len(item) == 2 and item.get("role") == expected and "parts" in item:
                turns.append({"role": expected, "parts": self.parts(item["parts"], f"{path}[{index}].parts")})
                continue
            at = f"{path}[{index}]"
            content = self.fields(item, at, _CONTENT_FIELDS)
            role = self.string(self.required(content, "role", at, 'who speaks: "user" or "model"'), f"{at}.role")
            if role not in _ROLES:
                self.fail(f"{at}.role", f'must be "user" or "model", not {self.shown(role)}')
            if role != expected:
                problem = (
                    'is "model", but a conversation begins with a "user" turn'
                    if index == 0
                    else f'is "{role}" after a "{role}" turn: turns alternate between user and model'
                )
                self.fail(f"{at}.role", problem)
            parts = self.parts(self.required(content, "parts", at, 'the turn\'s text, [{"text": ...}]'), f"{at}.parts")
            turns.append({"role": role, "parts": parts})
        if turns[-1]["role"] != "model":
            self.fail(
                f"{path}[{len(turns) - 1}].role",
                'is "user", but an example ends with a "model" turn: the answer the model should learn',
            )
        return turns

    def system_instruction(self, value: object, path: str) -> dict[str, Any]:
        """A ``Content`` of text parts; its ``role`` is kept as written (the service ignores it)."""
        content = self.fields(value, path, _CONTENT_FIELDS)
        instruction: dict[str, Any] = {}
        if "role" in content:
            instruction["role"] = self.string(content["role"], f"{path}.role")
        instruction["parts"] = self.parts(
            self.required(content, "parts", path, 'the instruction\'s text, [{"text": ...}]'), f"{path}.parts"
        )
        return instruction

    def parts(self, value: object, path: str) -> list[dict[str, str]]:
        """Non-empty text parts; other kinds of part belong in a JSONL file the user uploads.

        Parts that are each exactly ``{"text": …}`` with non-empty ASCII text (no surrogate to look for)
        are read without the per-field walk; anything else takes it, and gets its error from it.
        """
        if type(value) is list and value:
            plain: list[dict[str, str]] = []
            for part in value:
                text = part.get("text") if type(part) is dict and len(part) == 1 else None
                if type(text) is not str or not text or not text.isascii():
                    break
                plain.append({"text": text})
            else:
                return plain
        if not isinstance(value, list):
            self.wrong_type(path, 'an array of parts, [{"text": ...}]', value)
        if not value:
            self.fail(path, 'must not be empty: give the text as [{"text": ...}]')
        parts: list[dict[str, str]] = []
        for index, item in enumerate(value):
            at = f"{path}[{index}]"
            part = self.fields(item, at, _PART_FIELDS)
            other = sorted(part.keys() - {"text"})
            if other:
                self.fail(
                    f"{at}.{other[0]}",
                    "only text parts can be given inline; for images, audio, documents or function calls, upload "
                    "the JSONL yourself and give supervised_tuning_spec.training_dataset_uri",
                )
            text = self.nonempty(self.required(part, "text", at, "the part's text"), f"{at}.text")
            parts.append({"text": text})
        return parts

    def nonempty(self, value: object, field: str) -> str:
        text = self.string(value, field)
        if not text:
            self.fail(field, "must not be empty")
        return text
