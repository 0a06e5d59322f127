"""Promise 1 at the door: every file dropped becomes exactly one job or one rejection, whatever it is.

The intake runs against a real database and a real spool under ``tmp_path``; the bad files are the shared
corpus (``tests/corpus.py``, over a hundred malformed job files) plus what only a file system can hold:
symlinks, directories, fifos, odd names, files still being written, and crashes between the steps.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from orchestrator import intake as intake_module
from orchestrator.clock import SystemClock
from orchestrator.config import DatabaseSettings, SpoolSettings
from orchestrator.intake import Intake, drop_job_file
from orchestrator.jobs import JobState
from orchestrator.spec import JobFileParser, JobSpec, parse_job
from orchestrator.store import open_store
from orchestrator.store.sql import SqlStore
from tests.corpus import BAD_JOB_FILES, BadJobFile, good_job
from tests.reliability.conftest import all_jobs

DEFAULT_LIMIT = BAD_JOB_FILES[0].max_bytes


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    path = tmp_path / "orchestrator.db"
    async with open_store(DatabaseSettings(path=path, busy_timeout=0.3)) as writer:
        yield writer


def make_intake(
    store: SqlStore,
    root: Path,
    *,
    settle: float = 0.0,
    max_bytes: int = DEFAULT_LIMIT,
    parse: JobFileParser = parse_job,
) -> Intake:
    settings = SpoolSettings(path=root / "spool", settle_seconds=settle, watch=False, max_file_bytes=max_bytes)
    intake = Intake(store, settings, SystemClock(), "itest1", parse=parse)
    intake.prepare()
    return intake


def listing(root: Path, folder: str) -> list[str]:
    return sorted(os.listdir(root / "spool" / folder))


def error_report(root: Path, name: str) -> dict[str, str]:
    report: dict[str, str] = json.loads((root / "spool" / "rejected" / f"{name}.error.json").read_text())
    return report


async def test_every_corpus_file_is_rejected_with_its_specific_reason(store: SqlStore, tmp_path: Path) -> None:
    entries = [entry for entry in BAD_JOB_FILES if entry.max_bytes == DEFAULT_LIMIT]
    assert len(entries) >= 50
    await each_rejected_with_its_reason(make_intake(store, tmp_path), store, tmp_path, entries)


async def each_rejected_with_its_reason(
    intake: Intake, store: SqlStore, tmp_path: Path, entries: list[BadJobFile]
) -> None:
    """Drop every entry at once: each must end as one rejection naming its field and problem, and no job."""
    for index, entry in enumerate(entries):
        drop_job_file(tmp_path / "spool", f"bad-{index:03d}.json", entry.data)

    assert await intake.scan() == len(entries)

    for index, entry in enumerate(entries):
        report = error_report(tmp_path, f"bad-{index:03d}.json")
        assert (report["field"], report["file"]) == (entry.field, f"bad-{index:03d}.json"), entry.name
        assert entry.problem_contains in report["problem"], entry.name
    assert await all_jobs(store) == []
    assert listing(tmp_path, "inbox") == listing(tmp_path, "processing") == listing(tmp_path, "accepted") == []
    assert len(listing(tmp_path, "rejected")) == 2 * len(entries)


async def test_a_file_over_the_size_limit_is_rejected_unread(store: SqlStore, tmp_path: Path) -> None:
    intake = make_intake(store, tmp_path, max_bytes=1000)
    drop_job_file(tmp_path / "spool", "big.json", b" " * 1001)

    await intake.scan()

    assert "1,001 bytes; the limit is 1,000" in error_report(tmp_path, "big.json")["problem"]


async def test_entries_that_are_not_job_files_are_left_alone_and_logged_once(
    store: SqlStore, tmp_path: Path
) -> None:
    intake = make_intake(store, tmp_path)
    inbox = tmp_path / "spool" / "inbox"
    (inbox / "folder.json").mkdir()
    os.mkfifo(inbox / "pipe.json")
    (inbox / "notes.txt").write_text("not a job")
    (inbox / ".hidden.json").write_bytes(good_job())
    (inbox / "half.json.tmp").write_bytes(good_job())

    with capture_logs() as logs:
        assert await intake.scan() == 0
        assert await intake.scan() == 0

    assert listing(tmp_path, "inbox") == [".hidden.json", "folder.json", "half.json.tmp", "notes.txt", "pipe.json"]
    ignored = sorted(e["file"] for e in logs if e["event"] == "inbox_entry_ignored")
    assert ignored == ["folder.json", "half.json.tmp", "notes.txt", "pipe.json"]


async def test_a_symlink_is_rejected_and_never_followed_out_of_the_spool(store: SqlStore, tmp_path: Path) -> None:
    secret = tmp_path / "outside.json"
    secret.write_bytes(good_job())
    intake = make_intake(store, tmp_path)
    (tmp_path / "spool" / "inbox" / "link.json").symlink_to(secret)

    await intake.scan()

    assert "symbolic link" in error_report(tmp_path, "link.json")["problem"]
    assert (tmp_path / "spool" / "rejected" / "link.json").is_symlink()
    assert secret.read_bytes() == good_job() and await all_jobs(store) == []


@pytest.mark.parametrize(
    ("name", "recorded"),
    [
        ("with space é ü.json", "with space é ü.json"),
        ("new\nline.json", "new\\nline.json"),
        (os.fsdecode(b"latin-\xe9.json"), "latin-\\xe9.json"),
        ("x" * 245 + ".json", None),
    ],
    ids=["unicode", "newline", "undecodable", "255 bytes"],
)
async def test_odd_names_become_jobs_with_printable_records(
    name: str, recorded: str | None, store: SqlStore, tmp_path: Path
) -> None:
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", name, good_job())

    await intake.scan()

    [job] = await all_jobs(store)
    [accepted] = listing(tmp_path, "accepted")
    assert accepted.startswith(f"{job.id}--")
    if recorded is not None:
        assert job.source_file == recorded
    else:  # too long to keep whole behind a job id: shortened, still unique and still *.json
        assert len(os.fsencode(accepted)) < 255 and accepted.endswith(".json")
    assert listing(tmp_path, "inbox") == listing(tmp_path, "processing") == []


async def test_the_same_job_dropped_twice_is_one_job_and_one_rejection_naming_it(
    store: SqlStore, tmp_path: Path
) -> None:
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "a.json", good_job())
    drop_job_file(tmp_path / "spool", "b.json", good_job())

    await intake.scan()

    [job] = await all_jobs(store)
    assert job.source_file == "a.json"
    report = error_report(tmp_path, "b.json")
    assert report["duplicate_of_job"] == job.id and report["field"] == "orchestrator.job_key"


async def test_a_file_still_being_written_is_read_once_it_settles(store: SqlStore, tmp_path: Path) -> None:
    intake = make_intake(store, tmp_path, settle=0.3)
    writer = await asyncio.to_thread(open, tmp_path / "spool" / "inbox" / "slow.json", "wb")  # a slow writer
    with writer:
        writer.write(good_job()[:20])
        writer.flush()
        await intake.scan()  # claimed, unreadable yet, recently modified: left to settle
        assert listing(tmp_path, "rejected") == [] and len(listing(tmp_path, "processing")) == 1
        writer.write(good_job()[20:])
    await asyncio.sleep(0.35)
    await intake.scan()

    [job] = await all_jobs(store)
    assert job.source_file == "slow.json" and listing(tmp_path, "processing") == []


async def test_a_zero_byte_file_that_stays_empty_is_rejected_after_settling(store: SqlStore, tmp_path: Path) -> None:
    intake = make_intake(store, tmp_path, settle=0.2)
    (tmp_path / "spool" / "inbox" / "empty.json").touch()
    await intake.scan()
    await asyncio.sleep(0.25)
    await intake.scan()

    assert "empty" in error_report(tmp_path, "empty.json")["problem"]
    assert listing(tmp_path, "processing") == []


async def test_a_crash_after_the_commit_before_the_move_is_finished_at_start(store: SqlStore, tmp_path: Path) -> None:
    """The job row records the claim token; the file left in processing/ is moved, not recorded again."""
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "job.json", good_job())
    await intake.scan()
    [job] = await all_jobs(store)
    accepted = tmp_path / "spool" / "accepted" / f"{job.id}--job.json"
    accepted.rename(tmp_path / "spool" / "processing" / f"{job.intake_id}--job.json")  # as if the move never ran

    await make_intake(store, tmp_path).recover()

    assert await all_jobs(store) == [job]
    assert listing(tmp_path, "accepted") == [f"{job.id}--job.json"] and listing(tmp_path, "processing") == []


async def test_a_claimed_file_never_recorded_is_processed_at_start(store: SqlStore, tmp_path: Path) -> None:
    (tmp_path / "spool" / "processing").mkdir(parents=True)
    (tmp_path / "spool" / "processing" / "0123456789abcdef--job.json").write_bytes(good_job())
    (tmp_path / "spool" / "processing" / "0000000000000000--bad.json").write_bytes(b"{")

    await make_intake(store, tmp_path).recover()

    [job] = await all_jobs(store)
    assert job.state is JobState.QUEUED and job.intake_id == "0123456789abcdef"
    assert listing(tmp_path, "rejected") == ["bad.json", "bad.json.error.json"]
    assert listing(tmp_path, "processing") == []


async def test_a_locked_database_defers_the_file_and_it_is_recorded_later(
    store: SqlStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(intake_module, "RETRY_AFTER_FAILURE_SECONDS", 0.05)
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "job.json", good_job())
    holder = sqlite3.connect(tmp_path / "orchestrator.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with capture_logs() as logs:
            await intake.scan()
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert len(listing(tmp_path, "processing")) == 1 and listing(tmp_path, "rejected") == []
    assert [e["event"] for e in logs] == ["intake_file_deferred"]

    await asyncio.sleep(0.06)
    await intake.scan()

    [job] = await all_jobs(store)
    assert job.source_file == "job.json" and listing(tmp_path, "processing") == []


def rejection_rows(root: Path) -> list[tuple[str, str, str, str | None]]:
    with sqlite3.connect(root / "orchestrator.db") as conn:
        rows: list[tuple[str, str, str, str | None]] = conn.execute(
            "SELECT file, rejected_file, field, duplicate_of FROM rejections ORDER BY file"
        ).fetchall()
    return rows


async def test_each_rejection_is_a_database_row_naming_the_file_and_the_field(store: SqlStore, tmp_path: Path) -> None:
    """Rejections are where the tools read them, not only in rejected/ (issue 13, item 8)."""
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "a.json", good_job())
    drop_job_file(tmp_path / "spool", "b.json", good_job())  # a duplicate of a.json
    drop_job_file(tmp_path / "spool", "bad.json", b"{")

    await intake.scan()

    [job] = await all_jobs(store)
    assert rejection_rows(tmp_path) == [
        ("b.json", "b.json", "orchestrator.job_key", job.id),
        ("bad.json", "bad.json", "", None),
    ]


async def test_a_crash_after_the_rejection_row_before_the_move_is_finished_at_start(
    store: SqlStore, tmp_path: Path
) -> None:
    """The rejection row records the claim token: the file left in processing/ is moved to the row's name."""
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "bad.json", b"{")
    await intake.scan()
    [(_, rejected_file, _, _)] = rejection_rows(tmp_path)
    with sqlite3.connect(tmp_path / "orchestrator.db") as conn:
        [token] = conn.execute("SELECT intake_id FROM rejections").fetchone()
    rejected = tmp_path / "spool" / "rejected" / rejected_file
    rejected.rename(tmp_path / "spool" / "processing" / f"{token}--bad.json")  # as if the move never ran

    await make_intake(store, tmp_path).recover()

    assert len(rejection_rows(tmp_path)) == 1
    assert listing(tmp_path, "rejected") == ["bad.json", "bad.json.error.json"]
    assert listing(tmp_path, "processing") == []


