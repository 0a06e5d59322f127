"""The repository stays as clean as it is: ruff over everything, mypy (strict) over the package.

They run as tests so that the one test command, and so CI, enforces them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "command", [["ruff", "check", "--output-format", "concise", "."], ["mypy"]], ids=["ruff", "mypy"]
)
def test_linters_pass(command: list[str]) -> None:
    """No lint finding and no type error (configuration in pyproject.toml)."""
    result = subprocess.run(
        [sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr
