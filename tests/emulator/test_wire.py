"""Lenient parsing and proto3-JSON formatting."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.registry import slug
from orchestrator.emulator.schema import normalize, tuned_model_schema
from orchestrator.emulator.wire import camel_to_snake, f32, parse_json_body, strip_trailing_commas, timestamp


def test_trailing_commas_outside_strings_are_dropped() -> None:
    """The tutorial's {"epoch_count":5,} parses; commas inside strings are kept."""
    text = '{"a": [1, 2,], "b": "x,}", "c": {"d": 5,\n},}'

    assert json.loads(strip_trailing_commas(text)) == {"a": [1, 2], "b": "x,}", "c": {"d": 5}}


def test_invalid_json_is_a_400_envelope() -> None:
    """A body that is not JSON is a 400 INVALID_ARGUMENT."""
    with pytest.raises(ApiError) as caught:
        parse_json_body(b'{"a": ')

    assert caught.value.body()["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(16.613504, 16.613504), (100.0, 100), (21.27659574468085, 21.276596), (-1.1145603e-06, -1.1145603e-06)],
)
def test_float32_printing(value: float, expected: float) -> None:
    """Floats print as float32, shortest form, integral values without a fraction (as protobuf does)."""
    assert f32(value) == expected


def test_timestamps_have_six_or_nine_digits() -> None:
    """create/update/complete times carry 6 fractional digits, start/compute times 9."""
    assert timestamp(1695081981.461545, 6) == "2023-09-19T00:06:21.461545Z"
    assert len(timestamp(1695081981.5424039, 9).split(".")[1]) == len("542403958Z")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("number generator model", "number-generator-model"),
        ("my display name 81", "my-display-name-81"),
        ("test_number_generator", "testnumbergenerator"),
        ("test_dataset_examples model", "testdatasetexamples-model"),
        ("", ""),
    ],
)
def test_slug_matches_generated_ids(name: str, expected: str) -> None:
    """slug() reproduces the prefixes of the generated ids in the transcripts (underscores vanish)."""
    assert slug(name) == expected


def test_snake_and_camel_mix_at_any_depth() -> None:
    """Mixed spellings normalise to camelCase; null means unset."""
    body = {
        "display_name": "x",
        "baseModel": "models/b",
        "tuning_task": {"hyperparameters": None, "training_data": {"examples": {"examples": [{"textInput": "1"}]}}},
    }

    out = normalize(body, tuned_model_schema("v1beta"))

    assert out == {
        "displayName": "x",
        "baseModel": "models/b",
        "tuningTask": {"trainingData": {"examples": {"examples": [{"textInput": "1"}]}}},
    }


def test_unknown_field_names_the_proto_path() -> None:
    """An unknown field is a 400 naming it and its proto path, with a BadRequest detail."""
    with pytest.raises(ApiError) as caught:
        normalize({"tuning_task": {"foo": 1}}, tuned_model_schema("v1beta"))

    error = caught.value.body()["error"]
    assert (
        error["message"]
        == "Invalid JSON payload received. Unknown name \"foo\" at 'tuned_model.tuning_task': Cannot find field."
    )
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


@pytest.mark.parametrize(
    "body",
    [
        {"baseModel": "models/a", "tunedModelSource": {"tunedModel": "tunedModels/x"}},
        {"tuningTask": {"hyperparameters": {"learningRate": 0.1, "learning_rate_multiplier": 2}}},
    ],
)
def test_oneof_conflicts_are_400(body: dict[str, object]) -> None:
    """Setting two members of a oneof (source_model, learning_rate_option) is a 400."""
    with pytest.raises(ApiError) as caught:
        normalize(body, tuned_model_schema("v1beta"))

    assert caught.value.http_status == 400
    assert "Oneof field" in caught.value.message


def test_v1beta3_has_no_multiplier_and_numbers_may_be_strings() -> None:
    """v1beta3 lacks learningRateMultiplier; numeric strings are numbers, as in proto JSON."""
    with pytest.raises(ApiError):
        normalize({"tuningTask": {"hyperparameters": {"learningRateMultiplier": 1}}}, tuned_model_schema("v1beta3"))

    out = normalize({"tuningTask": {"hyperparameters": {"epochCount": "5"}}}, tuned_model_schema("v1beta3"))
    assert out["tuningTask"]["hyperparameters"]["epochCount"] == 5


def _respell(value: object, choices: list[bool]) -> object:
    """The same body with each key spelt snake_case or camelCase (chosen per key)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            snake = choices.pop() if choices else False
            out[camel_to_snake(key) if snake else key] = _respell(item, choices)
        return out
    if isinstance(value, list):
        return [_respell(item, choices) for item in value]
    return value


@given(st.lists(st.booleans(), min_size=0, max_size=40), st.booleans())
def test_any_mix_of_spellings_and_trailing_commas_parses_the_same(choices: list[bool], commas: bool) -> None:
    """snake_case, camelCase or a mix at any depth, with or without trailing commas: one meaning."""
    canonical = {
        "displayName": "n",
        "baseModel": "models/gemini-1.5-flash-001-tuning",
        "tuningTask": {
            "hyperparameters": {"batchSize": 2, "learningRate": 0.001, "epochCount": 5},
            "trainingData": {"examples": {"examples": [{"textInput": "1", "output": "2"}]}},
        },
        "readerProjectNumbers": ["123"],
    }
    text = json.dumps(_respell(canonical, list(choices)))
    if commas:
        text = text.replace("}", ",}").replace("]", ",]").replace("{,}", "{}").replace("[,]", "[]")

    parsed = normalize(parse_json_body(text.encode()), tuned_model_schema("v1beta"))

    assert parsed == {**canonical, "readerProjectNumbers": [123]}