async def test_a_crash_before_the_rejection_row_rejects_the_file_again_once(store: SqlStore, tmp_path: Path) -> None:
    """The report was written, the row not: the next start writes the same report and one row."""
    processing = tmp_path / "spool" / "processing"
    processing.mkdir(parents=True)
    (processing / "0123456789abcdef--bad.json").write_bytes(b"{")
    (tmp_path / "spool" / "rejected").mkdir()
    (tmp_path / "spool" / "rejected" / "bad.json.error.json").write_text("{}")  # the report of the crashed run

    await make_intake(store, tmp_path).recover()

    assert rejection_rows(tmp_path) == [("bad.json", "bad.json", "", None)]
    assert listing(tmp_path, "rejected") == ["bad.json", "bad.json.error.json"]
    assert error_report(tmp_path, "bad.json")["file"] == "bad.json"


async def test_error_reports_moved_back_into_the_inbox_are_left_alone_with_one_log_line(
    store: SqlStore, tmp_path: Path
) -> None:
    """``mv rejected/* inbox/`` brings the reports along: they are not job files, so not rejected again."""
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "bad.json", b"{")
    await intake.scan()
    for name in listing(tmp_path, "rejected"):
        os.rename(tmp_path / "spool" / "rejected" / name, tmp_path / "spool" / "inbox" / name)

    with capture_logs() as logs:
        await intake.scan()
        await intake.scan()

    ignored = [e for e in logs if e["event"] == "inbox_entry_ignored"]
    assert [e["file"] for e in ignored] == ["bad.json.error.json"]
    assert listing(tmp_path, "inbox") == ["bad.json.error.json"]
    assert [row[0] for row in rejection_rows(tmp_path)] == ["bad.json", "bad.json"]  # the bad file, twice


