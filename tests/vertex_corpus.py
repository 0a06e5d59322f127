"""Vertex AI job files for every test suite: a builder of small valid ones and a corpus of bad files.

``BAD_VERTEX_JOB_FILES`` is to a Vertex daemon what :data:`tests.corpus.BAD_JOB_FILES` is to a Gemini one:
each entry must become exactly one rejection whose :class:`~orchestrator.errors.SpecError` names ``field``
exactly and whose ``problem`` contains ``problem_contains``. Entries are parsed with
``parse_vertex_job(entry.data, source=..., max_bytes=entry.max_bytes)`` and no ``[vertex] base_model``.
"""

from __future__ import annotations

import copy
import json
from typing import Any, Final

from tests.corpus import OMIT, BadJobFile, good_job, good_job_dict, overridden, replaced

#: The tuning job of Google's REST example, camelCase, with its examples inline in our section.
GOOD_VERTEX_JOB: Final = b"""{
  "baseModel": "gemini-2.5-flash",
  "tunedModelDisplayName": "number generator",
  "description": "adds one",
  "labels": {"team": "search", "cost-center": "ml_42"},
  "supervisedTuningSpec": {
    "hyperParameters": {"epochCount": "4", "learningRateMultiplier": 1.0, "adapterSize": "ADAPTER_SIZE_FOUR"},
    "exportLastCheckpointOnly": true,
  },
  "orchestrator": {
    "jobKey": "vertex-number-generator",
    "priority": 3,
    "trainingExamples": [
      {"contents": [{"role": "user", "parts": [{"text": "1"}]}, {"role": "model", "parts": [{"text": "2"}]}]},
      {"systemInstruction": {"parts": [{"text": "Answer with digits."}]},
       "contents": [{"role": "user", "parts": [{"text": "three"}]}, {"role": "model", "parts": [{"text": "4"}]}]},
      {"text_input": "ninety nine", "output": "one hundred"},
    ],
    "validationExamples": [{"textInput": "7", "output": "8"}],
  },
}"""

_PAIRS: Final = [
    {"text_input": "1", "output": "2"},
    {"text_input": "two", "output": "three"},
    {"text_input": "ninety nine", "output": "one hundred"},
]


def turn(role: str, *texts: str) -> dict[str, Any]:
    """One ``Content`` of text parts."""
    return {"role": role, "parts": [{"text": text} for text in texts]}


def conversation(*texts: str) -> dict[str, Any]:
    """A ``contents`` example whose turns alternate user, model, user, … over ``texts``."""
    return {"contents": [turn("user" if index % 2 == 0 else "model", text) for index, text in enumerate(texts)]}


