"""Properties of the Vertex job-file parser over generated files.

Valid Vertex jobs are generated as snake_case dicts and written out with random key spellings, whitespace
and trailing commas (the writer of ``test_spec_properties``): the layout must never change the stored
document. The stored examples must be valid input again and survive the JSONL unchanged; a conversation
is accepted exactly when its roles alternate from user to model; tutorial files convert pair for pair;
and no input whatsoever raises anything but SpecError.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.spec import parse_job
from orchestrator.vertex.jobfile import ADAPTER_SIZES, jsonl, parse_vertex_job
from tests.unit.test_spec_properties import PROPERTIES, optional, valid_jobs, written

TEXT = st.text(min_size=1, max_size=20)
LABEL_TEXT = st.from_regex(r"[a-z][a-z0-9_-]{0,20}", fullmatch=True)


def parts() -> st.SearchStrategy[list[dict[str, str]]]:
    return st.lists(st.builds(lambda text: {"text": text}, TEXT), min_size=1, max_size=3)


@st.composite
def contents_examples(draw: st.DrawFn) -> dict[str, Any]:
    """A conversation of 1 to 3 user/model exchanges, sometimes with a system instruction."""
    exchanges = draw(st.integers(min_value=1, max_value=3))
    turns = [{"role": role, "parts": draw(parts())} for _ in range(exchanges) for role in ("user", "model")]
    example: dict[str, Any] = {"contents": turns}
    optional(draw, example, "system_instruction", st.builds(lambda p: {"parts": p}, parts()))
    return example


EXAMPLES = st.one_of(contents_examples(), st.fixed_dictionaries({"text_input": TEXT, "output": TEXT}))


@st.composite
def valid_vertex_jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid Vertex job as a snake_case dict, its data inline or in Cloud Storage."""
    job: dict[str, Any] = {"base_model": draw(st.sampled_from(["gemini-2.5-flash", "gemini-2.0-flash-001"]))}
    optional(draw, job, "tuned_model_display_name", st.text(max_size=128).filter(str.isprintable))
    optional(draw, job, "description", st.text(max_size=50))
    optional(draw, job, "labels", st.dictionaries(LABEL_TEXT, LABEL_TEXT, max_size=4))
    spec: dict[str, Any] = {}
    hyper: dict[str, Any] = {}
    optional(draw, hyper, "epoch_count", st.integers(min_value=1, max_value=2**63 - 1))
    optional(draw, hyper, "learning_rate_multiplier", st.floats(min_value=1e-6, max_value=100))
    optional(draw, hyper, "adapter_size", st.sampled_from([name for name, size in ADAPTER_SIZES.items() if size <= 8]))
    optional(draw, spec, "hyper_parameters", st.just(hyper))
    optional(draw, spec, "export_last_checkpoint_only", st.booleans())
    section: dict[str, Any] = {}
    if draw(st.booleans()):
        spec["training_dataset_uri"] = "gs://my-bucket/train.jsonl"
    else:
        section["training_examples"] = draw(st.lists(EXAMPLES, min_size=1, max_size=4))
    optional(draw, section, "validation_examples", st.lists(EXAMPLES, min_size=1, max_size=3))
    optional(draw, section, "job_key", st.from_regex(r"[ -~]{1,50}", fullmatch=True))
    optional(draw, section, "priority", st.integers(min_value=-10, max_value=10))
    job["supervised_tuning_spec"] = spec
    if section:
        job["orchestrator"] = section
    return job


@PROPERTIES
@given(job=valid_vertex_jobs(), data=st.data())
def test_any_valid_vertex_job_parses_whatever_its_spelling_and_layout(job: dict[str, Any], data: st.DataObject) -> None:
    plain = parse_vertex_job(json.dumps(job).encode(), source="plain.json")
    text = data.draw(written(job))

    spec = parse_vertex_job(text.encode(), source="written.json")

    assert spec.body == plain.body
    inline = job.get("orchestrator", {}).get("training_examples")
    assert spec.example_count == (None if inline is None else len(inline))  # None: a gs:// dataset
    assert spec.body["tuningJob"].get("labels", {}) == job.get("labels", {})