class _KilledMidParse(BaseException):
    """Stands for the process dying while it parses (an out-of-memory kill): nothing after it runs."""


def _killed_while_parsing(data: bytes, *, source: str, max_bytes: int) -> JobSpec:
    raise _KilledMidParse


async def test_a_file_that_kills_the_daemon_while_parsed_is_set_aside_after_three_starts(
    store: SqlStore, tmp_path: Path
) -> None:
    drop_job_file(tmp_path / "spool", "poison.json", good_job())
    with pytest.raises(_KilledMidParse):  # the first run claims it and dies parsing it
        await make_intake(store, tmp_path, parse=_killed_while_parsing).scan()
    [claimed] = listing(tmp_path, "processing")
    token = claimed.partition("--")[0]

    for starts in (2, 3):  # each start counts the attempt on disk before parsing, then dies again
        with pytest.raises(_KilledMidParse):
            await make_intake(store, tmp_path, parse=_killed_while_parsing).recover()
        assert listing(tmp_path, "processing") == [f"{token}.{starts}--poison.json"]
    await make_intake(store, tmp_path, parse=_killed_while_parsing).recover()  # the fourth start does not parse it

    assert listing(tmp_path, "processing") == []
    assert listing(tmp_path, "rejected") == ["poison.json", "poison.json.error.json"]
    assert "interrupted 3 times" in error_report(tmp_path, "poison.json")["problem"]
    assert await all_jobs(store) == []


async def test_an_interrupted_file_already_recorded_is_accepted_however_often(store: SqlStore, tmp_path: Path) -> None:
    intake = make_intake(store, tmp_path)
    drop_job_file(tmp_path / "spool", "job.json", good_job())
    await intake.scan()
    [job] = await all_jobs(store)
    accepted = tmp_path / "spool" / "accepted" / f"{job.id}--job.json"
    accepted.rename(tmp_path / "spool" / "processing" / f"{job.intake_id}.9--job.json")

    await make_intake(store, tmp_path).recover()

    assert listing(tmp_path, "accepted") == [f"{job.id}--job.json"] and listing(tmp_path, "rejected") == []
