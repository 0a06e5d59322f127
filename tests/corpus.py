"""Job files for every test suite: the tutorial's body, a builder of small valid jobs, and a corpus of bad files.

``BAD_JOB_FILES`` is what the intake, the CLI and the daemon's robustness tests feed in to prove that a
malformed file becomes exactly one rejection with a precise reason. Each entry says which ``field`` the
:class:`~orchestrator.errors.SpecError` must name and a fragment its ``problem`` must contain.

Entries are parsed with ``parse_job(entry.data, source=..., max_bytes=entry.max_bytes)``. Only the
over-the-size-limit entry lowers ``max_bytes`` (to 1,000 bytes, with a file of 1,001 bytes), so that
no suite has to write a 64 MiB file; a suite that cannot pass ``max_bytes`` (e.g. a daemon configured
elsewhere) should configure its own limit to ``entry.max_bytes`` or skip entries whose ``max_bytes``
differs from its own.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from orchestrator.spec import DEFAULT_MAX_FILE_BYTES

#: The tutorial's request body, byte for byte as written in seeds/001 (trailing commas and all).
#: Inlined rather than read from ../shared so the corpus works wherever the tests run;
#: ``test_spec.py`` checks it against the seed file when that file is present.
GOOD_TUTORIAL_JOB: Final = b"""
{
"display_name": "number generator model",
"base_model": "models/gemini-1.5-flash-001-tuning",
"tuning_task": {
"hyperparameters": {
"batch_size": 2,
"learning_rate": 0.001,
"epoch_count":5,
},
"training_data": {
"examples": {
"examples": [
{
"text_input": "1",
"output": "2",
},{
"text_input": "3",
"output": "4",
},{
"text_input": "-3",
"output": "-2",
},{
"text_input": "twenty two",
"output": "twenty three",
},{
"text_input": "two hundred",
"output": "two hundred one",
},{
"text_input": "ninety nine",
"output": "one hundred",
},{
"text_input": "8",
"output": "9",
},{
"text_input": "-98",
"output": "-97",
},{
"text_input": "1,000",
"output": "1,001",
},{
"text_input": "10,100,000",
"output": "10,100,001",
},{
"text_input": "thirteen",
"output": "fourteen",
},{
"text_input": "eighty",
"output": "eighty one",
},{
"text_input": "one",
"output": "two",
},{
"text_input": "three",
"output": "four",
},{
"text_input": "seven",
"output": "eight",
}
]
}
}
}
}"""

#: Where the tutorial lives beside the checkout (``../shared``), when it does.
TUTORIAL_SEED_PATH: Final = Path(__file__).resolve().parents[2] / "shared" / "seeds" / "001_2dbaf5001c867d06.txt"

#: The tutorial's REST script as the repository keeps it (from that seed, verbatim).
TUTORIAL_SCRIPT_COPY: Final = Path(__file__).resolve().parent / "emulator" / "fixtures" / "tutorial_rest.sh"

#: Pass as an override value to :func:`good_job` to leave a top-level field out.
OMIT: Final = object()

_EXAMPLES: Final = [
    {"text_input": "1", "output": "2"},
    {"text_input": "two", "output": "three"},
    {"text_input": "ninety nine", "output": "one hundred"},
]


def good_job_dict(**overrides: Any) -> dict[str, Any]:
    """A small valid job as a dict (snake_case); top-level ``overrides`` replace fields, ``OMIT`` drops one."""
    job: dict[str, Any] = {
        "display_name": "number generator",
        "base_model": "models/gemini-1.5-flash-001-tuning",
        "tuning_task": {
            "hyperparameters": {"batch_size": 2, "learning_rate": 0.001, "epoch_count": 5},
            "training_data": {"examples": {"examples": copy.deepcopy(_EXAMPLES)}},
        },
    }
    return overridden(job, overrides)


def overridden(job: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``job`` with its top-level fields replaced by ``overrides`` (``OMIT`` drops one)."""
    for name, value in overrides.items():
        if value is OMIT:
            job.pop(name, None)
        else:
            job[name] = value
    return job


def replaced(job: dict[str, Any], path: str, value: Any) -> bytes:
    """``job`` as JSON bytes, with the value at dotted ``path`` replaced (``OMIT`` deletes it)."""
    *parents, last = path.split(".")
    node = job
    for name in parents:
        node = node.setdefault(name, {})
    if value is OMIT:
        del node[last]
    else:
        node[last] = value
    return json.dumps(job).encode()


