"""Properties of the job-file parser over generated files.

Valid jobs are generated as snake_case dicts and written out by a small JSON writer that picks, per key,
snake_case or camelCase, and adds random whitespace and trailing commas: the spelling and layout must never
change the parsed body. Over-long strings must be refused at their own path, and no input whatsoever may
raise anything but SpecError.
"""

from __future__ import annotations

import json
import operator
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator.errors import SpecError
from orchestrator.spec import (
    MAX_DISPLAY_NAME_BYTES,
    MAX_INPUT_CHARS,
    MAX_JOB_KEY_CHARS,
    MAX_LABEL_CHARS,
    MAX_OUTPUT_CHARS,
    TUNED_MODEL_ID_PATTERN,
    parse_job,
)
from tests.corpus import GOOD_TUTORIAL_JOB, good_job

PROPERTIES = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EXAMPLES = "tuning_task.training_data.examples.examples"

CHARACTERS = st.characters(codec="utf-8")  # any code point but a lone surrogate, which UTF-8 cannot carry
WHITESPACE = st.sampled_from(["", "", " ", "\n", "\t", "  ", "\r\n  "])


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def text_up_to(limit: int) -> st.SearchStrategy[str]:
    """Short random text, or a run of one character of any length up to ``limit`` (so limits get hit)."""
    run = st.builds(operator.mul, CHARACTERS, st.integers(min_value=1, max_value=limit))
    return st.one_of(st.text(min_size=1, max_size=30), run)


def optional(draw: st.DrawFn, job: dict[str, Any], name: str, strategy: st.SearchStrategy[Any]) -> None:
    if draw(st.booleans()):
        job[name] = draw(strategy)


