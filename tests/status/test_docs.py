"""docs/status-db.md stays true: every column is documented and every example query runs."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from orchestrator.config import DatabaseSettings
from orchestrator.jobs import JobState
from orchestrator.status.metrics import Metrics
from orchestrator.store.schema import VIEW_NAMES, metadata
from tests.status.conftest import SampleJobs, build_database

DOC = Path(__file__).parents[2] / "docs" / "status-db.md"
GUIDE = Path(__file__).parents[2] / "docs" / "operations.md"


def section(title: str) -> str:
    """The text of one ``###`` section."""
    text = DOC.read_text()
    start = text.index(f"### {title}")
    end = text.find("\n### ", start + 1)
    return text[start:end if end != -1 else None]


def test_every_table_column_is_documented() -> None:
    """Each column of each table appears in its table's section (a new column needs a line here)."""
    for table in metadata.tables.values():
        body = section(f"`{table.name}`")
        documented = set(re.findall(r"`([a-z_0-9]+)`", body))
        assert {c.name for c in table.columns} - documented == set(), table.name


def test_every_view_column_and_state_is_documented(sample_db: tuple[Path, SampleJobs]) -> None:
    """The views' columns (as SQLite reports them) and every job state are described."""
    path, _ids = sample_db
    with sqlite3.connect(path) as conn:
        for view in VIEW_NAMES:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({view})")}
            assert columns - set(re.findall(r"`([a-z_0-9]+)`", section(f"`{view}`"))) == set(), view
    states = set(re.findall(r"^\| `([a-z]+)` \|", DOC.read_text(), flags=re.MULTILINE))
    assert {s.value for s in JobState} <= states


def test_every_example_query_runs(sample_db: tuple[Path, SampleJobs]) -> None:
    """The ``sql`` blocks run, read-only, on a database the daemon's store wrote, and find rows."""
    path, _ids = sample_db
    queries = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(queries) >= 8
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        results = {query: conn.execute(query).fetchall() for query in queries}
    # Each finds rows in the sample, except "failures in the last day", which depends on today's date.
    assert [q for q, rows in results.items() if not rows and "'-1 day'" not in q] == []


async def test_every_postgresql_query_runs_on_postgresql(postgres_url: str) -> None:
    """The ``postgresql`` blocks run, read-only, on a real server holding the sample jobs, and find rows."""
    await build_database(DatabaseSettings(url=postgres_url))
    queries = re.findall(r"```postgresql\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(queries) >= 6
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            results = {query: conn.exec_driver_sql(query).all() for query in queries}
    finally:
        engine.dispose()
    # As on SQLite, "failures in the last day" depends on today's date; no daemon ran on the sample,
    # so none died and none holds a job.
    quiet = ("'1 day'", "'15 seconds'", "lease_expires_at >", "FROM daemons d")
    assert [q for q, rows in results.items() if not rows and not any(word in q for word in quiet)] == []


def test_the_metrics_table_is_exactly_what_metrics_exports() -> None:
    """docs/operations.md lists each exported metric, by the name a PromQL query uses, and no other."""
    suffix = {"counter": "_total", "info": "_info"}
    exported = {family.name + suffix.get(family.type, "") for family in Metrics().registry.collect()}
    table = GUIDE.read_text().split("### Metrics", 1)[1].split("```", 1)[0]
    assert set(re.findall(r"^\| `(orchestrator_[a-z_]+)` \|", table, flags=re.MULTILINE)) == exported
