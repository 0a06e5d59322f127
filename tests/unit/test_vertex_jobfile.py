"""Vertex AI job files: both forms, the stored document, the service's limits at and one past the edge, the corpus."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import JobSpec, parse_job
from orchestrator.vertex.jobfile import (
    DOCUMENTED_MODELS,
    MAX_DISPLAY_NAME_CHARS,
    MAX_JSONL_BYTES,
    MAX_VALIDATION_EXAMPLES,
    VertexJobParser,
    base_model_problem,
    jsonl,
    parse_vertex_job,
)
from tests.corpus import GOOD_TUTORIAL_JOB, OMIT, BadJobFile, good_job, good_job_dict
from tests.vertex_corpus import (
    BAD_VERTEX_JOB_FILES,
    GOOD_VERTEX_JOB,
    conversation,
    good_vertex_job,
    good_vertex_job_dict,
    turn,
)

TRAIN = "orchestrator.training_examples"


def parse(data: bytes, **kwargs: Any) -> JobSpec:
    return parse_vertex_job(data, source="job.json", **kwargs)


def rejection(data: bytes, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse(data, **kwargs)
    return caught.value


def with_training(*examples: Any, **overrides: Any) -> bytes:
    job = good_vertex_job_dict(**overrides)
    job["orchestrator"]["training_examples"] = list(examples)
    return json.dumps(job).encode()


# --- a Vertex job file ------------------------------------------------------------------------------


def test_google_shaped_job_becomes_the_stored_document() -> None:
    spec = parse(GOOD_VERTEX_JOB)

    assert spec.body == {
        "tuningJob": {
            "baseModel": "gemini-2.5-flash",
            "tunedModelDisplayName": "number generator",
            "description": "adds one",
            "labels": {"team": "search", "cost-center": "ml_42"},
            "supervisedTuningSpec": {
                "hyperParameters": {"epochCount": 4, "learningRateMultiplier": 1.0, "adapterSize": "ADAPTER_SIZE_FOUR"},
                "exportLastCheckpointOnly": True,
            },
        },
        "trainingExamples": [
            conversation("1", "2"),
            {"systemInstruction": {"parts": [{"text": "Answer with digits."}]}, **conversation("three", "4")},
            conversation("ninety nine", "one hundred"),
        ],
        "validationExamples": [conversation("7", "8")],
    }
    assert (spec.job_key, spec.priority, spec.tuned_model_id) == ("vertex-number-generator", 3, None)
    assert (spec.display_name, spec.base_model, spec.example_count, spec.epoch_count) == (
        "number generator",
        "gemini-2.5-flash",
        3,
        4,
    )
    assert (spec.batch_size, spec.expected_total_steps, spec.notes) == (None, None, ())
    assert spec.labels == {"team": "search", "cost-center": "ml_42"}


def test_a_gs_uri_is_used_as_is_and_no_examples_are_stored() -> None:
    spec = parse(
        good_vertex_job(
            supervised_tuning_spec={
                "training_dataset_uri": "gs://my-bucket/tuning/train.jsonl",
                "validationDatasetUri": "gs://my-bucket/tuning/validation.jsonl",
            },
            orchestrator=OMIT,
        )
    )

    assert spec.body == {
        "tuningJob": {
            "baseModel": "gemini-2.5-flash",
            "tunedModelDisplayName": "number generator",
            "supervisedTuningSpec": {
                "trainingDatasetUri": "gs://my-bucket/tuning/train.jsonl",
                "validationDatasetUri": "gs://my-bucket/tuning/validation.jsonl",
            },
        }
    }
    assert (spec.example_count, spec.epoch_count) == (None, None)  # counted by the service, not 0


def test_inline_training_with_a_gs_validation_set() -> None:
    data = good_vertex_job(supervised_tuning_spec={"validation_dataset_uri": "gs://b-1/v.jsonl"})

    spec = parse(data)

    assert spec.body["tuningJob"]["supervisedTuningSpec"] == {"validationDatasetUri": "gs://b-1/v.jsonl"}
    assert len(spec.body["trainingExamples"]) == 3
    assert "validationExamples" not in spec.body


def test_defaults_and_the_job_key_of_the_bytes() -> None:
    data = good_vertex_job()
    spec = parse(data)

    assert spec.job_key == "sha256:" + hashlib.sha256(data).hexdigest()
    assert (spec.priority, spec.labels, spec.max_run_time, spec.stall_timeout) == (0, {}, None, None)
    assert "labels" not in spec.body["tuningJob"]


def test_orchestrator_section_is_shared_with_the_gemini_form() -> None:
    section = {
        "job_key": "k-1",
        "priority": -2,
        "labels": {"Owner": "Ana María"},  # local labels: any text, as on the Gemini side
        "max_run_time": 3600,
        "stallTimeout": 600.5,
        "training_examples": [{"text_input": "1", "output": "2"}],
    }
    spec = parse(good_vertex_job(orchestrator=section, labels={"team": "search"}))

    assert (spec.job_key, spec.priority, spec.max_run_time, spec.stall_timeout) == ("k-1", -2, 3600, 600.5)
    assert spec.labels == {"team": "search", "Owner": "Ana María"}
    assert spec.body["tuningJob"]["labels"] == {"team": "search"}  # only the Vertex labels go to Vertex


def test_the_same_label_in_both_places_with_one_value_is_fine() -> None:
    section = {"labels": {"team": "search"}, "training_examples": [{"text_input": "1", "output": "2"}]}
    assert parse(good_vertex_job(orchestrator=section, labels={"team": "search"})).labels == {"team": "search"}


def test_snake_and_camel_give_the_same_body() -> None:
    camel = json.dumps(
        {
            "baseModel": "gemini-2.5-flash",
            "tunedModelDisplayName": "number generator",
            "supervisedTuningSpec": {"hyperParameters": {"epochCount": 3}},
            "orchestrator": {"trainingExamples": [{"textInput": "1", "output": "2"}]},
        }
    ).encode()
    snake = with_training({"text_input": "1", "output": "2"})

    assert parse(camel).body == parse(snake).body


def test_epoch_count_as_int64_string_or_number() -> None:
    for value in (7, 7.0, "7", "007"):
        data = good_vertex_job(supervised_tuning_spec={"hyper_parameters": {"epoch_count": value}})
        spec = parse(data)
        assert spec.epoch_count == 7
        assert spec.body["tuningJob"]["supervisedTuningSpec"]["hyperParameters"] == {"epochCount": 7}


@pytest.mark.parametrize("model", sorted(DOCUMENTED_MODELS))
def test_documented_models_take_their_documented_adapter_sizes(model: str) -> None:
    sizes = {1: "ONE", 2: "TWO", 4: "FOUR", 8: "EIGHT", 16: "SIXTEEN", 32: "THIRTY_TWO"}
    for size, name in sizes.items():
        hyper = {"adapter_size": f"ADAPTER_SIZE_{name}"}
        data = good_vertex_job(base_model=model, supervised_tuning_spec={"hyper_parameters": hyper})
        if size in DOCUMENTED_MODELS[model]:
            assert parse(data).body["tuningJob"]["supervisedTuningSpec"]["hyperParameters"] == {
                "adapterSize": f"ADAPTER_SIZE_{name}"
            }
        else:
            assert "takes adapter sizes" in rejection(data).problem


def test_adapter_sizes_of_a_model_named_with_its_publisher() -> None:
    hyper = {"adapter_size": "ADAPTER_SIZE_SIXTEEN"}
    data = good_vertex_job(
        base_model="publishers/google/models/gemini-2.5-pro", supervised_tuning_spec={"hyper_parameters": hyper}
    )
    assert rejection(data).problem == "gemini-2.5-pro takes adapter sizes 1, 2, 4, 8; ADAPTER_SIZE_SIXTEEN is 16"


def test_unspecified_adapter_size_is_the_models_default() -> None:
    hyper = {"adapterSize": "ADAPTER_SIZE_UNSPECIFIED"}
    spec = parse(good_vertex_job(supervised_tuning_spec={"hyper_parameters": hyper}))
    assert spec.body["tuningJob"]["supervisedTuningSpec"]["hyperParameters"] == hyper


@pytest.mark.parametrize(
    "model",
    [
        "gemini-2.5-flash",
        "gemini-2.0-flash-001",
        "gemini-3.5-flash",
        "gemini-3.1-flash-lite",
        "gemini-4-pro",
        "publishers/google/models/gemini-2.5-flash",
    ],
)
def test_tunable_models(model: str) -> None:
    assert base_model_problem(model) is None
    assert parse(good_vertex_job(base_model=model)).base_model == model


def test_a_newer_model_takes_any_adapter_size_the_service_decides() -> None:
    hyper = {"adapter_size": "ADAPTER_SIZE_THIRTY_TWO"}
    assert parse(good_vertex_job(base_model="gemini-3.5-flash", supervised_tuning_spec={"hyper_parameters": hyper}))


@pytest.mark.parametrize(
    "model",
    ["", "gemini", "gemini-2.5-flash-image", "gemini-2.5-flash-preview-tts", "gemini-exp-1206", "Gemini-2.5-Flash"],
)
def test_models_that_are_not_tuned(model: str) -> None:
    assert base_model_problem(model) is not None
    assert rejection(good_vertex_job(base_model=model)).field == "base_model"


def test_display_name_counts_characters_up_to_128() -> None:
    name = "\U0001f600" * MAX_DISPLAY_NAME_CHARS  # 512 bytes of UTF-8: Vertex counts characters
    assert parse(good_vertex_job(tuned_model_display_name=name)).display_name == name
    assert "129 characters" in rejection(good_vertex_job(tuned_model_display_name=name + "a")).problem


def test_vertex_labels_at_their_limits() -> None:
    labels = {"k" * 64: "v" * 64, "équipe": "recherche-ü", "x": "", "a_b-1": "0"}
    labels.update({f"l{index}": "v" for index in range(63 - len(labels))})
    spec = parse(good_vertex_job(labels=labels))
    assert spec.body["tuningJob"]["labels"] == labels


def test_label_names_start_with_a_letter() -> None:
    assert "start with a lowercase letter" in rejection(good_vertex_job(labels={"1team": "a"})).problem
    assert "start with a lowercase letter" in rejection(good_vertex_job(labels={"_team": "a"})).problem
    assert parse(good_vertex_job(labels={"日本": "東京"})).labels == {"日本": "東京"}


def test_validation_set_at_the_limit() -> None:
    job = good_vertex_job_dict()
    job["orchestrator"]["validation_examples"] = [{"text_input": "1", "output": "2"}] * MAX_VALIDATION_EXAMPLES
    assert len(parse(json.dumps(job).encode()).body["validationExamples"]) == MAX_VALIDATION_EXAMPLES


def test_multi_turn_examples_keep_every_turn_and_part() -> None:
    chat = {"contents": [turn("user", "hi", "there"), turn("model", "hello"), turn("user", "1"), turn("model", "2")]}
    spec = parse(with_training(chat))
    assert spec.body["trainingExamples"] == [chat]


def test_system_instruction_role_is_kept_as_written() -> None:
    example = {**conversation("1", "2"), "system_instruction": {"role": "system", "parts": [{"text": "brief"}]}}
    spec = parse(with_training(example))
    assert spec.body["trainingExamples"][0]["systemInstruction"] == {"role": "system", "parts": [{"text": "brief"}]}


def test_texts_have_no_gemini_api_character_limits() -> None:
    long = "x" * 50_000  # over the Gemini API's 40,000 and 5,000: Vertex limits tokens, which it counts itself
    spec = parse(with_training({"text_input": long, "output": long}))
    assert spec.body["trainingExamples"][0] == conversation(long, long)


def test_large_inline_dataset_parses() -> None:
    """Thousands of the smallest examples: denser in JSON containers than the tutorial's pairs."""
    examples = [conversation(str(index), str(index + 1)) for index in range(20_000)]
    spec = parse(with_training(*examples))
    assert spec.example_count == 20_000


