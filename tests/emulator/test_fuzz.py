"""Hostile create bodies never crash the emulator: each is a 4xx ApiError or a model that renders."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.records import SimClock
from orchestrator.emulator.registry import Registry
from orchestrator.emulator.schema import normalize, tuned_model_schema
from orchestrator.emulator.settings import EmulatorSettings
from orchestrator.emulator.validation import build_create_spec
from orchestrator.emulator.wire import parse_json_body
from tests.emulator.conftest import tutorial_body

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
PATHS = [
    ("display_name",),
    ("description",),
    ("base_model",),
    ("temperature",),
    ("top_k",),
    ("reader_project_numbers",),
    ("tuning_task", "hyperparameters", "epoch_count"),
    ("tuning_task", "hyperparameters", "batch_size"),
    ("tuning_task", "hyperparameters", "learning_rate"),
    ("tuning_task", "training_data", "examples", "examples"),
    ("tuning_task", "training_data"),
    ("tuned_model_source",),
    ("state",),
]


def _set(body: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    node = body
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[path[-1]] = value


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON), max_size=3), st.sampled_from(["v1beta", "v1beta3", "v1alpha"]))
def test_mutated_tutorial_bodies_are_handled(mutations: list[tuple[tuple[str, ...], Any]], version: str) -> None:
    """Random values at the fields a client sets: a 4xx, or a model whose JSON renders in every state."""
    body = tutorial_body()
    for path, value in mutations:
        _set(body, path, value)
    settings_ = EmulatorSettings()
    registry = Registry(settings_, SimClock(time.monotonic, 1.0, time.time()))
    try:
        raw = json.dumps(body).encode()
        spec = build_create_spec(
            normalize(parse_json_body(raw), tuned_model_schema(version)), version, settings_, registry.source_base
        )
        record = registry.create(spec, None, "default")
    except ApiError as error:
        assert 400 <= error.http_status < 500
        return
    for now in (0.0, 1e6):
        model = json.loads(record.encode_model(now, registry.clock, int_enums=False))
        operation = json.loads(record.encode_operation(now, registry.clock, int_enums=True, refresh=0.0))
        assert model["name"] == operation["metadata"]["tunedModel"]


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_arbitrary_json_bodies_are_handled(value: Any) -> None:
    """Any JSON document as a body: accepted or a 400, never an exception."""
    try:
        raw = json.dumps(value).encode()
        normalize(parse_json_body(raw), tuned_model_schema("v1beta"))
    except ApiError as error:
        assert error.http_status == 400


@pytest.mark.parametrize("value", [[float("inf")], [float("nan")], [1e300], [-1e19], [2**63]])
def test_non_finite_and_out_of_range_int64_values_are_a_400(value: list[float | int]) -> None:
    """Found by the test above: ``[Infinity]`` for an int64 field raised OverflowError (a 500)."""
    with pytest.raises(ApiError) as caught:
        normalize(parse_json_body(json.dumps({"reader_project_numbers": value}).encode()), tuned_model_schema("v1beta"))
    assert caught.value.http_status == 400
