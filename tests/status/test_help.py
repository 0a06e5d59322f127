"""The help a new user reads (issue 13, item 11): user-facing words, examples, every command described."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.status.plot import PLOT_INSTALL_HINT


def help_text(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main([*argv, "--help"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def test_top_level_help_is_for_users_with_examples(capsys: pytest.CaptureFixture[str]) -> None:
    text = help_text(capsys)
    assert "No business logic" not in text and "parses arguments" not in text  # the module's own docstring
    assert "examples:" in text and "orchestrator demo " in text and "orchestrator retry " in text
    assert "ORCHESTRATOR_CONFIG" in text
    assert all(len(line) <= 120 for line in text.splitlines())


@pytest.mark.parametrize("command", ["demo", "db", "rejected", "resubmit", "retry"])
def test_every_command_has_a_description(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    _usage, _, rest = help_text(capsys, command).partition("\n\n")
    description = rest.split("\n\n")[0]
    assert not description.startswith(("options:", "positional arguments:")), (command, description)


def test_db_without_a_sub_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db"]) == 2
    assert "upgrade" in capsys.readouterr().err


REPO = Path(__file__).resolve().parents[2]
USER_DOCS = [REPO / "README.md", REPO / "BENCHMARKS.md", *sorted((REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", USER_DOCS, ids=lambda path: path.name)
def test_the_docs_cite_only_files_the_repository_has(doc: Path) -> None:
    """``gemini-api.md §11`` and ``shared/reference/orchestrators.md`` were cited but are not in a clone."""
    text = doc.read_text(encoding="utf-8")
    cited = set(re.findall(r"(?<![/\w.-])([\w./-]+\.md)\b", re.sub(r"\(https?://[^)]*\)|https?://\S+", "", text)))
    shipped = {path.name for path in USER_DOCS} | {str(path.relative_to(REPO)) for path in USER_DOCS}
    assert cited <= shipped, cited - shipped


def test_benchmark_commands_use_the_readmes_virtualenv() -> None:
    text = (REPO / "BENCHMARKS.md").read_text(encoding="utf-8")
    table = "\n".join(line for line in text.split("## Commands")[1].split("\n## ")[0].splitlines() if line[:1] == "|")
    commands = re.findall(r"`([^`]*-m bench\.[^`]*)`", table)
    assert len(commands) >= 4 and all(command.startswith(".venv/bin/python -m bench.") for command in commands)


def test_the_plot_hint_works_outside_a_checkout() -> None:
    """``pip install 'orchestrator[plot]'`` fails unless the package is on an index; matplotlib itself does not."""
    assert PLOT_INSTALL_HINT.startswith("pip install matplotlib")
    assert "pip install 'orchestrator[plot]'" not in (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