# --- the JSONL --------------------------------------------------------------------------------------


def test_jsonl_is_one_sorted_compact_object_a_line() -> None:
    spec = parse(GOOD_VERTEX_JOB)
    data = jsonl(spec.body["trainingExamples"])

    lines = data.split(b"\n")
    assert lines[-1] == b"" and len(lines) == 4
    assert lines[0] == b'{"contents":[{"parts":[{"text":"1"}],"role":"user"},{"parts":[{"text":"2"}],"role":"model"}]}'
    assert lines[1].startswith(b'{"contents":') and lines[1].endswith(
        b'"systemInstruction":{"parts":[{"text":"Answer with digits."}]}}'
    )
    assert [json.loads(line) for line in lines[:-1]] == spec.body["trainingExamples"]


def test_jsonl_is_utf8_and_deterministic() -> None:
    examples = [conversation("café ☕", "\U0001f600\n")]
    assert jsonl(examples) == jsonl(json.loads(json.dumps(examples)))
    assert "café ☕".encode() in jsonl(examples)
    assert b"\\n" in jsonl(examples)


def test_jsonl_size_limit_is_measured_only_near_it() -> None:
    """A file far below the limit is never serialized twice; one near it is measured exactly."""
    assert MAX_JSONL_BYTES == 1_000_000_000
    big = parse(with_training(*[conversation("x" * 100, "y") for _ in range(1_000)]))
    assert len(jsonl(big.body["trainingExamples"])) < MAX_JSONL_BYTES