@st.composite
def valid_jobs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid job as a snake_case dict."""
    job: dict[str, Any] = {}
    optional(
        draw, job, "display_name",
        st.text(max_size=10).filter(lambda s: len(s.encode()) <= MAX_DISPLAY_NAME_BYTES and s.isprintable())
    )
    optional(draw, job, "description", st.text(max_size=50))
    job["base_model"] = "models/" + draw(st.from_regex(r"[a-z0-9.-]{1,30}", fullmatch=True))
    optional(draw, job, "temperature", st.floats(min_value=0, max_value=2))
    optional(draw, job, "top_p", st.floats(min_value=0, max_value=1))
    optional(draw, job, "top_k", st.integers(min_value=1, max_value=2**31 - 1))
    optional(draw, job, "reader_project_numbers", st.lists(st.integers(min_value=1, max_value=2**63 - 1), max_size=3))
    task: dict[str, Any] = {}
    if draw(st.booleans()):
        hyper: dict[str, Any] = {}
        optional(draw, hyper, "epoch_count", st.integers(min_value=1, max_value=2**31 - 1))
        optional(draw, hyper, "batch_size", st.integers(min_value=1, max_value=2**31 - 1))
        rate = draw(st.sampled_from([None, "learning_rate", "learning_rate_multiplier"]))
        if rate is not None:
            hyper[rate] = draw(st.floats(min_value=1e-9, max_value=100))
        task["hyperparameters"] = hyper
    examples = st.fixed_dictionaries(
        {"text_input": text_up_to(MAX_INPUT_CHARS), "output": text_up_to(MAX_OUTPUT_CHARS)}
    )
    task["training_data"] = {"examples": {"examples": draw(st.lists(examples, min_size=1, max_size=4))}}
    job["tuning_task"] = task
    if draw(st.booleans()):
        section: dict[str, Any] = {}
        optional(draw, section, "job_key", st.from_regex(r"[ -~]{1,200}", fullmatch=True))
        optional(draw, section, "priority", st.integers(min_value=-(2**31), max_value=2**31 - 1))
        optional(draw, section, "tuned_model_id", st.from_regex(TUNED_MODEL_ID_PATTERN, fullmatch=True))
        labels = st.dictionaries(
            st.text(min_size=1, max_size=MAX_LABEL_CHARS).filter(str.isprintable),
            st.text(max_size=MAX_LABEL_CHARS).filter(str.isprintable),
            max_size=4,
        )
        optional(draw, section, "labels", labels)
        optional(draw, section, "max_run_time", st.floats(min_value=1e-3, max_value=1e9))
        optional(draw, section, "stall_timeout", st.floats(min_value=1e-3, max_value=1e9))
        job["orchestrator"] = section
    return job


def write(draw: st.DrawFn, value: Any, *, respell: bool = True) -> str:
    """JSON text for ``value`` with random key spellings, whitespace and trailing commas."""
    if isinstance(value, dict):
        members = []
        for key, item in value.items():
            name = camel(key) if respell and draw(st.booleans()) else key
            text = write(draw, item, respell=respell and key != "labels")
            members.append(f"{draw(WHITESPACE)}{json.dumps(name)}{draw(WHITESPACE)}:{draw(WHITESPACE)}{text}")
        return "{" + ",".join(members) + trailing(draw, members) + "}"
    if isinstance(value, list):
        items = [draw(WHITESPACE) + write(draw, item, respell=respell) for item in value]
        return "[" + ",".join(items) + trailing(draw, items) + "]"
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def written(draw: st.DrawFn, value: dict[str, Any]) -> str:
    """``value`` as JSON text, spelled and laid out at random by :func:`write`."""
    return write(draw, value)


def trailing(draw: st.DrawFn, members: list[str]) -> str:
    comma = "," if members and draw(st.booleans()) else ""
    return comma + draw(WHITESPACE)


@PROPERTIES
@given(job=valid_jobs(), data=st.data())
def test_any_valid_job_parses_whatever_its_spelling_and_layout(job: dict[str, Any], data: st.DataObject) -> None:
    plain = parse_job(json.dumps(job).encode(), source="plain.json")
    text = data.draw(written(job))

    spec = parse_job(text.encode(), source="written.json")

    assert spec.body == plain.body
    assert spec.example_count == len(job["tuning_task"]["training_data"]["examples"]["examples"])
    assert spec.labels == job.get("orchestrator", {}).get("labels", {})
    assert spec.tuned_model_id == job.get("orchestrator", {}).get("tuned_model_id")
    examples = spec.body["tuningTask"]["trainingData"]["examples"]["examples"]
    originals = job["tuning_task"]["training_data"]["examples"]["examples"]
    assert [(e["textInput"], e["output"]) for e in examples] == [(e["text_input"], e["output"]) for e in originals]


@PROPERTIES
@given(job=valid_jobs())
def test_the_body_round_trips(job: dict[str, Any]) -> None:
    spec = parse_job(json.dumps(job).encode(), source="job.json")
    again = dict(spec.body)
    if "orchestrator" in job:
        again["orchestrator"] = job["orchestrator"]

    respec = parse_job(json.dumps(again).encode(), source="again.json")

    assert respec.body == spec.body
    assert (respec.priority, respec.labels, respec.max_run_time) == (spec.priority, spec.labels, spec.max_run_time)


@st.composite
def jobs_with_one_long_string(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """A valid job with one string field made one or more characters (or bytes) too long, and its path."""
    job = draw(valid_jobs())
    examples = job["tuning_task"]["training_data"]["examples"]["examples"]
    index = draw(st.integers(min_value=0, max_value=len(examples) - 1))
    char = draw(CHARACTERS)
    excess = draw(st.integers(min_value=1, max_value=3))
    section = job.setdefault("orchestrator", {})
    target = draw(st.sampled_from(["display_name", "text_input", "output", "job_key", "tuned_model_id", "label"]))
    if target == "display_name":
        job["display_name"] = char * (MAX_DISPLAY_NAME_BYTES // len(char.encode()) + excess)
        return job, "display_name"
    if target == "text_input":
        examples[index]["text_input"] = char * (MAX_INPUT_CHARS + excess)
        return job, f"{EXAMPLES}[{index}].text_input"
    if target == "output":
        examples[index]["output"] = char * (MAX_OUTPUT_CHARS + excess)
        return job, f"{EXAMPLES}[{index}].output"
    if target == "job_key":
        section["job_key"] = "k" * (MAX_JOB_KEY_CHARS + excess)
        return job, "orchestrator.job_key"
    if target == "tuned_model_id":
        section["tuned_model_id"] = "m" * (40 + excess)
        return job, "orchestrator.tuned_model_id"
    section["labels"] = {"team": char * (MAX_LABEL_CHARS + excess)}
    return job, "orchestrator.labels.team"


@PROPERTIES
@given(case=jobs_with_one_long_string(), data=st.data())
def test_any_string_over_its_limit_is_refused_at_its_path(
    case: tuple[dict[str, Any], str], data: st.DataObject
) -> None:
    job, path = case
    text = data.draw(written(job))

    try:
        parse_job(text.encode(), source="long.json")
    except SpecError as error:
        assert error.field == path
        assert "the limit is" in error.problem
    else:
        raise AssertionError(f"{path} over its limit was accepted")


def only_spec_errors(data: bytes) -> None:
    try:
        parse_job(data, source="fuzz.json", max_bytes=100_000)
    except SpecError as error:
        assert error.file == "fuzz.json"
        assert error.problem


@PROPERTIES
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_raise_only_spec_errors(data: bytes) -> None:
    only_spec_errors(data)


JSONISH = st.text(alphabet='{}[]",:0123456789.eE+-\\ \n\tuntrefalsNIiy_abcdxyzé\ud800', max_size=300)


@PROPERTIES
@given(JSONISH)
def test_arbitrary_json_ish_text_raises_only_spec_errors(text: str) -> None:
    only_spec_errors(text.encode("utf-8", "surrogatepass"))


@PROPERTIES
@given(seed=st.sampled_from([GOOD_TUTORIAL_JOB, good_job()]), edits=st.data())
def test_mutated_job_files_raise_only_spec_errors(seed: bytes, edits: st.DataObject) -> None:
    data = bytearray(seed)
    for _ in range(edits.draw(st.integers(min_value=1, max_value=4))):
        position = edits.draw(st.integers(min_value=0, max_value=len(data)))
        if data and edits.draw(st.booleans()):
            del data[min(position, len(data) - 1)]
        else:
            data[position:position] = edits.draw(st.sampled_from([b",", b"]", b"}", b'"', b"[", b"{", b"\\", b"1e999"]))
    only_spec_errors(bytes(data))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=20,
)
PLACES = [
    ("display_name",),
    ("base_model",),
    ("tuning_task",),
    ("tuning_task", "hyperparameters"),
    ("tuning_task", "hyperparameters", "epoch_count"),
    ("tuning_task", "training_data", "examples", "examples"),
    ("orchestrator",),
    ("orchestrator", "labels"),
    ("reader_project_numbers",),
    ("top_k",),
]


@PROPERTIES
@given(value=JSON_VALUES, place=st.sampled_from(PLACES))
def test_any_json_value_in_any_field_raises_only_spec_errors(value: Any, place: tuple[str, ...]) -> None:
    job = json.loads(good_job(orchestrator={}))
    node = job
    for name in place[:-1]:
        node = node.setdefault(name, {})
    node[place[-1]] = value

    only_spec_errors(json.dumps(job).encode())
