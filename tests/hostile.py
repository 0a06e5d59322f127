"""Hostile inputs: job files shaped to exhaust memory, and user text shaped to break a terminal.

``tests/corpus.py`` holds small malformed files, each with the exact error it must produce. This module
holds what an attacker in the job submitter's position would drop on purpose:

- ``MEMORY_SHAPES``: builders of files of any size in the shapes that cost the most memory per byte once
  parsed (the security review's ``{"a":[[],[],…]}`` first). ``tests/unit/test_spec_memory.py`` proves the
  parser's peak stays within a small multiple of the file's size for each; ``bench/intake.py`` measures
  the daemon's peak on them at the default size limit.
- ``HOSTILE_TEXT``: display names and labels that a terminal or rich would interpret (markup, escape
  sequences, line breaks), which validation must refuse or the CLI print as plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final


def _repeat(unit: bytes, size: int, head: bytes = b'{"a":[', tail: bytes = b"]}") -> bytes:
    """``head`` + ``unit`` repeated to about ``size`` bytes, comma-separated, + ``tail``: valid JSON."""
    count = max(1, (size - len(head) - len(tail)) // (len(unit) + 1))
    return head + b",".join([unit] * count) + tail


def _keys(size: int, value: bytes, prefix: bytes = b"") -> bytes:
    """One object with as many distinct short keys as fit ``size`` bytes."""
    keys: list[bytes] = []
    total = 2
    index = 0
    while total < size:
        key = b'"%s%x":%s' % (prefix, index, value)
        keys.append(key)
        total += len(key) + 1
        index += 1
    return b"{" + b",".join(keys) + b"}"


_KEY_LETTERS: Final = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-"


def _five_letters(index: int) -> bytes:
    return bytes(_KEY_LETTERS[(index >> shift) & 63] for shift in (24, 18, 12, 6, 0))


def _tiny_objects(size: int) -> bytes:
    """An array of one-key objects, each key distinct: at the density limit for strings, keys and containers."""
    count = (size - 2) // 12
    return b"[" + b",".join(b'{"%s":0}' % _five_letters(index) for index in range(count)) + b"]"


def _valid_tiny_examples(size: int) -> bytes:
    """A valid job of one-character examples: the densest file that is a real job."""
    example = b'{"textInput":"1","output":"2"}'
    head = b'{"baseModel":"models/gemini-1.5-flash-001-tuning","tuningTask":{"trainingData":{"examples":{"examples":['
    return _repeat(example, size, head, b"]}}}}")


#: name → builder(size in bytes) → file content, roughly that size.
MEMORY_SHAPES: Final[dict[str, Callable[[int], bytes]]] = {
    "nested empty arrays": lambda size: _repeat(b"[]", size),
    "empty objects": lambda size: _repeat(b"{}", size),
    "arrays of one number": lambda size: _repeat(b"[0]", size),
    "empty strings": lambda size: _repeat(b'""', size),
    "two-character strings": lambda size: _repeat(b'"ab"', size),
    "six-character strings": lambda size: _repeat(b'"abcdef"', size),
    "many short keys": lambda size: _keys(size, b"0"),
    "many keys with string values": lambda size: _keys(size, b'"abcdef"'),
    "many camelCase keys": lambda size: _keys(size, b'"abc"', b"aB"),
    "tiny objects with distinct keys": _tiny_objects,
    "escaped quotes": lambda size: _repeat(b'"\\"\\"\\"\\""', size),
    "floats": lambda size: _repeat(b"1.5", size),
    "valid one-character examples": _valid_tiny_examples,
}

#: Display names and label values that must never reach a terminal as anything but text. Each is at most
#: 40 UTF-8 bytes, so only its content can be the reason for a refusal.
HOSTILE_TEXT: Final[dict[str, str]] = {
    "rich closing tag": "[/bold] broken",
    "rich style tag": "[red]alarm[/red]",
    "rich link": "[link=https://x.invalid]x[/link]",
    "clear screen": "\x1b[2Jgone",
    "cursor home and erase": "\x1b[H\x1b[Kx",
    "bell": "ding\x07",
    "carriage return": "ok\rEVIL",
    "line break": "two\nlines",
    "tab": "a\tb",
    "delete": "a\x7fb",
    "c1 control": "a\x9bb",
    "bidi override": "abc\u202edcba",
}

#: Of ``HOSTILE_TEXT``, the names that validation accepts (printable text that only looks like markup):
#: the CLI must print them verbatim.
MARKUP_ONLY: Final = frozenset({"rich closing tag", "rich style tag", "rich link"})