# --- a tutorial-format file ---------------------------------------------------------------------------


def test_tutorial_file_is_converted_with_the_configured_base_model() -> None:
    spec = parse(GOOD_TUTORIAL_JOB, default_base_model="gemini-2.5-flash")
    gemini = parse_job(GOOD_TUTORIAL_JOB, source="job.json")

    assert spec.body["tuningJob"] == {
        "baseModel": "gemini-2.5-flash",
        "tunedModelDisplayName": "number generator model",
        "supervisedTuningSpec": {"hyperParameters": {"epochCount": 5}},
    }
    pairs = gemini.body["tuningTask"]["trainingData"]["examples"]["examples"]
    assert spec.body["trainingExamples"] == [conversation(pair["textInput"], pair["output"]) for pair in pairs]
    assert "validationExamples" not in spec.body
    assert (spec.job_key, spec.example_count, spec.epoch_count) == (gemini.job_key, 15, 5)
    assert (spec.base_model, spec.batch_size, spec.expected_total_steps) == ("gemini-2.5-flash", None, None)
    assert len(spec.notes) == 2
    assert "learning_rate (0.001) left out" in spec.notes[0]
    assert "batch_size (2) left out" in spec.notes[1]


def test_tutorial_multiplier_carries_over_and_settings_without_equivalent_are_noted() -> None:
    job = good_job_dict(
        description="adds one",
        temperature=0.5,
        top_p=0.9,
        top_k=10,
        reader_project_numbers=[123],
        orchestrator={"tuned_model_id": "number-gen", "labels": {"Team": "Search"}, "priority": 4},
    )
    job["tuning_task"]["hyperparameters"] = {"learning_rate_multiplier": 0.5, "epoch_count": 2}

    spec = parse(json.dumps(job).encode(), default_base_model="gemini-2.0-flash-001")

    assert spec.body["tuningJob"]["supervisedTuningSpec"] == {
        "hyperParameters": {"epochCount": 2, "learningRateMultiplier": 0.5}
    }
    assert spec.body["tuningJob"]["description"] == "adds one"
    assert "labels" not in spec.body["tuningJob"]  # the tutorial's labels are ours, and free text
    assert (spec.tuned_model_id, spec.labels, spec.priority) == (None, {"Team": "Search"}, 4)
    assert [note.split(" ")[0] for note in spec.notes] == [
        "temperature",
        "top_p",
        "top_k",
        "reader_project_numbers",
        "orchestrator.tuned_model_id",
    ]