def good_job(**overrides: Any) -> bytes:
    """A small valid job file (snake_case JSON bytes); see :func:`good_job_dict` for ``overrides``."""
    return json.dumps(good_job_dict(**overrides)).encode()


@dataclass(frozen=True, slots=True)
class BadJobFile:
    """A malformed job file and the error it must produce."""

    name: str
    data: bytes
    field: str  #: the SpecError's ``field``, exactly
    problem_contains: str  #: a fragment of the SpecError's ``problem``
    max_bytes: int = DEFAULT_MAX_FILE_BYTES  #: the ``max_bytes`` to parse with


def _nested(path: str, value: Any, **overrides: Any) -> bytes:
    """A good job with the value at dotted ``path`` replaced (``OMIT`` deletes it)."""
    return replaced(good_job_dict(**overrides), path, value)


def _hyper(**hyperparameters: Any) -> bytes:
    return _nested("tuning_task.hyperparameters", hyperparameters)


def _examples(*examples: Any) -> bytes:
    return _nested("tuning_task.training_data.examples.examples", list(examples))


def _orchestrator(**section: Any) -> bytes:
    return good_job(orchestrator=section)


_EX = "tuning_task.training_data.examples.examples"
_TUTORIAL_TEXT = GOOD_TUTORIAL_JOB.decode()
_CZECH_NAME = "Minh Thành Nguyễn - zábavná čeština"  # 35 characters, 42 UTF-8 bytes