@PROPERTIES
@given(job=valid_vertex_jobs())
def test_stored_examples_are_valid_input_again_and_survive_the_jsonl(job: dict[str, Any]) -> None:
    spec = parse_vertex_job(json.dumps(job).encode(), source="job.json")
    again = dict(job)
    section = dict(job.get("orchestrator", {}))
    for field, key in (("training_examples", "trainingExamples"), ("validation_examples", "validationExamples")):
        if key in spec.body:
            section[field] = spec.body[key]
            lines = jsonl(spec.body[key]).decode().split("\n")
            assert lines[-1] == ""
            assert [json.loads(line) for line in lines[:-1]] == spec.body[key]
    again["orchestrator"] = section

    respec = parse_vertex_job(json.dumps(again).encode(), source="again.json")

    assert respec.body == spec.body


@PROPERTIES
@given(roles=st.lists(st.sampled_from(["user", "model"]), min_size=1, max_size=6))
def test_a_conversation_is_accepted_exactly_when_it_alternates_from_user_to_model(roles: list[str]) -> None:
    turns = [{"role": role, "parts": [{"text": "x"}]} for role in roles]
    job = {
        "base_model": "gemini-2.5-flash",
        "supervised_tuning_spec": {},
        "orchestrator": {"training_examples": [{"contents": turns}]},
    }
    alternates = all(role == ("user", "model")[index % 2] for index, role in enumerate(roles))
    valid = alternates and roles[-1] == "model"
    try:
        parse_vertex_job(json.dumps(job).encode(), source="job.json")
    except SpecError as error:
        assert not valid
        assert error.field.startswith("orchestrator.training_examples[0].contents[")
        assert error.field.endswith("].role")
    else:
        assert valid


@PROPERTIES
@given(job=valid_jobs())
def test_any_valid_tutorial_job_converts_pair_for_pair(job: dict[str, Any]) -> None:
    data = json.dumps(job).encode()
    gemini = parse_job(data, source="job.json")

    spec = parse_vertex_job(data, source="job.json", default_base_model="gemini-2.5-flash")

    pairs = gemini.body["tuningTask"]["trainingData"]["examples"]["examples"]
    converted = [
        (e["contents"][0]["parts"][0]["text"], e["contents"][1]["parts"][0]["text"])
        for e in spec.body["trainingExamples"]
    ]
    assert converted == [(pair["textInput"], pair["output"]) for pair in pairs]
    assert (spec.job_key, spec.priority, spec.labels, spec.epoch_count) == (
        gemini.job_key,
        gemini.priority,
        gemini.labels,
        gemini.epoch_count,
    )
    hyper = gemini.body["tuningTask"].get("hyperparameters", {})
    dropped = {"learningRate", "batchSize"} & hyper.keys()
    dropped |= {"temperature", "topP", "topK", "readerProjectNumbers"} & gemini.body.keys()
    assert len(spec.notes) == len(dropped) + (gemini.tuned_model_id is not None)


@PROPERTIES
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_spec_errors(data: bytes) -> None:
    try:
        parse_vertex_job(data, source="fuzz.json", max_bytes=100_000, default_base_model="gemini-2.5-flash")
    except SpecError as error:
        assert error.file == "fuzz.json"
        assert error.problem


@PROPERTIES
@given(
    job=valid_vertex_jobs(),
    junk=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=5,
    ),
    data=st.data(),
)
def test_any_value_in_any_place_raises_only_spec_errors(job: dict[str, Any], junk: Any, data: st.DataObject) -> None:
    """Replace one value anywhere in a valid job with arbitrary JSON: a SpecError or a job, nothing else."""
    node: Any = job
    while True:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        child = node[key]
        if not isinstance(child, dict | list) or not child or data.draw(st.booleans()):
            node[key] = junk
            break
        node = child
    try:
        parse_vertex_job(json.dumps(job).encode(), source="junk.json")
    except SpecError as error:
        assert error.problem