def good_vertex_job_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid Vertex job (snake_case, inline pairs); top-level ``overrides`` replace fields, ``OMIT`` drops."""
    job: dict[str, Any] = {
        "base_model": "gemini-2.5-flash",
        "tuned_model_display_name": "number generator",
        "supervised_tuning_spec": {"hyper_parameters": {"epoch_count": 3}},
        "orchestrator": {"training_examples": copy.deepcopy(_PAIRS)},
    }
    return overridden(job, overrides)


def good_vertex_job(**overrides: Any) -> bytes:
    """A small valid Vertex job file (snake_case JSON bytes); see :func:`good_vertex_job_dict`."""
    return json.dumps(good_vertex_job_dict(**overrides)).encode()


def _nested(path: str, value: Any, **overrides: Any) -> bytes:
    """A good Vertex job with the value at dotted ``path`` replaced (``OMIT`` deletes it)."""
    return replaced(good_vertex_job_dict(**overrides), path, value)


def _hyper(**hyper: Any) -> bytes:
    return _nested("supervised_tuning_spec.hyper_parameters", hyper)


def _spec(**spec: Any) -> bytes:
    return _nested("supervised_tuning_spec", spec)


def _training(*examples: Any) -> bytes:
    return _nested("orchestrator.training_examples", list(examples))


def _labels(labels: Any) -> bytes:
    return good_vertex_job(labels=labels)


_TRAIN = "orchestrator.training_examples"
_URI = "gs://my-bucket/tuning/train.jsonl"

BAD_VERTEX_JOB_FILES: Final[list[BadJobFile]] = [
    # --- the form, and what every form shares
    BadJobFile(
        "both forms at once",
        good_job(supervised_tuning_spec={"training_dataset_uri": _URI}),
        "",
        "a job file is one or the other",
    ),
    BadJobFile("top level array", b"[]", "", "must be a JSON object"),
    BadJobFile("trailing garbage", good_vertex_job() + b"x", "", "invalid JSON"),
    BadJobFile(
        "duplicate spellings, reported in snake_case",
        _hyper(epoch_count=2).replace(b'"epoch_count": 2', b'"epochCount": 2, "epoch_count": 2'),
        "supervised_tuning_spec.hyper_parameters.epoch_count",
        "two spellings of the same field",
    ),
    BadJobFile(
        "duplicate label",
        _labels({"team": "a"}).replace(b'"team": "a"', b'"team": "a", "team": "b"'),
        "labels.team",
        "duplicate key 'team'",
    ),
    BadJobFile("deep nesting", _training("x").replace(b'["x"]', b"[" * 70 + b"]" * 70), f"{_TRAIN}" + "[0]" * 62, "64"),
    # --- a tutorial-format file on a daemon with no [vertex] base_model
    BadJobFile("tutorial file, no base model to map to", good_job(), "base_model", "set [vertex] base_model"),
    BadJobFile(
        "tutorial file, invalid as a tutorial file",
        json.dumps(
            good_job_dict(tuning_task={"training_data": {"examples": {"examples": [{"text_input": "1"}]}}})
        ).encode(),
        "tuning_task.training_data.examples.examples[0].output",
        "is required",
    ),
    # --- the base model
    BadJobFile("missing base_model", good_vertex_job(base_model=OMIT), "base_model", "is required"),
    BadJobFile("base_model a number", good_vertex_job(base_model=2.5), "base_model", "must be a string"),
    BadJobFile(
        "base_model with models/", good_vertex_job(base_model="models/gemini-2.5-flash"), "base_model", '"models/"'
    ),
    BadJobFile(
        "base_model of the Gemini API tutorial",
        good_vertex_job(base_model="models/gemini-1.5-flash-001-tuning"),
        "base_model",
        "Gemini API model name",
    ),
    BadJobFile("base_model retired", good_vertex_job(base_model="gemini-1.5-flash-002"), "base_model", "is retired"),
    BadJobFile(
        "base_model a preview",
        good_vertex_job(base_model="gemini-2.5-flash-preview-04-17"),
        "base_model",
        "not a stable Gemini text model",
    ),
    BadJobFile(
        "base_model an alias", good_vertex_job(base_model="gemini-flash-latest"), "base_model", "-latest aliases"
    ),
    BadJobFile("base_model an open model", good_vertex_job(base_model="gemma-3-27b-it"), "base_model", "not a Gemini"),
    BadJobFile(
        "base_model a resource name",
        good_vertex_job(base_model="projects/p/locations/us-central1/models/123"),
        "base_model",
        "a base model's id",
    ),
    # --- other top-level fields
    BadJobFile(
        "display name 129 characters",
        good_vertex_job(tuned_model_display_name="é" * 129),
        "tuned_model_display_name",
        "129 characters; the limit is 128",
    ),
    BadJobFile(
        "display name a number", good_vertex_job(tuned_model_display_name=7), "tuned_model_display_name", "a string"
    ),
    BadJobFile(
        "the Gemini API's display_name",
        good_vertex_job(display_name="x"),
        "display_name",
        "did you mean 'tuned_model_display_name'",
    ),
    BadJobFile("description a list", good_vertex_job(description=["x"]), "description", "must be a string"),
    BadJobFile("name is Vertex's", good_vertex_job(name="projects/p/locations/l/tuningJobs/1"), "name", "job_key"),
    BadJobFile("state is output only", good_vertex_job(state="JOB_STATE_RUNNING"), "state", "output only"),
    BadJobFile(
        "tuningDataStats is output only", good_vertex_job(tuningDataStats={}), "tuning_data_stats", "output only"
    ),
    BadJobFile(
        "tuningJobState is output only",
        good_vertex_job(tuningJobState="TUNING_JOB_STATE_TUNING"),
        "tuning_job_state",
        "output only",
    ),
    BadJobFile(
        "continuing from a tuned model",
        good_vertex_job(pre_tuned_model={"tuned_model_name": "projects/p/locations/l/models/m"}),
        "pre_tuned_model",
        "continuing from a tuned model is not supported",
    ),
    BadJobFile("distillation", good_vertex_job(distillationSpec={}), "distillation_spec", "only supervised tuning"),
    BadJobFile("output_uri", good_vertex_job(output_uri="gs://b/out"), "output_uri", "only for open models"),
    BadJobFile(
        "missing supervised_tuning_spec",
        good_vertex_job(supervised_tuning_spec=OMIT),
        "supervised_tuning_spec",
        "is required",
    ),
    BadJobFile("unknown top-level field", good_vertex_job(epochs=3), "epochs", "unknown field 'epochs'"),
    BadJobFile(
        "service account not an email",
        good_vertex_job(service_account="tuner"),
        "service_account",
        "a service account's email address",
    ),
    BadJobFile(
        "encryption key not a key name",
        good_vertex_job(encryption_spec={"kms_key_name": "my-key"}),
        "encryption_spec.kms_key_name",
        "keyRings",
    ),
    BadJobFile(
        "encryption spec empty", good_vertex_job(encryption_spec={}), "encryption_spec.kms_key_name", "required"
    ),
    # --- labels
    BadJobFile("labels an array", _labels(["team"]), "labels", "must be an object"),
    BadJobFile("label name upper case", _labels({"Team": "a"}), "labels.Team", "must start with a lowercase letter"),
    BadJobFile("label name with a dot", _labels({"team.name": "a"}), "labels.team.name", "has '.' at character 4"),
    BadJobFile("label value upper case", _labels({"team": "Search"}), "labels.team", "the value has 'S'"),
    BadJobFile("label value with a space", _labels({"team": "a b"}), "labels.team", "the value has ' '"),
    BadJobFile("label value with a control character", _labels({"team": "a\x07"}), "labels.team", "'\\x07'"),
    BadJobFile(
        "label value 65 characters", _labels({"team": "a" * 65}), "labels.team", "65 characters; the limit is 64"
    ),
    BadJobFile(
        "label name 65 characters", _labels({"k" * 65: "v"}), "labels." + "k" * 64 + "…", "the label name is 65"
    ),
    BadJobFile("label name empty", _labels({"": "v"}), "labels.", "must not be empty"),
    BadJobFile("label value a number", _labels({"team": 5}), "labels.team", "must be a string"),
    BadJobFile(
        "the orchestrator's own label", _labels({"orchestrator-job": "x"}), "labels.orchestrator-job", "another"
    ),
    BadJobFile("64 labels", _labels({f"l{i}": "v" for i in range(64)}), "labels", "the limit is 63"),
    BadJobFile(
        "label given two values",
        good_vertex_job(labels={"team": "a"}, orchestrator={"labels": {"team": "b"}, "training_examples": _PAIRS}),
        "orchestrator.labels.team",
        "one value a label",
    ),
    # --- where the data comes from
    BadJobFile(
        "training data twice",
        _spec(training_dataset_uri=_URI),
        _TRAIN,
        "given twice",
    ),
    BadJobFile(
        "no training data",
        good_vertex_job(orchestrator=OMIT),
        "supervised_tuning_spec.training_dataset_uri",
        "is required unless the examples are inline",
    ),
    BadJobFile(
        "dataset over https",
        _nested(
            "supervised_tuning_spec.training_dataset_uri", "https://storage.googleapis.com/b/t.jsonl", orchestrator=OMIT
        ),
        "supervised_tuning_spec.training_dataset_uri",
        "gs://BUCKET/OBJECT",
    ),
    BadJobFile(
        "dataset a bucket alone",
        _nested("supervised_tuning_spec.training_dataset_uri", "gs://my-bucket", orchestrator=OMIT),
        "supervised_tuning_spec.training_dataset_uri",
        "gs://BUCKET/OBJECT",
    ),
    BadJobFile(
        "validation data twice",
        _nested(
            "orchestrator.validation_examples",
            _PAIRS,
            supervised_tuning_spec={"validation_dataset_uri": "gs://my-bucket/v.jsonl"},
        ),
        "orchestrator.validation_examples",
        "given twice",
    ),
    BadJobFile(
        "evaluation_config", _spec(evaluation_config={}), "supervised_tuning_spec.evaluation_config", "not supported"
    ),
    BadJobFile(
        "tuning_mode", _spec(tuningMode="TUNING_MODE_FULL"), "supervised_tuning_spec.tuning_mode", "open models"
    ),
    BadJobFile(
        "export flag a string",
        _spec(export_last_checkpoint_only="yes"),
        "supervised_tuning_spec.export_last_checkpoint_only",
        "true or false",
    ),
    # --- hyper-parameters
    BadJobFile(
        "learning_rate is for open models",
        _hyper(learning_rate=0.001),
        "supervised_tuning_spec.hyper_parameters.learning_rate",
        "learning_rate_multiplier",
    ),
    BadJobFile(
        "batch_size is for open models",
        _hyper(batchSize=4),
        "supervised_tuning_spec.hyper_parameters.batch_size",
        "Vertex AI chooses the batch size",
    ),
    BadJobFile(
        "epoch_count zero", _hyper(epoch_count=0), "supervised_tuning_spec.hyper_parameters.epoch_count", "out of range"
    ),
    BadJobFile(
        "epoch_count a word", _hyper(epoch_count="five"), "supervised_tuning_spec.hyper_parameters.epoch_count", "whole"
    ),
    BadJobFile(
        "epoch_count fractional",
        _hyper(epoch_count=2.5),
        "supervised_tuning_spec.hyper_parameters.epoch_count",
        "whole",
    ),
    BadJobFile(
        "epoch_count over int64",
        _hyper(epoch_count=str(2**63)),
        "supervised_tuning_spec.hyper_parameters.epoch_count",
        "out of range",
    ),
    BadJobFile(
        "learning_rate_multiplier zero",
        _hyper(learning_rate_multiplier=0),
        "supervised_tuning_spec.hyper_parameters.learning_rate_multiplier",
        "greater than 0",
    ),
    BadJobFile(
        "adapter size unknown",
        _hyper(adapter_size="FOUR"),
        "supervised_tuning_spec.hyper_parameters.adapter_size",
        "must be one of ADAPTER_SIZE_ONE",
    ),
    BadJobFile(
        "adapter size a number",
        _hyper(adapter_size=4),
        "supervised_tuning_spec.hyper_parameters.adapter_size",
        "must be a string",
    ),
    BadJobFile(
        "adapter size too big for the model",
        _hyper(adapter_size="ADAPTER_SIZE_SIXTEEN").replace(b"gemini-2.5-flash", b"gemini-2.5-pro"),
        "supervised_tuning_spec.hyper_parameters.adapter_size",
        "gemini-2.5-pro takes adapter sizes 1, 2, 4, 8",
    ),
    BadJobFile(
        "unknown hyper-parameter",
        _hyper(epochs=3),
        "supervised_tuning_spec.hyper_parameters.epochs",
        "did you mean 'epoch_count'",
    ),
    # --- the orchestrator section
    BadJobFile(
        "tuned_model_id",
        _nested("orchestrator.tuned_model_id", "number-gen"),
        "orchestrator.tuned_model_id",
        "Vertex AI names the tuned models",
    ),
    BadJobFile("orchestrator unknown key", _nested("orchestrator.retries", 3), "orchestrator.retries", "unknown field"),
    BadJobFile("job_key empty", _nested("orchestrator.job_key", ""), "orchestrator.job_key", "must not be empty"),
    BadJobFile("training examples an object", _nested(_TRAIN, {"text_input": "1"}), _TRAIN, "must be an array"),
    BadJobFile("training examples empty", _training(), _TRAIN, "must not be empty"),
    BadJobFile(
        "5,001 validation examples",
        _nested("orchestrator.validation_examples", [_PAIRS[0]] * 5_001),
        "orchestrator.validation_examples",
        "has 5,001 examples; Vertex AI takes at most 5,000",
    ),
    # --- examples
    BadJobFile("example a string", _training("1 -> 2"), f"{_TRAIN}[0]", "must be an object"),
    BadJobFile("pair without output", _training({"text_input": "1"}), f"{_TRAIN}[0].output", "is required"),
    BadJobFile("pair without input", _training({"output": "1"}), f"{_TRAIN}[0].text_input", "is required"),
    BadJobFile(
        "pair with empty input", _training({"textInput": "", "output": "1"}), f"{_TRAIN}[0].text_input", "empty"
    ),
    BadJobFile(
        "pair and contents",
        _training({"text_input": "1", "output": "2", **conversation("1", "2")}),
        f"{_TRAIN}[0].contents",
        "not both",
    ),
    BadJobFile("unknown example field", _training({"input": "1"}), f"{_TRAIN}[0].input", "unknown field 'input'"),
    BadJobFile("contents empty", _training({"contents": []}), f"{_TRAIN}[0].contents", "must not be empty"),
    BadJobFile("contents an object", _training({"contents": turn("user", "1")}), f"{_TRAIN}[0].contents", "an array"),
    BadJobFile(
        "turn without role",
        _training({"contents": [{"parts": [{"text": "1"}]}]}),
        f"{_TRAIN}[0].contents[0].role",
        "is required",
    ),
    BadJobFile(
        "assistant role",
        _training({"contents": [turn("user", "1"), turn("assistant", "2")]}),
        f"{_TRAIN}[0].contents[1].role",
        'must be "user" or "model", not "assistant"',
    ),
    BadJobFile(
        "model speaks first",
        _training({"contents": [turn("model", "1"), turn("user", "2")]}),
        f"{_TRAIN}[0].contents[0].role",
        'begins with a "user" turn',
    ),
    BadJobFile(
        "two user turns",
        _training(conversation("1", "2"), {"contents": [turn("user", "1"), turn("user", "2"), turn("model", "3")]}),
        f"{_TRAIN}[1].contents[1].role",
        'is "user" after a "user" turn',
    ),
    BadJobFile(
        "ends with the user",
        _training(conversation("1", "2", "3")),
        f"{_TRAIN}[0].contents[2].role",
        'ends with a "model" turn',
    ),
    BadJobFile(
        "one user turn alone", _training(conversation("1")), f"{_TRAIN}[0].contents[0].role", 'ends with a "model"'
    ),
    BadJobFile(
        "turn without parts",
        _training({"contents": [{"role": "user"}, turn("model", "2")]}),
        f"{_TRAIN}[0].contents[0].parts",
        "is required",
    ),
    BadJobFile(
        "parts empty",
        _training({"contents": [turn("user"), turn("model", "2")]}),
        f"{_TRAIN}[0].contents[0].parts",
        "must not be empty",
    ),
    BadJobFile(
        "empty text part",
        _training(conversation("1", "")),
        f"{_TRAIN}[0].contents[1].parts[0].text",
        "must not be empty",
    ),
    BadJobFile(
        "text part a number",
        _training({"contents": [turn("user", "1"), {"role": "model", "parts": [{"text": 2}]}]}),
        f"{_TRAIN}[0].contents[1].parts[0].text",
        "must be a string",
    ),
    BadJobFile(
        "image part inline",
        _training({"contents": [{"role": "user", "parts": [{"inlineData": {}}]}, turn("model", "2")]}),
        f"{_TRAIN}[0].contents[0].parts[0].inline_data",
        "only text parts can be given inline",
    ),
    BadJobFile(
        "file part inline",
        _training({"contents": [{"role": "user", "parts": [{"text": "x", "file_data": {}}]}, turn("model", "2")]}),
        f"{_TRAIN}[0].contents[0].parts[0].file_data",
        "training_dataset_uri",
    ),
    BadJobFile(
        "part of an unknown kind",
        _training({"contents": [{"role": "user", "parts": [{"txt": "1"}]}, turn("model", "2")]}),
        f"{_TRAIN}[0].contents[0].parts[0].txt",
        "did you mean 'text'",
    ),
    BadJobFile(
        "system instruction without text",
        _training({**conversation("1", "2"), "systemInstruction": {"parts": []}}),
        f"{_TRAIN}[0].system_instruction.parts",
        "must not be empty",
    ),
    BadJobFile(
        "system instruction role a number",
        _training({**conversation("1", "2"), "system_instruction": {"role": 1, "parts": [{"text": "x"}]}}),
        f"{_TRAIN}[0].system_instruction.role",
        "must be a string",
    ),
    BadJobFile(
        "lone surrogate",
        _training(conversation("1", "2")).replace(b'"2"', b'"\\udc00"'),
        f"{_TRAIN}[0].contents[1].parts[0].text",
        "unpaired UTF-16 surrogate",
    ),
    BadJobFile(
        "bad validation example",
        _nested("orchestrator.validation_examples", [_PAIRS[0], conversation("1", "2", "3")]),
        "orchestrator.validation_examples[1].contents[2].role",
        'ends with a "model" turn',
    ),
]