BAD_JOB_FILES: Final[list[BadJobFile]] = [
    # --- whole-file problems
    BadJobFile("zero-byte file", b"", "", "empty"),
    BadJobFile("whitespace only", b"  \n", "", "invalid JSON at line 2, column 1"),
    BadJobFile("over the size limit", b" " * 1000 + b"{", "", "1,001 bytes; the limit is 1,000 bytes", 1000),
    BadJobFile("latin-1 bytes", b'{"display_name": "caf\xe9"}', "", "byte 0xe9 at offset 21"),
    BadJobFile("invalid utf-8 start byte", b'{"display_name": "\xff"}', "", "byte 0xff at offset 18"),
    BadJobFile("utf-16 file", '{"a": 1}'.encode("utf-16"), "", "not valid UTF-8"),
    BadJobFile("utf-8 BOM", b"\xef\xbb\xbf" + good_job(), "", "byte order mark"),
    BadJobFile("truncated JSON", good_job()[:-10], "", "invalid JSON"),
    BadJobFile("missing comma", b'{"display_name": "x"\n "base_model": "models/x"}', "", "line 2, column 2"),
    BadJobFile("single quotes", b"{'display_name': 'x'}", "", "invalid JSON at line 1, column 2"),
    BadJobFile("unquoted key", b"{display_name: 1}", "", "invalid JSON"),
    BadJobFile("comment", b'{"base_model": "models/x" // the model\n}', "", "invalid JSON"),
    BadJobFile(
        "lone comma in array", _TUTORIAL_TEXT.replace('"examples": [', '"examples": [,', 1).encode(), "", "invalid JSON"
    ),
    BadJobFile("double trailing comma", b'{"base_model": "models/x",,}', "", "invalid JSON"),
    BadJobFile("raw newline in string", b'{"display_name": "a\nb"}', "", "Invalid control character"),
    BadJobFile("extra data", good_job() + b" {}", "", "Extra data"),
    BadJobFile("top level array", b"[1, 2]", "", "must be a JSON object"),
    BadJobFile("top level string", b'"models/x"', "", "not a string"),
    BadJobFile("NaN literal", _hyper(learning_rate=0.5).replace(b"0.5", b"NaN"), "", "NaN is not valid JSON"),
    BadJobFile("Infinity literal", _hyper(learning_rate=0.5).replace(b"0.5", b"-Infinity"), "", "-Infinity"),
    BadJobFile(
        "deep nesting",
        b'{"description": ' + b"[" * 200 + b"]" * 200 + b"}",
        "description" + "[0]" * 63,
        "deeper than the limit of 64 levels",
    ),
    BadJobFile("very deep nesting", b"[" * 2_000 + b"]" * 2_000, "", "deeper than the limit of 64 levels"),
    BadJobFile("deep and dense nesting", b"[" * 100_000 + b"]" * 100_000, "", "100,000 JSON objects and arrays"),
    BadJobFile("dense empty arrays", b'{"a": [' + b"[]," * 9_999 + b"[]]}", "", "10,002 JSON objects and arrays"),
    BadJobFile("dense empty objects", b'{"a": [' + b"{}," * 9_999 + b"{}]}", "", "10,002 JSON objects and arrays"),
    BadJobFile("dense tiny strings", b'{"a": [' + b'"ab",' * 29_999 + b'"ab"]}', "", "30,001 JSON strings"),
    BadJobFile("dense keys", b"{" + b",".join(b'"%x":""' % i for i in range(20_000)) + b"}", "", "40,000 JSON strings"),
    # --- duplicate keys
    BadJobFile("duplicate key", b'{"base_model": "models/a", "base_model": "models/b"}', "base_model", "duplicate key"),
    BadJobFile(
        "duplicate snake/camel",
        _hyper(batch_size=2, batchSize=4),
        "tuning_task.hyperparameters.batch_size",
        "'batch_size' and 'batchSize' are two spellings of the same field",
    ),
    BadJobFile(
        "duplicate in example",
        _TUTORIAL_TEXT.replace('"output": "4",', '"output": "4", "output": "5",').encode(),
        f"{_EX}[1].output",
        "duplicate key 'output'",
    ),
    # --- required fields and wrong types at the top
    BadJobFile("missing base_model", good_job(base_model=OMIT), "base_model", "is required"),
    BadJobFile("missing tuning_task", good_job(tuning_task=OMIT), "tuning_task", "is required"),
    BadJobFile("base_model not models/", good_job(base_model="gemini-1.5-flash"), "base_model", "models/"),
    BadJobFile("base_model a number", good_job(base_model=15), "base_model", "must be a string, not a number"),
    BadJobFile("base_model a tuned model", good_job(base_model="tunedModels/x"), "base_model", "models/<id>"),
    BadJobFile("display_name a number", good_job(display_name=7), "display_name", "must be a string"),
    BadJobFile("display_name null", good_job(display_name=None), "display_name", "not null"),
    BadJobFile(
        "display_name 41 bytes",
        good_job(display_name="n" * 41),
        "display_name",
        "41 bytes in UTF-8 (41 characters); the limit is 40 bytes",
    ),
    BadJobFile(
        "display_name 35 chars 42 bytes",
        good_job(display_name=_CZECH_NAME),
        "display_name",
        "42 bytes in UTF-8 (35 characters)",
    ),
    BadJobFile("description an object", good_job(description={"text": "x"}), "description", "must be a string"),
    BadJobFile("temperature above 2", good_job(temperature=2.5), "temperature", "between 0 and 2"),
    BadJobFile("temperature a string", good_job(temperature="0.5"), "temperature", "must be a number"),
    BadJobFile("top_p above 1", good_job(topP=1.01), "top_p", "between 0 and 1"),
    BadJobFile("top_k zero", good_job(top_k=0), "top_k", "out of range"),
    BadJobFile("top_k fractional", good_job(top_k=1.5), "top_k", "must be a whole number"),
    BadJobFile(
        "reader_project_numbers not a list",
        good_job(reader_project_numbers="123"),
        "reader_project_numbers",
        "must be an array",
    ),
    BadJobFile(
        "reader_project_numbers bad string",
        good_job(reader_project_numbers=["12a"]),
        "reader_project_numbers[0]",
        "digits only",
    ),
    BadJobFile(
        "reader_project_numbers over int64",
        good_job(reader_project_numbers=[str(2**63)]),
        "reader_project_numbers[0]",
        "out of range",
    ),
    BadJobFile("tuning_task an array", good_job(tuning_task=[]), "tuning_task", "must be an object, not an array"),
    BadJobFile(
        "tuned_model_source",
        good_job(tuned_model_source={"tuned_model": "tunedModels/a"}),
        "tuned_model_source",
        "tuning from a tuned model is not supported",
    ),
    BadJobFile("unknown top-level field", good_job(epochs=5), "epochs", "unknown field 'epochs'"),
    BadJobFile(
        "a Vertex AI job file",
        good_job(supervisedTuningSpec={"training_dataset_uri": "gs://b/t.jsonl"}),
        "supervised_tuning_spec",
        'set [api] backend = "vertex"',
    ),
    BadJobFile("typo suggests a field", good_job(base_modle="models/x"), "base_modle", "did you mean 'base_model'"),
    BadJobFile("PascalCase is not a spelling", good_job(BaseModel="models/x"), "BaseModel", "unknown field"),
    # --- output-only fields
    BadJobFile("name is output only", good_job(name="tunedModels/abc"), "name", "orchestrator.tuned_model_id"),
    BadJobFile("state is output only", good_job(state="ACTIVE"), "state", "output only"),
    BadJobFile("createTime is output only", good_job(createTime="2024-01-01T00:00:00Z"), "create_time", "output only"),
    BadJobFile(
        "snapshots are output only", _nested("tuning_task.snapshots", []), "tuning_task.snapshots", "output only"
    ),
    # --- tuning_task
    BadJobFile(
        "missing training_data", _nested("tuning_task.training_data", OMIT), "tuning_task.training_data", "is required"
    ),
    BadJobFile(
        "training_data as gcs uri",
        _nested("tuning_task.training_data", {"gcs_uri": "gs://b/x.jsonl"}),
        "tuning_task.training_data.gcs_uri",
        "unknown field 'gcs_uri'",
    ),
    BadJobFile(
        "examples not nested twice",
        _nested("tuning_task.training_data.examples", [{"text_input": "1"}]),
        "tuning_task.training_data.examples",
        "must be an object, not an array",
    ),
    BadJobFile(
        "multiturn_examples",
        _nested("tuning_task.training_data.examples.multiturn_examples", []),
        "tuning_task.training_data.examples.multiturn_examples",
        "only text input/output pairs",
    ),
    BadJobFile("missing examples list", _nested(_EX, OMIT), _EX, "is required"),
    BadJobFile("empty examples", _examples(), _EX, "must not be empty"),
    BadJobFile("examples an object", _nested(_EX, {"text_input": "1", "output": "2"}), _EX, "must be an array"),
    BadJobFile("example a string", _examples("1 -> 2"), f"{_EX}[0]", "must be an object"),
    BadJobFile(
        "multi-turn example",
        _examples({"contents": [{"role": "user", "parts": [{"text": "1"}]}]}),
        f"{_EX}[0].contents",
        "only text input/output pairs are supported",
    ),
    BadJobFile("missing output", _examples({"text_input": "1"}), f"{_EX}[0].output", "is required"),
    BadJobFile("missing text_input", _examples({"output": "1"}), f"{_EX}[0].text_input", "is required"),
    BadJobFile("empty output", _examples({"text_input": "1", "output": ""}), f"{_EX}[0].output", "must not be empty"),
    BadJobFile(
        "empty text_input", _examples({"textInput": "", "output": "1"}), f"{_EX}[0].text_input", "must not be empty"
    ),
    BadJobFile(
        "output a number",
        _examples({"text_input": "1", "output": 2}),
        f"{_EX}[0].output",
        "must be a string, not a number",
    ),
    BadJobFile(
        "input 40,001 characters",
        _examples({"text_input": "1", "output": "2"}, {"text_input": "x" * 40_001, "output": "2"}),
        f"{_EX}[1].text_input",
        "40,001 characters; the limit is 40,000",
    ),
    BadJobFile(
        "output 5,001 characters",
        _examples({"text_input": "1", "output": "\u00e9" * 5_001}),
        f"{_EX}[0].output",
        "5,001 characters; the limit is 5,000",
    ),
    BadJobFile(
        "lone surrogate escape",
        _examples({"text_input": "1", "output": "2"}).replace(b'"2"', b'"\\ud800"'),
        f"{_EX}[0].output",
        "unpaired UTF-16 surrogate",
    ),
    # --- hyperparameters
    BadJobFile(
        "hyperparameters an array",
        _nested("tuning_task.hyperparameters", [5]),
        "tuning_task.hyperparameters",
        "must be an object",
    ),
    BadJobFile(
        "both learning rates",
        _hyper(learning_rate=0.001, learning_rate_multiplier=1.0),
        "tuning_task.hyperparameters",
        "learning_rate and learning_rate_multiplier",
    ),
    BadJobFile("epoch_count zero", _hyper(epoch_count=0), "tuning_task.hyperparameters.epoch_count", "out of range"),
    BadJobFile("batch_size negative", _hyper(batchSize=-4), "tuning_task.hyperparameters.batch_size", "out of range"),
    BadJobFile(
        "epoch_count fractional",
        _hyper(epoch_count=2.5),
        "tuning_task.hyperparameters.epoch_count",
        "must be a whole number",
    ),
    BadJobFile("epoch_count true", _hyper(epoch_count=True), "tuning_task.hyperparameters.epoch_count", "not true"),
    BadJobFile(
        "epoch_count a string",
        _hyper(epoch_count="5"),
        "tuning_task.hyperparameters.epoch_count",
        "must be a whole number, not a string",
    ),
    BadJobFile(
        "batch_size over int32",
        _hyper(batch_size=2**31),
        "tuning_task.hyperparameters.batch_size",
        "2,147,483,648 is out of range",
    ),
    BadJobFile(
        "batch_size huge literal",
        _hyper(batch_size=1).replace(b'"batch_size": 1', b'"batch_size": ' + b"9" * 500),
        "tuning_task.hyperparameters.batch_size",
        "500 digits",
    ),
    BadJobFile(
        "learning_rate 1e400",
        _hyper(learning_rate=0.5).replace(b"0.5", b"1e400"),
        "tuning_task.hyperparameters.learning_rate",
        "must be finite",
    ),
    BadJobFile(
        "learning_rate zero", _hyper(learning_rate=0), "tuning_task.hyperparameters.learning_rate", "greater than 0"
    ),
    BadJobFile(
        "learning_rate_multiplier negative",
        _hyper(learningRateMultiplier=-1.0),
        "tuning_task.hyperparameters.learning_rate_multiplier",
        "greater than 0",
    ),
    BadJobFile(
        "unknown hyperparameter", _hyper(epochs=5), "tuning_task.hyperparameters.epochs", "did you mean 'epoch_count'"
    ),
    # --- orchestrator section
    BadJobFile("orchestrator not an object", good_job(orchestrator="high"), "orchestrator", "must be an object"),
    BadJobFile("orchestrator unknown key", _orchestrator(retries=3), "orchestrator.retries", "unknown field"),
    BadJobFile("job_key empty", _orchestrator(job_key=""), "orchestrator.job_key", "must not be empty"),
    BadJobFile(
        "job_key 201 characters",
        _orchestrator(job_key="k" * 201),
        "orchestrator.job_key",
        "201 characters; the limit is 200",
    ),
    BadJobFile("job_key with a newline", _orchestrator(job_key="a\nb"), "orchestrator.job_key", "printable"),
    BadJobFile("priority a string", _orchestrator(priority="high"), "orchestrator.priority", "whole number"),
    BadJobFile("priority over int32", _orchestrator(priority=2**31), "orchestrator.priority", "out of range"),
    BadJobFile(
        "tuned_model_id 41 characters",
        _orchestrator(tuned_model_id="a" * 41),
        "orchestrator.tuned_model_id",
        "41 characters; the limit is 40",
    ),
    BadJobFile(
        "tuned_model_id uppercase",
        _orchestrator(tuned_model_id="Model-a"),
        "orchestrator.tuned_model_id",
        "[a-z]([a-z0-9-]{0,38}[a-z0-9])?",
    ),
    BadJobFile(
        "tuned_model_id underscore",
        _orchestrator(tuned_model_id="model_a"),
        "orchestrator.tuned_model_id",
        "must match",
    ),
    BadJobFile(
        "tuned_model_id leading digit",
        _orchestrator(tuned_model_id="1model"),
        "orchestrator.tuned_model_id",
        "must match",
    ),
    BadJobFile(
        "tuned_model_id trailing hyphen",
        _orchestrator(tuned_model_id="model-"),
        "orchestrator.tuned_model_id",
        "must match",
    ),
    BadJobFile("tuned_model_id empty", _orchestrator(tuned_model_id=""), "orchestrator.tuned_model_id", "must match"),
    BadJobFile("labels an array", _orchestrator(labels=["team"]), "orchestrator.labels", "must be an object"),
    BadJobFile(
        "label value a number", _orchestrator(labels={"team": 5}), "orchestrator.labels.team", "must be a string"
    ),
    BadJobFile(
        "label value 65 characters",
        _orchestrator(labels={"team": "s" * 65}),
        "orchestrator.labels.team",
        "65 characters; the limit is 64",
    ),
    BadJobFile(
        "label name 65 characters",
        _orchestrator(labels={"k" * 65: "v"}),
        "orchestrator.labels." + "k" * 65,
        "65 characters; the limit is 64",
    ),
    BadJobFile(
        "33 labels",
        _orchestrator(labels={f"l{i}": "v" for i in range(33)}),
        "orchestrator.labels",
        "33 labels; the limit is 32",
    ),
    BadJobFile("max_run_time zero", _orchestrator(max_run_time=0), "orchestrator.max_run_time", "greater than 0"),
    BadJobFile(
        "stall_timeout a string", _orchestrator(stallTimeout="10m"), "orchestrator.stall_timeout", "must be a number"
    ),
]
