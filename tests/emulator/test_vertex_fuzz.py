"""Hostile Vertex create bodies, datasets and upload bodies never crash the emulator: each is a 4xx, or a
job / object that renders."""

from __future__ import annotations

import json
import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.records import SimClock
from orchestrator.emulator.settings import EmulatorSettings
from orchestrator.emulator.storage.handlers import parse_multipart
from orchestrator.emulator.storage.objects import ObjectStore
from orchestrator.emulator.vertex.jobs import TuningJobs, parse_filter
from orchestrator.emulator.vertex.records import JobFaults
from orchestrator.emulator.vertex.validation import build_tuning_spec
from orchestrator.emulator.wire import parse_json_body
from tests.emulator.test_fuzz import JSON, _set
from tests.emulator.vertex_support import create_body, example, jsonl

PATHS = [
    ("baseModel",),
    ("tunedModelDisplayName",),
    ("labels",),
    ("labels", "team"),
    ("supervisedTuningSpec",),
    ("supervisedTuningSpec", "trainingDatasetUri"),
    ("supervisedTuningSpec", "validationDatasetUri"),
    ("supervisedTuningSpec", "hyperParameters", "epochCount"),
    ("supervisedTuningSpec", "hyperParameters", "learningRateMultiplier"),
    ("supervisedTuningSpec", "hyperParameters", "adapterSize"),
    ("supervised_tuning_spec", "export_last_checkpoint_only"),
    ("preTunedModel",),
    ("encryptionSpec",),
]
LINES = st.one_of(
    JSON.map(json.dumps),
    st.text(max_size=40),
    st.builds(lambda n: json.dumps(example(n)), st.integers(0, 99)),
)


def _world() -> tuple[ObjectStore, TuningJobs]:
    clock = SimClock(time.monotonic, 1.0, time.time())
    return ObjectStore(time.time), TuningJobs(EmulatorSettings(), clock)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON), max_size=3), st.lists(LINES, max_size=6))
def test_mutated_bodies_and_datasets_are_handled(
    mutations: list[tuple[tuple[str, ...], Any]], lines: list[str]
) -> None:
    """Random fields and random dataset lines: a 400 naming what is wrong, or a job that renders in every state."""
    store, jobs = _world()
    store.put("tuning-data", "train.jsonl", "\n".join(lines).encode(), content_type="application/jsonl")
    store.put("tuning-data", "good.jsonl", jsonl([example(1)]), content_type="application/jsonl")
    body = create_body(dataset="gs://tuning-data/train.jsonl")
    for path, value in mutations:
        _set(body, path, value)
    try:
        spec = build_tuning_spec(parse_json_body(json.dumps(body).encode()), store)
    except ApiError as error:
        assert error.http_status == 400 and error.message
        return
    record = jobs.create("123456789012", "us-central1", spec, JobFaults(), 0.0)
    for now in (0.0, 1e3, 1e7):
        rendered = json.loads(record.encode(now, jobs.clock))
        assert rendered["name"] == record.name


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_filter_is_parsed_or_refused(text: str) -> None:
    try:
        terms = parse_filter(text)
    except ApiError as error:
        assert error.http_status == 400
    else:
        assert all(kind in ("state", "label") for kind, _, _ in terms)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(['multipart/related; boundary="b"', "multipart/related", "text/plain"]))
def test_any_multipart_body_is_parsed_or_refused(body: bytes, content_type: str) -> None:
    try:
        metadata, data, media_type = parse_multipart(body, content_type)
    except ApiError as error:
        assert error.http_status == 400
    else:
        assert isinstance(data, bytes) and isinstance(media_type, str) and metadata is not None
