"""Output that stays readable at scale (issue 13, item 10): many epochs, similar names, narrow terminals.

Before: 20+ epochs ran the PNG's labels together (``epoch0poch1poch…``) and 80 made a grey band; the
terminal chart printed ``0234678101215…``; ``status`` in 80 columns showed three jobs as ``batch …``;
an empty ``status`` printed only a header; an ambiguous prefix did not say what it matched; ``watch``
stood still between sparse polls.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import sqlite3
from collections.abc import Collection, Iterator
from dataclasses import replace
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from rich.console import Console

from orchestrator.cli import main
from orchestrator.config import DatabaseSettings
from orchestrator.jobs import Job, JobState, Snapshot
from orchestrator.report import loss_chart, timing
from orchestrator.status.plot import loss_figure
from orchestrator.status.watch import watch
from orchestrator.store import JobDetail, open_reader, open_store
from orchestrator.store import sql as store_sql
from tests.status.conftest import NOW, SampleJobs, new_job

Sample = tuple[Path, SampleJobs]


def snapshots(epochs: int, steps_per_epoch: int) -> tuple[Snapshot, ...]:
    return tuple(Snapshot(step=i + 1, epoch=i // steps_per_epoch + 1, mean_loss=5 / (i + 1))
                 for i in range(epochs * steps_per_epoch))


async def a_job(path: Path) -> Job:
    async with open_reader(DatabaseSettings(path=path)) as reader:
        return (await reader.list_jobs())[0]


@pytest.mark.parametrize(("epochs", "steps_per_epoch"), [(20, 4), (80, 3), (80, 1)])
def test_plot_epoch_labels_never_overlap(sample_db: Sample, epochs: int, steps_per_epoch: int) -> None:
    """The labels as matplotlib lays them out (their pixel boxes) are apart; lines only where labelled."""
    job = asyncio.run(a_job(sample_db[0]))
    detail = JobDetail(job=job, example_count=1, file_bytes=1, hyperparameters={}, events=(),
                       snapshots=snapshots(epochs, steps_per_epoch))
    figure = loss_figure(detail)
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
    [axes] = figure.axes
    [top] = axes.child_axes
    labels = [label for label in top.xaxis.get_ticklabels() if label.get_text()]
    boxes = sorted((label.get_window_extent(renderer) for label in labels), key=lambda box: box.x0)

    assert 4 <= len(labels) <= 20
    assert all(left.x1 < right.x0 for left, right in itertools.pairwise(boxes)), [lbl.get_text() for lbl in labels]
    assert len(axes.get_lines()) - 1 <= len(labels)  # the curve, and at most one dotted line per label


@pytest.mark.parametrize(("epochs", "steps_per_epoch"), [(20, 4), (20, 1), (80, 3), (80, 1)])
def test_terminal_chart_epoch_numbers_stand_apart_under_their_marks(epochs: int, steps_per_epoch: int) -> None:
    lines = loss_chart(snapshots(epochs, steps_per_epoch))
    axis, numbers = lines[-3], lines[-2]
    found = [(m.start(), m.group()) for m in re.finditer(r"\d+", numbers)]

    assert len(found) >= 4
    assert [start for start, _ in found] == [m.start() for m in re.finditer("┬", axis)]
    assert all(int(b) > int(a) for (_, a), (_, b) in itertools.pairwise(found))  # increasing: none run together


@pytest.fixture
def alike(tmp_path: Path) -> Iterator[Path]:
    """Three jobs whose names differ only at the end, plus a short one; one is retrying an error."""
    path = tmp_path / "alike.db"

    async def build() -> None:
        async with open_store(DatabaseSettings(path=path)) as store:
            for index, name in enumerate(["batch sweep lr=0.001 bs=4 run A", "batch sweep lr=0.001 bs=4 run B",
                                          "batch sweep lr=0.01 bs=8 customer-acme", "nightly"]):
                await store.add_job(new_job(f"k{index}", display_name=name), NOW - timedelta(minutes=index))

    asyncio.run(build())
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE jobs SET attempts = 1, last_error = '503 UNAVAILABLE: The model is overloaded.' "
                     "WHERE job_key = 'k0'")
        conn.execute("UPDATE jobs SET state = 'cancelled', completed_steps = 422, total_steps = 1000, "
                     "last_loss = 2.157, error_message = 'Operation cancelled.' WHERE job_key = 'k1'")
    yield path


def test_status_in_80_columns_keeps_names_apart(
    alike: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["status", "--database", str(alike)]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert all(len(line) <= 80 for line in lines)
    header = lines[0].split()
    assert header == ["id", "state", "name", "progress", "steps", "loss", "age", "error"]
    cancelled = lines[2][:lines[0].index("name")].split() + lines[2][lines[0].index("progress"):].split()[:4]
    assert cancelled[1:] == ["cancelled", "42%", "422/1000", "2.1570", "1m"]  # the fixed columns whole
    start, end = lines[0].index("name"), lines[0].index("progress")
    names = [line[start:end].strip() for line in lines[1:]]
    assert len(set(names)) == 4 and all(name.startswith("batch") for name in names[:3]), names
    assert "error" in lines[0] and "retrying" in lines[1]



def test_status_with_no_jobs_says_so(alike: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--database", str(alike), "--state", "failed"]) == 0
    assert capsys.readouterr().out == "no jobs match the filters\n"


def test_an_ambiguous_job_prefix_lists_the_matching_jobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = iter(["abc111111111", "abc222222222"])
    monkeypatch.setattr(store_sql, "new_job_id", lambda: next(ids))
    path = tmp_path / "o.db"

    async def build() -> None:
        async with open_store(DatabaseSettings(path=path)) as store:
            await store.add_job(new_job("one", display_name="first"), NOW)
            await store.add_job(new_job("two", display_name="second"), NOW)

    asyncio.run(build())
    assert main(["show", "abc", "--database", str(path)]) == 1
    assert capsys.readouterr().err == (
        "orchestrator: 'abc' matches several jobs; give more of the id: "
        "abc111111111 (first, queued), abc222222222 (second, queued)\n"
    )


def running(job: Job) -> Job:
    """Running for 10 minutes, 5 of 20 steps done by minute 5: a minute a step, 10 minutes to go."""
    return replace(job, state=JobState.RUNNING, started_at=NOW - timedelta(minutes=10), completed_steps=5,
                   total_steps=20, last_progress_at=NOW - timedelta(minutes=5), finished_at=None)


def test_timing_says_how_long_and_when_it_should_end(sample_db: Sample) -> None:
    job = running(asyncio.run(a_job(sample_db[0])))
    assert timing(job, NOW) == "running 10m, ends in ~10m"
    assert timing(job, NOW + timedelta(minutes=4)) == "running 14m, ends in ~6m"
    assert timing(job, NOW + timedelta(minutes=11)) == "running 21m, ending about now"
    assert timing(replace(job, state=JobState.QUEUED, started_at=None, created_at=NOW - timedelta(seconds=40)),
                  NOW) == "queued 40s"
    assert timing(replace(job, state=JobState.SUCCEEDED, finished_at=NOW + timedelta(minutes=5)), NOW) == "took 15m"


async def test_watch_moves_between_polls(sample_db: Sample) -> None:
    """Three refreshes, one database state: the elapsed time and the expected end still move."""
    job = running(await a_job(sample_db[0]))
    clock = iter([NOW, NOW + timedelta(minutes=2), NOW + timedelta(minutes=4)])
    reads = 0

    async def fetch(_also: Collection[str]) -> list[Job]:
        nonlocal reads
        reads += 1
        return [job if reads < 3 else replace(job, state=JobState.SUCCEEDED, finished_at=NOW)]

    console = Console(file=StringIO(), width=160, force_terminal=True)
    outputs = []

    async def sleep(_seconds: float) -> None:
        outputs.append(console.file.getvalue())  # type: ignore[attr-defined]

    await watch(fetch, console, sleep, now=lambda: next(clock))

    assert "running 10m, ends in ~10m" in outputs[0]
    assert "running 12m, ends in ~8m" in outputs[1]
    assert "took 10m" in console.file.getvalue()  # type: ignore[attr-defined]
