"""Log event names are stable snake_case identifiers, so operators can alert and filter on them.

Read from the source with ``ast``: every ``log.<level>("event", ...)`` call in the package. An
f-string name (``f"job_{state}"``) must be snake_case in its literal parts too.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import orchestrator

LEVELS = {"debug", "info", "warning", "error", "exception", "critical"}
#: The names structlog loggers go by here (``log``, ``_log``, ``bound = log.bind(...)``); not ``parser``.
LOGGER = re.compile(r"log|bound")
#: Local names the daemon gives a logger method chosen at run time.
PICKED_LEVEL = {"log", "report"}
SNAKE = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*_?")


def event_names() -> dict[str, str]:
    """``event name → file:line`` for every log call with a literal first argument."""
    found: dict[str, str] = {}
    package = Path(orchestrator.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not (isinstance(node, ast.Call) and node.args):
                continue
            func = node.func
            # log.info("x"), bound.warning("x"); or a level picked first: report = log.debug if ... else ...
            by_level = isinstance(func, ast.Attribute) and func.attr in LEVELS and isinstance(func.value, ast.Name) \
                and LOGGER.search(func.value.id)
            if not (by_level or (isinstance(func, ast.Name) and func.id in PICKED_LEVEL)):
                continue
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value
            elif isinstance(first, ast.JoinedStr):
                name = "".join(v.value if isinstance(v, ast.Constant) else "x" for v in first.values)
            else:
                continue
            found[name] = f"{path.relative_to(package)}:{node.lineno}"
    return found


def test_log_event_names_are_snake_case() -> None:
    """No sentence, no capital, no space: ``job_submitted``, not ``"Job submitted!"``."""
    names = event_names()
    assert len(names) > 20  # the scan sees the daemon's events
    assert {name: where for name, where in names.items() if not SNAKE.fullmatch(name)} == {}


def test_operations_guide_lists_the_daemons_key_events() -> None:
    """The events an operator alerts on are real (a renamed event must update docs/operations.md)."""
    guide = (Path(__file__).parents[2] / "docs" / "operations.md").read_text()
    logs = guide[guide.index("### Logs"):guide.index("\n## ", guide.index("### Logs"))]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", logs, flags=re.MULTILINE))
    assert documented, "docs/operations.md has an event table"
    assert documented - set(event_names()) == set()
