"""Job files: bytes in, a validated :class:`JobSpec` out.

A job file is the ``tunedModels.create`` request body exactly as users copy it from the REST tutorial
(snake_case or lowerCamelCase, mixed at will, trailing commas and all) plus an optional ``orchestrator``
section of our own. Everything the API would refuse is refused here, before a job is queued, so that a
bad file costs a rejection with a precise reason instead of a paid API round trip with "Request contains
an invalid argument".

Pure: nothing here does I/O. The bytes are read whole (a maximal file is about 20 MB), measured, decoded
once, parsed once by :func:`json.loads` and validated by walking only the fields the API knows. The work
that touches every character stays in C (``bytes.decode``, compiled regexes, ``bytes.count``,
``json.loads``) so a maximal file parses in a fraction of a second; Python-level loops run per JSON string
or per container, never per character.

A hostile file is bounded before :func:`json.loads` builds anything: the raw bytes are measured first
(:func:`_measure`: how many strings, how many objects and arrays, whether nesting may pass
:data:`MAX_DEPTH`), and a file denser in strings or containers than any job could be is refused there.
Python objects cost 50 to 100 bytes each, so that density bound is what keeps the parser's peak memory
within a small multiple of the file's size whatever its shape (``bench/intake.py`` measures it).
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import hashlib
import json
import math
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, NoReturn, Protocol

from orchestrator.errors import SpecError

#: The default file-size limit. The largest job the API's documented limits allow in practice, 500
#: examples (the top of the typical 100-500) at 40,000 input and 5,000 output characters, is 22.5 MB
#: of ASCII JSON; 32 MiB leaves room for escapes and indentation. The API documents no example limit,
#: so bigger datasets raise ``spool.max_file_bytes``; parsing costs up to ~16 times the file in memory.
DEFAULT_MAX_FILE_BYTES: Final = 32 * 1024 * 1024
#: Deepest nesting accepted. A valid job is 6 levels deep; the bound keeps hostile files from exhausting
#: the interpreter's stack while leaving room for anything a person would write.
MAX_DEPTH: Final = 64
#: Fewest file bytes per JSON string (keys included), on average over the file. The densest valid files:
#: a tutorial job of one-character examples, ``{"textInput":"1","output":"2"},`` (four strings in 31
#: bytes), and a Vertex job of one-character text parts, ``{"text":"1"},`` (two in 13). A Python string
#: costs 50 bytes or more (one-character ones are shared), so this bounds strings to about 10 times the
#: file's size.
BYTES_PER_STRING: Final = 6
#: Fewest file bytes per object key, on average. The densest valid file has one per 13 bytes (the Vertex
#: text parts above). A key costs its string, the parser's memo of it and its slot in the object (about
#: 200 bytes when every key is distinct), which makes keys the costliest shape: about 25 times the file.
BYTES_PER_KEY: Final = 12
#: Fewest file bytes per JSON object or array, on average. The densest valid file has one per 13 bytes
#: (the Vertex text parts again); an empty list or dict costs 56-64 bytes, a small dict 184.
BYTES_PER_CONTAINER: Final = 12
#: Strings, keys and containers every file may have whatever its size, so that small files are never refused
#: for density (the bound is about memory, which they cannot exhaust).
FREE_COUNT: Final = 4096
MAX_INPUT_CHARS: Final = 40_000
MAX_OUTPUT_CHARS: Final = 5_000
#: The API's limit is "40 characters" but it counts UTF-8 bytes (gemini-api.md §7.1, §11 row 6).
MAX_DISPLAY_NAME_BYTES: Final = 40
MAX_JOB_KEY_CHARS: Final = 200
MAX_LABELS: Final = 32
MAX_LABEL_CHARS: Final = 64
TUNED_MODEL_ID_PATTERN: Final = "[a-z]([a-z0-9-]{0,38}[a-z0-9])?"

_INT32_MIN: Final = -(2**31)
_INT32_MAX: Final = 2**31 - 1
_INT64_MAX: Final = 2**63 - 1
_MAX_SHOWN_KEY: Final = 100
#: Objects with more keys than this are not checked for two spellings of one key (none in a job has
#: more than the top level's fourteen or the labels' :data:`MAX_LABELS`).
_MOST_KEYS_COMPARED: Final = 64
_BOM: Final = b"\xef\xbb\xbf"
_TUNED_MODEL_ID: Final = re.compile(TUNED_MODEL_ID_PATTERN)
_UPPER: Final = re.compile("[A-Z]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_NUMERIC: Final = re.compile("[0-9]+")
#: Every byte but quotes, colons and brackets, for ``bytes.translate(None, delete=...)``: what the
#: measuring keeps (a colon outside strings ends an object key).
_NOT_STRUCTURE: Final = bytes(sorted(set(range(256)) - set(b'":[]{}')))
#: In quotes, colons and brackets alone, a run of strings (an unterminated one runs to the end).
_QUOTED_RUN: Final = re.compile(rb'(?:"[^"]*(?:"|\Z))+')
#: The measuring cuts strings out this many bytes at a time, so the regex's pieces stay few.
_MEASURE_CHUNK: Final = 64 * 1024

#: A comma before a closing bracket, inside a string or not: a file without one needs no trailing-comma scan.
_COMMA_BEFORE_CLOSER: Final = re.compile(rb",[ \t\n\r]*[\]}]")
#: A JSON string literal (skipped whole, so nothing inside a string is ever touched), optionally followed
#: by a trailing comma (group 1); or the last byte of any other value followed by a trailing comma
#: (group 2). A comma is trailing when the next significant character closes an array or an object.
#: An unterminated string matches up to the end of the input, so that no quote is ever scanned twice
#: (otherwise a file of 64 MB of backslash-quotes would take quadratic time); the escape loop is
#: possessive, so sre keeps no backtracking point per escape. It runs on the raw bytes: in UTF-8 every
#: byte of a multi-byte character is >= 0x80, so quotes, backslashes, commas and brackets are found
#: exactly as in the decoded text.
_TRAILING_COMMA: Final = re.compile(
    rb'"[^"\\]*(?:\\.[^"\\]*)*+(?:"|\\?\Z)(?:[ \t\n\r]*(,)(?=[ \t\n\r]*[\]}]))?'
    rb'|[^"\[{, \t\n\r][ \t\n\r]*(,)(?=[ \t\n\r]*[\]}])',
    re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A validated job: what the scheduler needs to know, and the exact request body to send."""

    job_key: str  #: ``orchestrator.job_key``, else ``sha256:<hex of the file's bytes>``
    priority: int  #: higher runs first
    tuned_model_id: str | None  #: the id to create the model under, or None to derive one
    labels: Mapping[str, str]
    max_run_time: float | None  #: seconds from submission before the job is cancelled
    stall_timeout: float | None  #: seconds without progress before the job is cancelled
    display_name: str | None
    base_model: str
    example_count: int | None  #: None when the examples are not in the file (a Vertex job's ``gs://`` dataset)
    epoch_count: int | None  #: None when left to the API's default
    batch_size: int | None  #: None when left to the API's default
    expected_total_steps: int | None  #: ceil(examples * epochs / batch) when both are given
    #: The request body in the API's camelCase, without ``orchestrator``: the ``tunedModels.create`` body, or
    #: for Vertex AI ``{"tuningJob": …, "trainingExamples": […], "validationExamples": […]}``.
    body: Mapping[str, Any]
    #: What a conversion between forms left out, one sentence each, logged when the job is accepted.
    notes: tuple[str, ...] = ()


