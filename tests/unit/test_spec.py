"""The job-file parser: the tutorial's body, both spellings, the API's limits at and one past the edge, the corpus."""

from __future__ import annotations

import gc
import hashlib
import json
from typing import Any

import pytest

from orchestrator.errors import SpecError
from orchestrator.spec import (
    DEFAULT_MAX_FILE_BYTES,
    MAX_DEPTH,
    MAX_INPUT_CHARS,
    MAX_OUTPUT_CHARS,
    JobSpec,
    parse_job,
)
from tests.corpus import (
    BAD_JOB_FILES,
    GOOD_TUTORIAL_JOB,
    OMIT,
    TUTORIAL_SCRIPT_COPY,
    TUTORIAL_SEED_PATH,
    BadJobFile,
    good_job,
    good_job_dict,
)

EXAMPLES = "tuning_task.training_data.examples.examples"


def parse(data: bytes, **kwargs: Any) -> JobSpec:
    return parse_job(data, source="job.json", **kwargs)


def rejection(data: bytes, **kwargs: Any) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse(data, **kwargs)
    return caught.value


def with_examples(*examples: dict[str, Any]) -> bytes:
    job = good_job_dict()
    job["tuning_task"]["training_data"]["examples"]["examples"] = list(examples)
    return json.dumps(job).encode()


# --- the tutorial -----------------------------------------------------------------------------------


def test_tutorial_body_parses() -> None:
    spec = parse(GOOD_TUTORIAL_JOB)

    assert spec.display_name == "number generator model"
    assert spec.base_model == "models/gemini-1.5-flash-001-tuning"
    assert (spec.example_count, spec.batch_size, spec.epoch_count) == (15, 2, 5)
    assert spec.expected_total_steps == 38  # what the API reported as totalSteps for this body
    task = spec.body["tuningTask"]
    assert task["hyperparameters"] == {"batchSize": 2, "learningRate": 0.001, "epochCount": 5}
    assert task["trainingData"]["examples"]["examples"][0] == {"textInput": "1", "output": "2"}
    assert task["trainingData"]["examples"]["examples"][8] == {"textInput": "1,000", "output": "1,001"}
    assert list(spec.body) == ["displayName", "baseModel", "tuningTask"]


def test_tutorial_constant_is_the_seed_verbatim() -> None:
    """The body is the tutorial's, byte for byte: the copy of its script kept in the repository holds
    it, and so does the tutorial itself where a checkout has ``../shared/seeds`` beside it."""
    assert GOOD_TUTORIAL_JOB.decode() in TUTORIAL_SCRIPT_COPY.read_text(encoding="utf-8")
    if TUTORIAL_SEED_PATH.exists():
        assert GOOD_TUTORIAL_JOB.decode() in TUTORIAL_SEED_PATH.read_text(encoding="utf-8")


def test_defaults_without_orchestrator_section() -> None:
    data = good_job()
    spec = parse(data)

    assert spec.job_key == "sha256:" + hashlib.sha256(data).hexdigest()
    assert spec.job_key == parse(data).job_key
    assert parse(data + b"\n").job_key != spec.job_key  # the key is of the bytes, not of the meaning
    assert (spec.priority, spec.tuned_model_id, spec.labels) == (0, None, {})
    assert (spec.max_run_time, spec.stall_timeout) == (None, None)


def test_orchestrator_section_is_read_and_left_out_of_the_body() -> None:
    section = {
        "job_key": "nightly-2026-11-21",
        "priority": -3,
        "tunedModelId": "number-gen-a1",
        "labels": {"team": "search", "teamName": "x", "team_name": "y"},
        "max_run_time": 3600,
        "stallTimeout": 90.5,
    }
    spec = parse(good_job(orchestrator=section))

    assert spec.job_key == "nightly-2026-11-21"
    assert spec.priority == -3
    assert spec.tuned_model_id == "number-gen-a1"
    assert spec.labels == {"team": "search", "teamName": "x", "team_name": "y"}
    assert (spec.max_run_time, spec.stall_timeout) == (3600.0, 90.5)
    assert "orchestrator" not in spec.body


def test_hyperparameters_left_to_the_api() -> None:
    job = good_job_dict()
    del job["tuning_task"]["hyperparameters"]
    spec = parse(json.dumps(job).encode())

    assert (spec.epoch_count, spec.batch_size, spec.expected_total_steps) == (None, None, None)
    assert "hyperparameters" not in spec.body["tuningTask"]


def test_optional_model_fields_in_camel_case() -> None:
    spec = parse(
        good_job(
            description='{"description": "AI Studio stores JSON here"}',
            temperature=0,
            top_p=1,
            topK=64,
            reader_project_numbers=[123, "456"],
        )
    )

    assert spec.body["temperature"] == 0.0
    assert spec.body["topP"] == 1.0
    assert spec.body["topK"] == 64
    assert spec.body["readerProjectNumbers"] == ["123", "456"]  # int64 travels as a JSON string
    assert spec.body["description"].startswith("{")


