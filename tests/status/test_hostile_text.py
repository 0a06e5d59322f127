"""User text that looks like markup or holds terminal controls is shown as text, never obeyed.

A display name of ``[/bold] broken`` made every ``orchestrator status`` exit 1 (rich's MarkupError), and
``\\x1b[2J…`` was printed raw into the operator's terminal. Validation now refuses control characters in
display names and labels; markup-looking text stays valid and must print verbatim. Rows written before
that rule (or by another tool) may still hold controls: the CLI shows them escaped.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Collection
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from orchestrator.cli import main
from orchestrator.errors import SpecError
from orchestrator.jobs import Job
from orchestrator.spec import parse_job
from orchestrator.status.watch import watch
from orchestrator.store import StatusReader
from orchestrator.store.connection import reader_engine
from orchestrator.text import terminal_text
from tests.corpus import good_job
from tests.hostile import HOSTILE_TEXT, MARKUP_ONLY
from tests.status.conftest import SampleJobs

CONTROLS = {name: text for name, text in HOSTILE_TEXT.items() if name not in MARKUP_ONLY}
MARKUP = {name: text for name, text in HOSTILE_TEXT.items() if name in MARKUP_ONLY}


@pytest.mark.parametrize("name", sorted(CONTROLS))
def test_control_characters_are_refused_in_display_names_and_labels(name: str) -> None:
    text = CONTROLS[name]
    for data, field in (
        (good_job(display_name=text), "display_name"),
        (good_job(orchestrator={"labels": {"team": text}}), "orchestrator.labels.team"),
        (good_job(orchestrator={"labels": {f"x{text}": "v"}}), f"orchestrator.labels.x{text}"),
    ):
        with pytest.raises(SpecError) as refused:
            parse_job(data, source="job.json")
        assert refused.value.field == field and "must be printable" in refused.value.problem


@pytest.mark.parametrize("name", sorted(MARKUP))
def test_markup_looking_text_is_a_valid_display_name_and_label(name: str) -> None:
    spec = parse_job(good_job(display_name=MARKUP[name], orchestrator={"labels": {"team": MARKUP[name]}}),
                     source="job.json")
    assert spec.display_name == MARKUP[name] and spec.labels == {"team": MARKUP[name]}


def rename_jobs(path: Path, names: dict[str, str]) -> None:
    """Give the sample jobs hostile names, as an older daemon or another tool could have stored them."""
    with sqlite3.connect(path) as db:
        for job_id, name in names.items():
            db.execute("UPDATE jobs SET display_name = ?, last_error = ? WHERE id = ?", (name, name, job_id))


def hostile_names(ids: SampleJobs) -> dict[str, str]:
    return {ids.running: HOSTILE_TEXT["rich closing tag"], ids.queued: HOSTILE_TEXT["clear screen"],
            ids.failed: HOSTILE_TEXT["rich link"], ids.succeeded: HOSTILE_TEXT["carriage return"]}


def test_status_and_show_print_hostile_names_as_text(
    sample_db: tuple[Path, SampleJobs], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, ids = sample_db
    rename_jobs(path, hostile_names(ids))
    monkeypatch.setenv("COLUMNS", "200")

    assert main(["status", "--database", str(path)]) == 0
    out = capsys.readouterr().out
    assert "[/bold] broken" in out and "[link=https://x.invalid]x[/link]" in out
    assert "\x1b" not in out and "\\x1b[2Jgone" in out and "\r" not in out and "ok\\rEVIL" in out

    for job_id in (ids.running, ids.queued, ids.failed):
        assert main(["show", job_id, "--database", str(path)]) == 0
        shown = capsys.readouterr().out
        assert "\x1b" not in shown
    assert main(["show", ids.running, "--database", str(path)]) == 0
    assert "[/bold] broken" in capsys.readouterr().out
    assert main(["status", "--json", "--database", str(path)]) == 0  # JSON carries the text itself, escaped
    assert "[/bold] broken" in {job["display_name"] for job in json.loads(capsys.readouterr().out)}


async def test_watch_prints_hostile_names_as_text(sample_db: tuple[Path, SampleJobs]) -> None:
    path, ids = sample_db
    rename_jobs(path, hostile_names(ids))
    engine = reader_engine(path, 5.0)
    reader = StatusReader(engine)
    console = Console(file=StringIO(), width=160, force_terminal=False)
    rounds = 0

    async def fetch(also: Collection[str]) -> list[Job]:
        nonlocal rounds
        rounds += 1
        jobs = await reader.active_jobs(also)
        return jobs if rounds < 2 else []

    async def no_wait(_seconds: float) -> None:
        return None

    try:
        await watch(fetch, console, sleep=no_wait, interval=0.1)
    finally:
        await engine.dispose()
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "[/bold] broken" in out and "\x1b" not in out and "\\x1b[2Jgone" in out


def test_terminal_text_escapes_only_what_a_terminal_would_act_on() -> None:
    assert terminal_text("[red]x[/red] café ✓") == "[red]x[/red] café ✓"
    assert terminal_text("\x1b[2J\x07\r\n\u202e") == "\\x1b[2J\\x07\\r\\n\\u202e"