class JobFileParser(Protocol):
    """Bytes of a job file → a :class:`JobSpec`, or a :class:`SpecError`: :func:`parse_job` or a service's own."""

    def __call__(self, data: bytes, *, source: str, max_bytes: int) -> JobSpec: ...


def parse_job(data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES) -> JobSpec:
    """Parse and validate a job file.

    ``source`` names the file in errors. Raises :class:`SpecError` whose ``field`` is the snake_case JSON
    path of the first offending field (empty when the whole file is at fault) and whose ``problem`` states
    the rule or limit broken; no other exception escapes, whatever the bytes.
    """
    with cyclic_gc_paused():
        return tutorial_job(read_document(data, source=source, max_bytes=max_bytes), data, source=source)


class _CollectorPauses:
    """The pauses under way, from any thread, and whether the collector was on before the first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0
        self.was_enabled = False


_PAUSES: Final = _CollectorPauses()


@contextlib.contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a job file becomes Python objects.

    A parsed job is a tree (JSON has no cycles), yet the collector runs every 700 allocations and, as
    the new objects survive, walks ever larger older generations: on a file of 300,000 short examples
    that was 6 of ``json.loads``'s 7 seconds (``python -m bench.jobfiles``). Reference counting still
    frees everything. Pauses from several threads nest: the collector resumes, if it was on, when the
    last one ends.
    """
    with _PAUSES.lock:
        if _PAUSES.count == 0:
            _PAUSES.was_enabled = gc.isenabled()
        _PAUSES.count += 1
        gc.disable()
    try:
        yield
    finally:
        with _PAUSES.lock:
            _PAUSES.count -= 1
            if _PAUSES.count == 0 and _PAUSES.was_enabled:
                gc.enable()


def read_document(
    data: bytes, *, source: str, max_bytes: int = DEFAULT_MAX_FILE_BYTES, vocabulary: Vocabulary | None = None
) -> dict[str, Any]:
    """The bounds every form of job file shares: bytes → the top-level JSON object, or a :class:`SpecError`.

    Size, encoding, JSON syntax, nesting depth and duplicate keys are checked here, once, whatever the
    form; ``vocabulary`` names that form's fields so that errors spell them in snake_case.
    """
    root, may_be_too_deep, has_duplicates = _load(data, source, max_bytes)
    if may_be_too_deep or has_duplicates:
        _check_structure(root, source, vocabulary or TUTORIAL_VOCABULARY)
    return root


def file_job_key(data: bytes) -> str:
    """The job key of a file that gives no ``orchestrator.job_key``: the SHA-256 of its bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tutorial_job(root: dict[str, Any], data: bytes, *, source: str) -> JobSpec:
    """Validate a document of the tutorial's form (the ``tunedModels.create`` body); ``data`` gives the job key."""
    return _Validator(source).job(root, data)