def test_tutorial_file_without_hyperparameters() -> None:
    job = good_job_dict()
    del job["tuning_task"]["hyperparameters"]
    spec = parse(json.dumps(job).encode(), default_base_model="gemini-2.5-flash")
    assert spec.body["tuningJob"]["supervisedTuningSpec"] == {}
    assert spec.notes == ()


def test_tutorial_file_without_a_base_model_mapping_names_the_key() -> None:
    error = rejection(GOOD_TUTORIAL_JOB)
    assert error.field == "base_model"
    assert "set [vertex] base_model in the config" in error.problem
    assert "'models/gemini-1.5-flash-001-tuning'" in error.problem


def test_a_mapping_to_a_model_vertex_does_not_tune_is_refused() -> None:
    error = rejection(good_job(), default_base_model="models/gemini-1.5-flash-001-tuning")
    assert error.field == "base_model"
    assert error.problem.startswith("[vertex] base_model 'models/gemini-1.5-flash-001-tuning', which replaces it,")


def test_the_parser_object_carries_the_configured_base_model() -> None:
    parser = VertexJobParser("gemini-2.5-flash")
    assert parser(good_job(), source="job.json", max_bytes=10_000).base_model == "gemini-2.5-flash"
    with pytest.raises(SpecError, match=r"set \[vertex\] base_model"):
        VertexJobParser("")(good_job(), source="job.json", max_bytes=10_000)