def test_whole_floats_count_as_integers() -> None:
    job = good_job_dict()
    job["tuning_task"]["hyperparameters"] = {"epoch_count": 5.0, "batch_size": 2e0, "learning_rate_multiplier": 1}

    hyper = parse(json.dumps(job).encode()).body["tuningTask"]["hyperparameters"]

    assert hyper == {"epochCount": 5, "batchSize": 2, "learningRateMultiplier": 1.0}
    assert type(hyper["epochCount"]) is int


# --- spellings and syntax ---------------------------------------------------------------------------


def test_snake_and_camel_mixed_at_every_depth_give_the_same_body() -> None:
    snake = parse(GOOD_TUTORIAL_JOB)
    camel = GOOD_TUTORIAL_JOB.replace(b'"display_name"', b'"displayName"').replace(b'"tuning_task"', b'"tuningTask"')
    camel = camel.replace(b'"batch_size"', b'"batchSize"').replace(b'"training_data"', b'"trainingData"')
    camel = camel.replace(b'"text_input": "3"', b'"textInput": "3"').replace(
        b'"text_input": "one"', b'"textInput": "one"'
    )

    mixed = parse(camel)

    assert camel != GOOD_TUTORIAL_JOB
    assert mixed.body == snake.body
    assert parse(json.dumps(snake.body).encode()).body == snake.body


def test_trailing_commas_inside_strings_are_kept() -> None:
    spec = parse(with_examples({"text_input": "a,]", "output": "b, }"}, {"text_input": 'q",]', "output": "\\,}"}))

    examples = spec.body["tuningTask"]["trainingData"]["examples"]["examples"]
    assert examples == [{"textInput": "a,]", "output": "b, }"}, {"textInput": 'q",]', "output": "\\,}"}]


def test_trailing_commas_after_every_kind_of_value() -> None:
    data = (
        b'{"base_model": "models/m",\n "top_k": 3 ,\t"reader_project_numbers": [1, 2,],'
        b' "tuning_task": {"hyperparameters": {"learning_rate": 1e-3,}, "training_data": {"examples": {"examples":'
        b' [{"text_input": "i", "output": "o",} ,\r\n],},},},"description": "d"  ,  }'
    )
    spec = parse(data)

    assert spec.body["readerProjectNumbers"] == ["1", "2"]
    assert spec.example_count == 1


def test_json_error_positions_point_into_the_file_despite_trailing_commas() -> None:
    error = rejection(b'{"a": [1,],\n "b": [2,],\n  "c" 3}')

    assert error.field == ""
    assert "line 3, column 7" in error.problem


def test_unicode_counts_code_points_not_bytes() -> None:
    output = "\N{GRINNING FACE}" * MAX_OUTPUT_CHARS  # 20,000 UTF-8 bytes, 5,000 code points
    spec = parse(with_examples({"text_input": "é" * MAX_INPUT_CHARS, "output": output}))

    assert spec.body["tuningTask"]["trainingData"]["examples"]["examples"][0]["output"] == output


def test_escaped_surrogate_pairs_are_fine() -> None:
    data = with_examples({"text_input": "1", "output": "2"}).replace(b'"2"', b'"\\ud83d\\ude00"')

    assert parse(data).body["tuningTask"]["trainingData"]["examples"]["examples"][0]["output"] == "\N{GRINNING FACE}"


# --- limits: at the limit passes, one past fails ------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "field", "size"),
    [
        ({"text_input": "x" * (MAX_INPUT_CHARS + 1), "output": "o"}, "text_input", "40,001 characters"),
        ({"text_input": "i", "output": "x" * (MAX_OUTPUT_CHARS + 1)}, "output", "5,001 characters"),
    ],
)
def test_example_text_limits(example: dict[str, str], field: str, size: str) -> None:
    at_limit = {key: value[:-1] if len(value) > 1 else value for key, value in example.items()}
    assert parse(with_examples({"text_input": "a", "output": "b"}, at_limit)).example_count == 2

    error = rejection(with_examples({"text_input": "a", "output": "b"}, example))

    assert error.field == f"{EXAMPLES}[1].{field}"
    assert size in error.problem


def test_display_name_limit_is_in_utf8_bytes() -> None:
    assert parse(good_job(display_name="n" * 40)).display_name == "n" * 40
    assert parse(good_job(display_name="é" * 20)).display_name == "é" * 20  # 40 bytes

    error = rejection(good_job(display_name="é" * 20 + "x"))

    assert error.field == "display_name"
    assert "41 bytes in UTF-8 (21 characters); the limit is 40 bytes" in error.problem


@pytest.mark.parametrize("model_id", ["a", "a" * 40, "a-1", "m0", "number-gen-a1", "a" + "-" * 38 + "z"])
def test_valid_tuned_model_ids(model_id: str) -> None:
    assert parse(good_job(orchestrator={"tuned_model_id": model_id})).tuned_model_id == model_id


@pytest.mark.parametrize("model_id", ["a" * 41, "A", "a_b", "1a", "a-", "-a", "", "a b", "é"])
def test_invalid_tuned_model_ids(model_id: str) -> None:
    error = rejection(good_job(orchestrator={"tuned_model_id": model_id}))

    assert error.field == "orchestrator.tuned_model_id"
    assert "[a-z]([a-z0-9-]{0,38}[a-z0-9])?" in error.problem