# --- reading: bytes → Python values ---------------------------------------------------------------


class _NonFiniteLiteral(Exception):
    """``NaN`` or ``Infinity`` met while parsing (Python's json accepts them; JSON and the API do not)."""


class _DuplicateKeys(dict[str, Any]):
    """An object in which a key occurs twice, exactly or as its snake_case and camelCase spellings.

    The parser cannot know where in the document it is, so it marks the object and keeps its pairs; the
    structure walk reports the duplicate with its path.
    """

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _snake(key: str) -> str:
    """The snake_case spelling of a field name (``batchSize`` → ``batch_size``); snake_case is unchanged."""
    return _UPPER.sub(lambda m: "_" + m.group().lower(), key) if not key.islower() else key


class _ObjectMaker:
    """``object_pairs_hook`` for one parse: plain dicts, a :class:`_DuplicateKeys` when a key repeats.

    ``duplicates`` says whether any object had one, so that a file without any needs no structure walk.
    """

    __slots__ = ("duplicates",)

    def __init__(self) -> None:
        self.duplicates = False

    def __call__(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        obj = dict(pairs)
        if len(pairs) < 2:  # the commonest object in a dense file (a text part); nothing to compare
            return obj
        if len(obj) == len(pairs) and (
            # Two spellings of one field need an uppercase letter in one of them; most objects have none.
            # An object with more keys than any in a job is refused by validation whatever its spellings,
            # and comparing them would cost a second copy of every key.
            len(obj) > _MOST_KEYS_COMPARED
            or not any(_UPPER.search(key) for key in obj)
            or len({_snake(key) for key in obj}) == len(obj)
        ):
            return obj
        self.duplicates = True
        return _DuplicateKeys(pairs)


def _reject_constant(name: str) -> NoReturn:
    """``parse_constant``: ``NaN``, ``Infinity`` and ``-Infinity`` are not JSON."""
    raise _NonFiniteLiteral(name)


def _decode(data: bytes, source: str) -> str:
    """UTF-8 text with each trailing comma outside strings turned into a space, as Google's front end allows.

    A space rather than nothing keeps every later character at its line and column, so json's error
    positions still point into the user's file. A comma straight after ``[``, ``{`` or ``,`` is not a
    trailing comma (``[,]`` stays invalid): the regex requires a value before it. Files with no comma
    before a closing bracket at all, inside strings or out, skip the scan. Blanking happens in a
    copy of the bytes, never of the text, so a 20 MB file costs at most two more copies of itself.
    """
    commas = (
        [
            match.start(1) if match.start(1) >= 0 else match.start(2)
            for match in _TRAILING_COMMA.finditer(data)
            if match.lastindex is not None
        ]
        if _COMMA_BEFORE_CLOSER.search(data)
        else []
    )
    raw: bytes | bytearray = data
    if commas:
        raw = bytearray(data)
        for position in commas:
            raw[position] = ord(" ")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(
            source,
            "",
            f"the file is not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start:,} ({exc.reason}); "
            "save it as UTF-8",
        ) from None


def _measure(data: bytes, source: str) -> bool:
    """Refuse a file denser in strings, keys or containers than a job; return whether it may nest too deep.

    Runs on the raw bytes before anything is parsed, in C-speed passes (``bytes.replace``,
    ``bytes.translate``, ``bytes.count``) that allocate a few copies of the file at most and nothing per
    string or bracket: escaped backslashes and quotes are dropped, so that every quote left delimits a
    string; everything but quotes, colons and brackets is dropped; the quotes are counted; the strings
    are cut out (:func:`_outside_strings`) and the colons (keys) and brackets left are counted. Then the
    innermost empty pairs are removed once per level, up to :data:`MAX_DEPTH` passes: what remains is
    nesting deeper than the limit or brackets that do not match (which :func:`json.loads` then
    reports), and the caller walks the parsed tree for the exact path. A miscount (an unterminated
    string, an escape outside a string) only happens in a file that is invalid JSON anyway.
    """
    size = len(data)
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = unescaped.translate(None, delete=_NOT_STRUCTURE)
    del unescaped
    strings = (structure.count(b'"') + 1) // 2
    if strings > FREE_COUNT + size // BYTES_PER_STRING:
        raise SpecError(
            source,
            "",
            f"the file has {strings:,} JSON strings in {size:,} bytes; the limit is {FREE_COUNT:,} plus one per "
            f"{BYTES_PER_STRING} bytes (a job's examples never come denser)",
        )
    outside = _outside_strings(structure)
    del structure
    keys = outside.count(b":")
    if keys > FREE_COUNT + size // BYTES_PER_KEY:
        raise SpecError(
            source,
            "",
            f"the file has {keys:,} object keys in {size:,} bytes; the limit is {FREE_COUNT:,} plus one per "
            f"{BYTES_PER_KEY} bytes (a job's examples never come denser)",
        )
    brackets = outside.replace(b":", b"")
    del outside
    containers = brackets.count(b"[") + brackets.count(b"{")
    if containers > FREE_COUNT + size // BYTES_PER_CONTAINER:
        raise SpecError(
            source,
            "",
            f"the file has {containers:,} JSON objects and arrays in {size:,} bytes; the limit is {FREE_COUNT:,} "
            f"plus one per {BYTES_PER_CONTAINER} bytes (a job's examples never come denser)",
        )
    for _ in range(MAX_DEPTH):
        if not brackets:
            return False
        # One level per pass: a pair emptied by this pass's own removals waits for the next one.
        brackets = brackets.replace(b"[]", b"0").replace(b"{}", b"0").replace(b"0", b"")
    return bool(brackets)


def _outside_strings(structure: bytes) -> bytes:
    """The colons and brackets outside strings, from a file reduced to its quotes, colons and brackets.

    Cut chunk by chunk, each chunk ending outside a string, so that the regex's list of pieces (one
    per match and per gap) stays bounded by the chunk's size rather than the file's.
    """
    parts: list[bytes] = []
    start, size = 0, len(structure)
    while start < size:
        end = min(start + _MEASURE_CHUNK, size)
        if structure.count(b'"', start, end) % 2:  # a string straddles the cut: end after it
            close = structure.find(b'"', end)
            end = size if close < 0 else close + 1
        parts.append(_QUOTED_RUN.sub(b"", structure[start:end]))
        start = end
    return b"".join(parts)


def _load(data: bytes, source: str, max_bytes: int) -> tuple[dict[str, Any], bool, bool]:
    """Bytes → the top-level JSON object, whether nesting may pass the limit and whether a key repeats.

    Raises a whole-file :class:`SpecError` for anything that is not one JSON object within the limits.
    """
    size = len(data)
    if size == 0:
        raise SpecError(source, "", "the file is empty (0 bytes); a job file is a JSON object")
    if size > max_bytes:
        raise SpecError(source, "", f"the file is {size:,} bytes; the limit is {max_bytes:,} bytes")
    if data.startswith(_BOM):
        raise SpecError(
            source,
            "",
            "the file starts with a UTF-8 byte order mark (EF BB BF), which JSON does not allow; "
            "save it as UTF-8 without BOM (for example: sed -i '1s/^\\xEF\\xBB\\xBF//' FILE)",
        )
    may_be_too_deep = _measure(data, source)
    text = _decode(data, source)
    objects = _ObjectMaker()
    try:
        root = json.loads(text, object_pairs_hook=objects, parse_constant=_reject_constant)
    except _NonFiniteLiteral as exc:
        raise SpecError(source, "", f"{exc} is not valid JSON: numbers must be finite") from None
    except json.JSONDecodeError as exc:
        raise SpecError(source, "", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError:  # json leaves integers to int(), which refuses thousands of digits
        raise SpecError(
            source, "", f"a number has more than {sys.get_int_max_str_digits():,} digits; no field takes one that large"
        ) from None
    except RecursionError:
        raise SpecError(source, "", f"the JSON is nested deeper than the limit of {MAX_DEPTH} levels") from None
    if not isinstance(root, dict):
        raise SpecError(source, "", f"the top level must be a JSON object {{...}}, not {_kind(root)}")
    return root, may_be_too_deep, objects.duplicates


# --- paths ------------------------------------------------------------------------------------------

_Path = tuple[Any, ...]  # (parent path, segment) links; () is the root. Rendered only for errors.

_TOP_FIELDS: Final = frozenset(
    {
        "display_name",
        "description",
        "base_model",
        "tuned_model_source",
        "temperature",
        "top_p",
        "top_k",
        "reader_project_numbers",
        "tuning_task",
        "orchestrator",
    }
)
_TOP_OUTPUT_ONLY: Final = frozenset({"name", "state", "create_time", "update_time"})
_TASK_FIELDS: Final = frozenset({"hyperparameters", "training_data"})
_TASK_OUTPUT_ONLY: Final = frozenset({"start_time", "complete_time", "snapshots"})
_HYPER_FIELDS: Final = frozenset({"epoch_count", "batch_size", "learning_rate", "learning_rate_multiplier"})
_DATA_FIELDS: Final = frozenset({"examples"})
_EXAMPLES_FIELDS: Final = frozenset({"examples", "multiturn_examples"})
_EXAMPLE_FIELDS: Final = frozenset({"text_input", "output"})
ORCHESTRATOR_FIELDS: Final = frozenset(
    {"job_key", "priority", "tuned_model_id", "labels", "max_run_time", "stall_timeout"}
)
_KNOWN_NAMES: Final = (
    _TOP_FIELDS
    | _TOP_OUTPUT_ONLY
    | _TASK_FIELDS
    | _TASK_OUTPUT_ONLY
    | _HYPER_FIELDS
    | _DATA_FIELDS
    | _EXAMPLES_FIELDS
    | _EXAMPLE_FIELDS
    | ORCHESTRATOR_FIELDS
)
_LABELS_PATH: Final = "orchestrator.labels"


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """The field names of one form of job file, for rendering paths in errors found before validation."""

    fields: frozenset[str]  #: field names in snake_case: shown in that spelling whichever the file used
    label_maps: frozenset[str]  #: paths of objects whose keys are the user's own names, never spellings


TUTORIAL_VOCABULARY: Final = Vocabulary(_KNOWN_NAMES, frozenset({_LABELS_PATH}))


def _display_key(key: str, known: frozenset[str] = _KNOWN_NAMES) -> str:
    """A key as error paths show it: a known field in its snake_case spelling, anything else as written.

    Keys are cut at :data:`_MAX_SHOWN_KEY` characters: a hostile file must not produce a megabyte error.
    """
    name = _snake(key)
    return name if name in known else _cut(key)


def _cut(key: str) -> str:
    """``key`` cut at :data:`_MAX_SHOWN_KEY` characters, for paths and messages."""
    return key if len(key) <= _MAX_SHOWN_KEY else key[:_MAX_SHOWN_KEY] + "…"


def _quoted(key: str) -> str:
    """A key as messages quote it: as written, cut."""
    return repr(_cut(key))


def _render(path: _Path, known: frozenset[str] = _KNOWN_NAMES) -> str:
    """``(((), 'tuning_task'), 'examples'), 3)`` → ``tuning_task.examples[3]``."""
    segments: list[str] = []
    while path:
        path, segment = path
        segments.append(f"[{segment}]" if isinstance(segment, int) else f".{_display_key(segment, known)}")
    return "".join(reversed(segments)).lstrip(".")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


# --- structure: depth and duplicate keys, over the whole document -------------------------------


def _check_structure(root: dict[str, Any], source: str, vocabulary: Vocabulary) -> None:
    """Reject nesting deeper than :data:`MAX_DEPTH` and duplicate keys anywhere, in document order.

    Run only when :func:`_measure` or the parser saw a reason to. Iterative, so depth cannot hurt the
    interpreter's stack, and depth-first with one frame per open container (at most :data:`MAX_DEPTH`),
    so a container with millions of children costs no allocation per child.
    """
    if isinstance(root, _DuplicateKeys):
        _report_duplicate(root, (), source, vocabulary)
    frames: list[tuple[Iterator[tuple[Any, Any]], _Path]] = [(_members(root), ())]
    while frames:
        members, path = frames[-1]
        for key, child in members:
            if isinstance(child, dict | list):
                child_path = (path, key)
                depth = len(frames) + 1
                if depth > MAX_DEPTH:
                    raise SpecError(
                        source,
                        _render(child_path, vocabulary.fields),
                        f"is nested {depth} levels deep, deeper than the limit of {MAX_DEPTH} levels",
                    )
                if isinstance(child, _DuplicateKeys):
                    _report_duplicate(child, child_path, source, vocabulary)
                frames.append((_members(child), child_path))
                break
        else:
            frames.pop()


def _members(node: dict[str, Any] | list[Any]) -> Iterator[tuple[Any, Any]]:
    """(key, value) of an object or (index, item) of an array, lazily."""
    return iter(node.items()) if isinstance(node, dict) else enumerate(node)


def _report_duplicate(node: _DuplicateKeys, path: _Path, source: str, vocabulary: Vocabulary) -> None:
    """Raise for the first repeated key of ``node``: exact repeats anywhere, spelling variants of fields.

    Label names are the user's own, so ``teamName`` and ``team_name`` are two labels, not one field.
    """
    labels = _render(path, vocabulary.fields) in vocabulary.label_maps
    seen: dict[str, str] = {}
    for key, _ in node.pairs:
        canonical = key if labels else _snake(key)
        if canonical not in seen:
            seen[canonical] = key
            continue
        field = _render((path, key), vocabulary.fields)
        first = seen[canonical]
        if first == key:
            problem = f"duplicate key {_quoted(key)}: it appears more than once in this object; give it once"
        else:
            problem = (
                f"duplicate key: {_quoted(first)} and {_quoted(key)} are two spellings of the same field "
                "(snake_case and camelCase); give it once"
            )
        raise SpecError(source, field, problem)


# --- validation: Python values → JobSpec ----------------------------------------------------------

_MISSING: Final = object()


def _kind(value: object) -> str:
    """The JSON type of ``value``, with an article, for messages."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is True or value is False:
        return json.dumps(value)
    if value is None:
        return "null"
    return "a number"


def _shown(value: object) -> str:
    """A short rendering of a scalar for messages; containers are described by kind only."""
    if isinstance(value, dict | list):
        return _kind(value)
    if isinstance(value, int) and not isinstance(value, bool):
        digits = len(str(abs(value)))
        return f"{value:,}" if digits <= 30 else f"{str(value)[:12]}… ({digits:,} digits)"
    if isinstance(value, float) and not math.isfinite(value):
        return "a number beyond ±1.8e308"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:39] + "…"


class FieldReader:
    """Reads one file's values field by field, each form's validator builds on it.

    ``source`` is the file name every error carries; each reader either returns a checked value or raises
    a :class:`SpecError` naming the field's path and the rule it broke.
    """

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, field: str, problem: str) -> NoReturn:
        raise SpecError(self.source, field, problem)

    def wrong_type(self, field: str, expected: str, value: object) -> NoReturn:
        scalar = not isinstance(value, dict | list | bool) and value is not None
        shown = f" ({_shown(value)})" if scalar else ""
        self.fail(field, f"must be {expected}, not {_kind(value)}{shown}")

    # --- generic readers

    def fields(
        self, value: object, path: str, known: frozenset[str], output_only: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        """An object's members keyed by snake_case name; unknown and output-only members are errors."""
        if not isinstance(value, dict):
            self.wrong_type(path, "an object", value)
        members: dict[str, Any] = {}
        for key, item in value.items():
            name = _snake(key)
            if name in known:
                members[name] = item
            elif name in output_only:
                hint = (
                    "; to choose the tuned model's id, set orchestrator.tuned_model_id"
                    if name == "name"
                    else "; remove it"
                )
                self.fail(_join(path, name), f"is output only: the API sets it{hint}")
            else:
                close = difflib.get_close_matches(name, known, n=1, cutoff=0.5) if len(name) < _MAX_SHOWN_KEY else []
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(
                    _join(path, _display_key(key)),
                    f"unknown field {_quoted(key)}; {hint}the fields known here are {', '.join(sorted(known))}",
                )
        return members

    def string(self, value: object, field: str) -> str:
        """A string that is valid Unicode (a JSON ``\\ud800`` escape can smuggle in a lone surrogate)."""
        if not isinstance(value, str):
            self.wrong_type(field, "a string", value)
        if not value.isascii():
            bad = _SURROGATE.search(value)
            if bad is not None:
                self.fail(
                    field,
                    f"contains an unpaired UTF-16 surrogate (\\u{ord(bad.group()):04x}) at character "
                    f"{bad.start():,}, which is not valid Unicode",
                )
        return value

    def text(self, value: object, field: str, limit: int) -> str:
        """A non-empty string of at most ``limit`` characters (Unicode code points)."""
        text = self.string(value, field)
        if not text:
            self.fail(field, "must not be empty")
        if len(text) > limit:
            self.fail(field, f"is {len(text):,} characters; the limit is {limit:,}")
        return text

    def whole(self, value: object, field: str, low: int, high: int) -> int:
        """An integer in [low, high]; a float with no fraction (``5.0``) counts, ``true`` never does."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(field, "a whole number", value)
        if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
            self.fail(field, f"must be a whole number, not {_shown(value)}")
        if not low <= value <= high:  # inf and -inf fail here too
            self.fail(field, f"{_shown(value)} is out of range; it must be between {low:,} and {high:,}")
        return int(value)

    def number(self, value: object, field: str, low: float, high: float, *, positive: bool = False) -> float:
        """A finite number in [low, high] (or > 0 when ``positive``)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.wrong_type(field, "a number", value)
        try:
            number = float(value)
        except OverflowError:  # an integer beyond any double
            number = math.inf
        if not math.isfinite(number):
            self.fail(field, f"{_shown(value)} is out of range: numbers must be finite")
        if positive and not number > 0:
            self.fail(field, f"must be greater than 0, not {_shown(value)}")
        if not low <= number <= high:
            self.fail(field, f"{_shown(value)} is out of range; it must be between {low:g} and {high:g}")
        return number

    def positive_int32(self, value: object, field: str) -> int:
        return self.whole(value, field, 1, _INT32_MAX)

    def positive_float(self, value: object, field: str) -> float:
        return self.number(value, field, 0.0, math.inf, positive=True)

    def required(self, members: dict[str, Any], name: str, path: str, what: str) -> Any:
        if name not in members:
            self.fail(_join(path, name), f"is required: {what}")
        return members[name]

    # --- our own section, the same in every form of job file

    def orchestrator(self, value: object, extra: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Our own section, with snake_case keys and validated values (absent keys stay absent).

        ``extra`` names the fields a form adds to the section: their values are returned as written, for
        that form's validator to check.
        """
        section = self.fields(value, "orchestrator", ORCHESTRATOR_FIELDS | extra)
        options: dict[str, Any] = {name: section[name] for name in extra if name in section}
        if "job_key" in section:
            field = "orchestrator.job_key"
            key = self.text(section["job_key"], field, MAX_JOB_KEY_CHARS)
            options["job_key"] = self.printable(key, field)
        if "priority" in section:
            options["priority"] = self.whole(section["priority"], "orchestrator.priority", _INT32_MIN, _INT32_MAX)
        if "tuned_model_id" in section:
            options["tuned_model_id"] = self.tuned_model_id(section["tuned_model_id"])
        if "labels" in section:
            options["labels"] = self.labels(section["labels"])
        for name in ("max_run_time", "stall_timeout"):
            if name in section:
                options[name] = self.positive_float(section[name], f"orchestrator.{name}")
        return options

    def tuned_model_id(self, value: object) -> str:
        field = "orchestrator.tuned_model_id"
        model_id = self.string(value, field)
        if _TUNED_MODEL_ID.fullmatch(model_id) is None:
            size = f" ({len(model_id):,} characters; the limit is 40)" if len(model_id) > 40 else ""
            self.fail(
                field,
                f"{_shown(model_id)} is not a valid tuned-model id{size}: it must match {TUNED_MODEL_ID_PATTERN} "
                "(1 to 40 lowercase letters, digits and hyphens, starting with a letter and not ending with a hyphen)",
            )
        return model_id

    def labels(self, value: object) -> dict[str, str]:
        if not isinstance(value, dict):
            self.wrong_type(_LABELS_PATH, 'an object of string labels, e.g. {"team": "search"}', value)
        if len(value) > MAX_LABELS:
            self.fail(_LABELS_PATH, f"has {len(value):,} labels; the limit is {MAX_LABELS}")
        labels: dict[str, str] = {}
        for key, item in value.items():
            field = _join(_LABELS_PATH, _cut(key))
            if not key:
                self.fail(field, "a label name must not be empty")
            if len(key) > MAX_LABEL_CHARS:
                self.fail(field, f"the label name is {len(key):,} characters; the limit is {MAX_LABEL_CHARS}")
            self.string(key, field)
            text = self.string(item, field)
            if len(text) > MAX_LABEL_CHARS:
                self.fail(field, f"is {len(text):,} characters; the limit is {MAX_LABEL_CHARS}")
            labels[self.printable(key, field)] = self.printable(text, field)
        return labels

    def printable(self, text: str, field: str) -> str:
        """``text`` if it holds nothing a terminal would act on (every status table, log and page shows it).

        Control characters (escape sequences, line breaks, tabs, bells) and invisible formatting ones
        (bidi overrides) are refused, naming the first; markup such as ``[bold]`` is text and allowed.
        """
        if not text.isprintable():
            index, bad = next((i, c) for i, c in enumerate(text) if not c.isprintable())
            self.fail(
                field,
                f"must be printable: it holds {bad.encode('unicode_escape').decode('ascii')} at character {index:,} "
                "(no control characters, tabs, line breaks or invisible formatting characters)",
            )
        return text

    @staticmethod
    def shown(value: object) -> str:
        """A short rendering of a value for messages (see :func:`_shown`)."""
        return _shown(value)


class _Validator(FieldReader):
    """Checks a file of the tutorial's form: the ``tunedModels.create`` body and the ``orchestrator`` section."""

    def job(self, root: dict[str, Any], data: bytes) -> JobSpec:
        """Validate the whole file; ``data`` gives the default job key."""
        if {"supervised_tuning_spec", "supervisedTuningSpec"} & root.keys():
            self.fail(
                "supervised_tuning_spec",
                "belongs to a Vertex AI job file, and this daemon tunes with the Gemini API (its files have "
                'tuning_task); to run Vertex AI job files, set [api] backend = "vertex" in the config',
            )
        top = self.fields(root, "", _TOP_FIELDS, _TOP_OUTPUT_ONLY)
        if "tuned_model_source" in top:
            self.fail(
                "tuned_model_source", "tuning from a tuned model is not supported; the API only tunes base models"
            )
        body: dict[str, Any] = {}
        display_name = None
        if "display_name" in top:
            display_name = self.display_name(top["display_name"])
            body["displayName"] = display_name
        if "description" in top:
            body["description"] = self.string(top["description"], "description")
        base_model = self.string(
            self.required(top, "base_model", "", 'the model to tune, e.g. "models/gemini-1.5-flash-001-tuning"'),
            "base_model",
        )
        if not base_model.startswith("models/") or base_model == "models/":
            self.fail(
                "base_model",
                'must name a base model as "models/<id>", e.g. "models/gemini-1.5-flash-001-tuning", '
                f"not {_shown(base_model)}",
            )
        body["baseModel"] = base_model
        if "temperature" in top:
            body["temperature"] = self.number(top["temperature"], "temperature", 0.0, 2.0)
        if "top_p" in top:
            body["topP"] = self.number(top["top_p"], "top_p", 0.0, 1.0)
        if "top_k" in top:
            body["topK"] = self.whole(top["top_k"], "top_k", 1, _INT32_MAX)
        if "reader_project_numbers" in top:
            body["readerProjectNumbers"] = self.project_numbers(top["reader_project_numbers"])
        task = self.required(top, "tuning_task", "", "the hyperparameters and training_data of the tuning")
        tuning_task, examples, epochs, batch = self.tuning_task(task)
        body["tuningTask"] = tuning_task
        options = self.orchestrator(top.get("orchestrator", {}))
        job_key = options.get("job_key") or file_job_key(data)
        return JobSpec(
            job_key=job_key,
            priority=options.get("priority", 0),
            tuned_model_id=options.get("tuned_model_id"),
            labels=options.get("labels", {}),
            max_run_time=options.get("max_run_time"),
            stall_timeout=options.get("stall_timeout"),
            display_name=display_name,
            base_model=base_model,
            example_count=examples,
            epoch_count=epochs,
            batch_size=batch,
            expected_total_steps=-(-examples * epochs // batch) if epochs is not None and batch is not None else None,
            body=body,
        )

    def display_name(self, value: object) -> str:
        name = self.string(value, "display_name")
        size = len(name.encode("utf-8"))
        if size > MAX_DISPLAY_NAME_BYTES:
            self.fail(
                "display_name",
                f"is {size:,} bytes in UTF-8 ({len(name):,} characters); the limit is {MAX_DISPLAY_NAME_BYTES} bytes",
            )
        return self.printable(name, "display_name")

    def project_numbers(self, value: object) -> list[str]:
        """int64 project numbers, as numbers or numeric strings; sent as strings, as proto3 JSON writes int64."""
        if not isinstance(value, list):
            self.wrong_type("reader_project_numbers", "an array of project numbers", value)
        numbers: list[str] = []
        for index, item in enumerate(value):
            field = f"reader_project_numbers[{index}]"
            if isinstance(item, str):
                if _NUMERIC.fullmatch(item) is None:
                    self.fail(field, f"must be a project number (digits only), not {_shown(item)}")
                if len(item.lstrip("0")) > len(str(_INT64_MAX)):  # before int(), which is slow on many digits
                    self.fail(field, f"{_shown(item)} is out of range; it must be between 1 and {_INT64_MAX:,}")
                item = int(item)
            numbers.append(str(self.whole(item, field, 1, _INT64_MAX)))
        return numbers

    def tuning_task(self, value: object) -> tuple[dict[str, Any], int, int | None, int | None]:
        """The ``tuningTask`` body, the example count, and the epochs and batch size when given."""
        task = self.fields(value, "tuning_task", _TASK_FIELDS, _TASK_OUTPUT_ONLY)
        body: dict[str, Any] = {}
        epochs = batch = None
        if "hyperparameters" in task:
            hyper, epochs, batch = self.hyperparameters(task["hyperparameters"])
            body["hyperparameters"] = hyper
        data = self.fields(
            self.required(task, "training_data", "tuning_task", "the training examples"),
            "tuning_task.training_data",
            _DATA_FIELDS,
        )
        path = "tuning_task.training_data.examples"
        group = self.fields(
            self.required(data, "examples", "tuning_task.training_data", "the training examples"),
            path,
            _EXAMPLES_FIELDS,
        )
        if "multiturn_examples" in group:
            self.fail(
                _join(path, "multiturn_examples"),
                "multi-turn examples are not supported: only text input/output pairs (text_input, output)",
            )
        examples = self.examples(self.required(group, "examples", path, "a list of {text_input, output} pairs"))
        body["trainingData"] = {"examples": {"examples": examples}}
        return body, len(examples), epochs, batch

    def hyperparameters(self, value: object) -> tuple[dict[str, Any], int | None, int | None]:
        path = "tuning_task.hyperparameters"
        hyper = self.fields(value, path, _HYPER_FIELDS)
        if "learning_rate" in hyper and "learning_rate_multiplier" in hyper:
            self.fail(
                path,
                "learning_rate and learning_rate_multiplier are alternatives (a oneof in the API); give at most one",
            )
        body: dict[str, Any] = {}
        epochs = batch = None
        if "epoch_count" in hyper:
            epochs = body["epochCount"] = self.positive_int32(hyper["epoch_count"], _join(path, "epoch_count"))
        if "batch_size" in hyper:
            batch = body["batchSize"] = self.positive_int32(hyper["batch_size"], _join(path, "batch_size"))
        if "learning_rate" in hyper:
            body["learningRate"] = self.positive_float(hyper["learning_rate"], _join(path, "learning_rate"))
        if "learning_rate_multiplier" in hyper:
            body["learningRateMultiplier"] = self.positive_float(
                hyper["learning_rate_multiplier"], _join(path, "learning_rate_multiplier")
            )
        return body, epochs, batch

    def examples(self, value: object) -> list[dict[str, str]]:
        """Text input/output pairs within the API's per-example limits."""
        path = "tuning_task.training_data.examples.examples"
        if not isinstance(value, list):
            self.wrong_type(path, "an array of {text_input, output} pairs", value)
        if not value:
            self.fail(path, "must not be empty: give at least one {text_input, output} pair")
        examples: list[dict[str, str]] = []
        for index, example in enumerate(value):
            where = f"{path}[{index}]"
            if not isinstance(example, dict):
                self.wrong_type(where, "an object {text_input, output}", example)
            text_input: object = _MISSING
            output: object = _MISSING
            for key, item in example.items():
                name = _snake(key)
                if name == "text_input":
                    text_input = item
                elif name == "output":
                    output = item
                else:
                    self.fail(
                        _join(where, _display_key(key)),
                        f"unknown field {_quoted(key)}: only text input/output pairs are supported "
                        "(text_input and output); multi-turn chat examples are not",
                    )
            if text_input is _MISSING:
                self.fail(_join(where, "text_input"), "is required: the example's input text")
            if output is _MISSING:
                self.fail(_join(where, "output"), "is required: the example's expected output text")
            examples.append(
                {
                    "textInput": self.text(text_input, _join(where, "text_input"), MAX_INPUT_CHARS),
                    "output": self.text(output, _join(where, "output"), MAX_OUTPUT_CHARS),
                }
            )
        return examples