# --- errors -------------------------------------------------------------------------------------------


def test_error_names_file_field_and_example() -> None:
    error = rejection(with_training(conversation("1", "2"), conversation("1", "")))
    assert (error.file, error.field) == ("job.json", f"{TRAIN}[1].contents[1].parts[0].text")
    assert str(error) == f"job.json: {TRAIN}[1].contents[1].parts[0].text: must not be empty"


def test_file_size_limit_is_shared_with_the_gemini_form() -> None:
    error = rejection(b" " * 1_001, max_bytes=1_000)
    assert (error.field, error.problem) == ("", "the file is 1,001 bytes; the limit is 1,000 bytes")


def test_corpus_is_big_and_distinct() -> None:
    assert len(BAD_VERTEX_JOB_FILES) >= 80
    assert len({entry.name for entry in BAD_VERTEX_JOB_FILES}) == len(BAD_VERTEX_JOB_FILES)
    assert len({entry.data for entry in BAD_VERTEX_JOB_FILES}) == len(BAD_VERTEX_JOB_FILES)


@pytest.mark.parametrize("entry", BAD_VERTEX_JOB_FILES, ids=lambda entry: entry.name)
def test_corpus_entry_is_rejected_as_described(entry: BadJobFile) -> None:
    error = rejection(entry.data, max_bytes=entry.max_bytes)
    assert error.field == entry.field
    assert entry.problem_contains in error.problem


def test_good_builder_parses() -> None:
    assert parse(good_vertex_job()).example_count == 3


def test_the_readmes_vertex_job_file_and_the_shipped_examples_parse() -> None:
    root = Path(__file__).resolve().parents[2]
    section = (root / "README.md").read_text(encoding="utf-8").split("### Job files on Vertex", 1)[1]
    snippet = section.split("```json\n", 1)[1].split("```", 1)[0]
    assert parse(snippet.encode()).example_count == 2
    examples = root / "orchestrator" / "examples"
    assert parse((examples / "vertex-number-generator.json").read_bytes()).example_count == 14
    assert parse((examples / "vertex-gcs-dataset.json").read_bytes()).example_count is None
    converted = parse((examples / "number-generator.json").read_bytes(), default_base_model="gemini-2.5-flash")
    assert converted.example_count == 15
