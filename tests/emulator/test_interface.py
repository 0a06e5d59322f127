"""The public interface other parts rely on, and the emulator's isolation from the daemon's code."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

from aiohttp import web

import orchestrator.emulator as package
from orchestrator.emulator import EmulatorSettings, create_app, running_emulator
from orchestrator.emulator.cli import main

PACKAGE_DIR = Path(package.__file__).parent


def test_imports_nothing_from_the_rest_of_orchestrator() -> None:
    """The emulator shares only the wire format with the daemon, never its code."""
    offenders = []
    for path in sorted(PACKAGE_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}"
                for name in names
                if name.startswith("orchestrator") and not name.startswith("orchestrator.emulator")
            ]

    assert offenders == []


async def test_public_names_and_shapes() -> None:
    """The names and shapes the daemon, the demo and the benchmarks use."""
    settings = EmulatorSettings(step_seconds=2.0, time_scale=1.0, seed=0, metadata_refresh_seconds=0.0)

    assert isinstance(create_app(settings), web.Application)
    async with running_emulator(settings, host="127.0.0.1", port=0) as base_url:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base_url)
    assert list(inspect.signature(main).parameters) == ["argv"]
