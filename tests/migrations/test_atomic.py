"""A revision is applied whole or not at all, even when the process dies half-way through it.

SQLite runs DDL inside a transaction only when the driver is told not to manage transactions
itself; these tests prove the migrations environment does so: a failure or a SIGKILL between any
two statements of a revision leaves the database as it was before the revision, and the next start
migrates it. A half-made schema left by an older build (tables, no recorded version) is either
cleared (when it is certainly an interrupted first start: nothing but our empty objects) or
refused with one line saying what to do.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, event

from orchestrator.store import HalfMadeSchema, migrate
from orchestrator.store.migration import scripts_folder
from orchestrator.store.schema import VIEW_NAMES, metadata

REPO = Path(__file__).resolve().parents[2]


def objects(path: Path) -> list[str]:
    """Every table, view and index name SQLite records (its own internal ones left out)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
        return [name for (name,) in rows]


def version(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [v for (v,) in conn.execute("SELECT version_num FROM alembic_version")]


@pytest.fixture
def fail_on(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Statements starting with any of the listed prefixes raise, as a bug or a full disk would."""
    prefixes: list[str] = []

    def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if any(statement.lstrip().startswith(prefix) for prefix in prefixes):
            raise RuntimeError(f"injected failure before {statement.split('(')[0].strip()}")

    event.listen(Engine, "before_cursor_execute", before)
    yield prefixes
    event.remove(Engine, "before_cursor_execute", before)


def test_a_failure_in_the_middle_of_a_revision_leaves_no_table_behind(tmp_path: Path, fail_on: list[str]) -> None:
    path = tmp_path / "orchestrator.db"
    fail_on.append("CREATE TABLE events")  # jobs and meta come before it in revision 0001

    with pytest.raises(RuntimeError, match="injected failure"):
        migrate(path)
    assert objects(path) == []

    fail_on.clear()
    migrate(path)
    assert set(metadata.tables) <= set(objects(path))


def test_a_failure_in_a_later_revision_keeps_the_earlier_ones(tmp_path: Path, fail_on: list[str]) -> None:
    """Each revision is its own transaction: what a revision completed stays, with its version."""
    path = tmp_path / "orchestrator.db"
    migrate(path, revisions()[0])
    before = objects(path)
    fail_on.extend(["CREATE", "ALTER", "DROP", "INSERT", "UPDATE"])  # any change a later revision makes

    with contextlib.suppress(RuntimeError):  # raised unless 0001 is still the head
        migrate(path)

    assert objects(path) == before
    assert version(path) == [revisions()[0]]


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from sqlalchemy import Engine, event
    from orchestrator.store import migrate

    kill_after = int(sys.argv[2])
    count = 0

    @event.listens_for(Engine, "after_cursor_execute")
    def after(*_args):
        global count
        count += 1
        if count == kill_after:
            os.kill(os.getpid(), signal.SIGKILL)

    migrate(Path(sys.argv[1]))
    print(count)
    """
)


def revisions() -> list[str]:
    """Every revision, oldest first."""
    config = Config()
    config.set_main_option("script_location", str(scripts_folder()))
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(config).walk_revisions()))]


def schema_at(path: Path, revision: str) -> list[str]:
    """The objects of a database migrated from nothing to ``revision``: a state a kill may leave."""
    migrate(path, revision)
    return objects(path)


#: How many kill points the statement-by-statement test tries (each costs an interpreter start).
KILL_POINTS = 16


def run_killer(path: Path, kill_after: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", KILLER, str(path), str(kill_after)], capture_output=True, text=True,
                          timeout=60, cwd=REPO, check=False)


def test_a_sigkill_after_any_statement_of_the_first_migration_leaves_a_database_the_next_start_migrates(
    tmp_path: Path,
) -> None:
    """Killed after one of the statements of the first start, each time on a new file: the next start works.

    Every revision adds statements and each kill is a new interpreter, so the kill points are the
    first and last statements and an evenly spread sample between them (at most ``KILL_POINTS``).
    """
    counted = run_killer(tmp_path / "count.db", 0)
    assert counted.returncode == 0, counted.stderr
    statements = int(counted.stdout)
    expected = objects(tmp_path / "count.db")
    whole = [[], *(schema_at(tmp_path / f"at-{revision}.db", revision) for revision in revisions())]
    kill_points = sorted({1 + round(i * (statements - 1) / (KILL_POINTS - 1)) for i in range(KILL_POINTS)})
    for kill_after in kill_points:
        path = tmp_path / f"killed-{kill_after}.db"
        killed = run_killer(path, kill_after)
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        left = objects(path) if path.exists() else []
        assert left in whole, f"killed after statement {kill_after}: half a revision {left}"
        migrate(path)
        assert objects(path) == expected
        assert version(path) != []


def test_a_daemon_killed_at_random_moments_of_its_first_start_starts_next_time(tmp_path: Path) -> None:
    """The real command, SIGKILLed within its first second (each time on a new database), then started whole."""
    rng = random.Random(13)
    config = tmp_path / "orchestrator.toml"
    config.write_text('[status]\nenabled = false\n[scheduler]\npoll_min_interval = 0.1\n')
    for attempt in range(6):
        database = tmp_path / f"attempt-{attempt}.db"
        process = subprocess.Popen(
            [sys.executable, "-m", "orchestrator", "run", "--config", str(config), "--database", str(database),
             "--spool", str(tmp_path / f"spool-{attempt}"), "--log-format", "json"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 30
            while not database.exists() and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.25))  # the schema is created in the first quarter second after the file
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        migrate(database)
        assert set(metadata.tables) | set(VIEW_NAMES) <= set(objects(database))


def half_made(path: Path, *, rows: bool = False, foreign: bool = False) -> None:
    """What an older build left after a SIGKILL in its first start: some tables, an empty version table."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        if rows:
            conn.execute("INSERT INTO meta VALUES ('installation_id', 'abc')")
        if foreign:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")


def test_an_empty_half_made_schema_from_an_older_build_is_cleared_and_migrated(tmp_path: Path) -> None:
    """Nothing but our own empty tables and no version: certainly an interrupted first start, safe to redo."""
    path = tmp_path / "orchestrator.db"
    half_made(path)

    migrate(path)

    assert set(metadata.tables) | set(VIEW_NAMES) <= set(objects(path))
    assert version(path) != []


@pytest.mark.parametrize(("rows", "foreign", "reason"), [(True, False, "meta holds rows"),
                                                          (False, True, "invoices is not ours")])
def test_a_half_made_schema_holding_anything_else_is_refused_in_one_line(
    tmp_path: Path, rows: bool, foreign: bool, reason: str
) -> None:
    path = tmp_path / "orchestrator.db"
    half_made(path, rows=rows, foreign=foreign)
    before = objects(path)

    with pytest.raises(HalfMadeSchema) as raised:
        migrate(path)

    message = str(raised.value)
    assert "\n" not in message
    assert str(path) in message and reason in message and "move" in message
    assert objects(path) == before


def test_the_cli_reports_a_half_made_schema_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "orchestrator.db"
    half_made(path, rows=True)
    done = subprocess.run([sys.executable, "-m", "orchestrator", "db", "upgrade", "--database", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
                          env={k: v for k, v in os.environ.items() if k != "ORCHESTRATOR_CONFIG"})
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("orchestrator: "), done.stderr