def test_orchestrator_limits() -> None:
    labels = {f"{i:064d}": "v" * 64 for i in range(32)}
    spec = parse(good_job(orchestrator={"job_key": "k" * 200, "labels": labels, "priority": 2**31 - 1}))
    assert (len(spec.job_key), len(spec.labels), spec.priority) == (200, 32, 2**31 - 1)

    assert rejection(good_job(orchestrator={"priority": -(2**31) - 1})).field == "orchestrator.priority"
    assert rejection(good_job(orchestrator={"job_key": "k" * 201})).field == "orchestrator.job_key"
    assert rejection(good_job(orchestrator={"labels": {**labels, "x": "y"}})).field == "orchestrator.labels"


@pytest.mark.parametrize("name", ["epoch_count", "batch_size"])
def test_int32_hyperparameters(name: str) -> None:
    def job(value: int) -> bytes:
        return good_job(tuning_task={**good_job_dict()["tuning_task"], "hyperparameters": {name: value}})

    assert parse(job(2**31 - 1)).body["tuningTask"]["hyperparameters"] != {}
    for bad in (0, -1, 2**31):
        assert rejection(job(bad)).field == f"tuning_task.hyperparameters.{name}"


def test_file_size_limit_is_checked_before_decoding() -> None:
    data = good_job()

    assert parse(data, max_bytes=len(data)).example_count == 3
    error = rejection(b"\xff" * (len(data) + 1), max_bytes=len(data))
    assert f"{len(data) + 1:,} bytes; the limit is {len(data):,} bytes" in error.problem


def test_nesting_at_the_limit_is_only_a_type_error() -> None:
    nested: Any = "deep"
    for _ in range(MAX_DEPTH - 1):
        nested = [nested]

    error = rejection(good_job(description=nested))

    assert error.field == "description"
    assert "must be a string, not an array" in error.problem


def test_numbers_out_of_every_range_are_spec_errors() -> None:
    def job(literal: bytes) -> bytes:
        return good_job(temperature=1).replace(b'"temperature": 1', b'"temperature": ' + literal)

    for literal in (b"1e400", b"-1e400", b"9" * 4000, b"-" + b"9" * 400, b"1" + b"0" * 400 + b".5"):
        assert rejection(job(literal)).field == "temperature"
    for literal in (b"9" * 5000, b"-" + b"9" * 5000):  # beyond what int() converts: refused while parsing
        error = rejection(job(literal))
        assert error.field == ""
        assert "more than 4,300 digits" in error.problem


def test_error_carries_file_field_and_problem() -> None:
    error = rejection(good_job(base_model=OMIT))

    assert error.as_dict() == {"file": "job.json", "field": "base_model", "problem": error.problem}
    assert str(error).startswith("job.json: base_model: is required")


# --- the shared corpus --------------------------------------------------------------------------------


def test_corpus_is_big_and_distinct() -> None:
    assert len(BAD_JOB_FILES) >= 50
    assert len({entry.name for entry in BAD_JOB_FILES}) == len(BAD_JOB_FILES)
    assert len({entry.data for entry in BAD_JOB_FILES}) == len(BAD_JOB_FILES)
    assert all(
        entry.max_bytes == DEFAULT_MAX_FILE_BYTES for entry in BAD_JOB_FILES if entry.name != "over the size limit"
    )


@pytest.mark.parametrize("entry", BAD_JOB_FILES, ids=[entry.name for entry in BAD_JOB_FILES])
def test_corpus_entry_is_rejected_as_described(entry: BadJobFile) -> None:
    error = rejection(entry.data, max_bytes=entry.max_bytes)

    assert error.field == entry.field
    assert entry.problem_contains in error.problem


def test_good_job_builder() -> None:
    spec = parse(good_job(display_name="x", orchestrator={"priority": 5}))

    assert (spec.display_name, spec.priority, spec.example_count) == ("x", 5, 3)


# --- the maximal file ---------------------------------------------------------------------------------


def test_maximal_file_parses() -> None:
    example = {"text_input": "i" * MAX_INPUT_CHARS, "output": "o" * MAX_OUTPUT_CHARS}
    job = good_job_dict()
    job["tuning_task"]["training_data"]["examples"]["examples"] = [example] * 500
    data = json.dumps(job, indent=1).replace("\n}", ",\n}").encode()  # ~22 MB, a trailing comma per object
    assert len(data) > 22_000_000

    spec = parse(data)

    assert spec.example_count == 500
    assert spec.expected_total_steps == 1250
    assert spec.body["tuningTask"]["trainingData"]["examples"]["examples"][499]["output"] == "o" * MAX_OUTPUT_CHARS


def test_the_collector_pause_nests_and_restores_what_it_found() -> None:
    from orchestrator.spec import cyclic_gc_paused

    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause is still under way
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with pytest.raises(SpecError), cyclic_gc_paused():
        parse(b"{")
    assert gc.isenabled()
