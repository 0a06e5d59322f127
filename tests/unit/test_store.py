"""The store's rules: compare-and-set writes, idempotent snapshots, cancel flags, claims, and SQLite discipline."""

from __future__ import annotations

import math
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy.dialects import sqlite

from orchestrator.config import DatabaseSettings
from orchestrator.errors import StaleWrite
from orchestrator.jobs import Job, JobState, Snapshot
from orchestrator.logs import register_secret
from orchestrator.store import JobChanges, JobStore, open_store
from orchestrator.store.daemons import DaemonInfo
from orchestrator.store.schema import UtcDateTime, db_time
from orchestrator.store.sql import SqlStore
from tests.conftest import sql_rows
from tests.reliability.conftest import add_job, all_jobs

NOW = datetime.now(UTC) + timedelta(days=1)  # after every job the tests add (the suite takes minutes), so all are due
LEASE = timedelta(seconds=60)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "orchestrator.db"


@pytest.fixture
async def sqlite_store(path: Path) -> AsyncIterator[SqlStore]:
    """The SQLite store, for the tests of SQLite's own discipline (WAL, checkpoints, the driver's hot path)."""
    async with open_store(DatabaseSettings(path=path, busy_timeout=5.0)) as writer:
        assert isinstance(writer, SqlStore)
        yield writer


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, path: Path) -> AsyncIterator[JobStore]:
    """Each store, on a fresh database: the rules of the front door hold on both (a real PostgreSQL server)."""
    async with open_store(database_settings(request, path)) as writer:
        yield writer


@pytest.fixture
def backend(request: pytest.FixtureRequest, path: Path) -> DatabaseSettings:
    """The settings of a fresh database of the parametrized kind."""
    return database_settings(request, path)


def database_settings(request: pytest.FixtureRequest, path: Path) -> DatabaseSettings:
    if request.param == "postgresql":
        return DatabaseSettings(url=request.getfixturevalue("postgres_url"))
    return DatabaseSettings(path=path, busy_timeout=5.0)


async def claimed(store: JobStore, owner: str = "me", index: int = 0) -> Job:
    await add_job(store, index)
    [job] = [j for j in await store.claim_due(owner, NOW + LEASE, LEASE, 100, 100) if j.job_key == f"key-{index}"]
    return job


def pragma(path: Path, name: str) -> object:
    connection = sqlite3.connect(path)
    try:
        return connection.execute(f"PRAGMA {name}").fetchone()[0]
    finally:
        connection.close()


async def test_the_writer_runs_wal_with_full_sync_and_a_busy_timeout(sqlite_store: SqlStore, path: Path) -> None:
    await claimed(sqlite_store)  # a claim commits without fsync: FULL is back for every other write
    pragmas = ("journal_mode", "synchronous", "busy_timeout")
    values = [(await sql_rows(sqlite_store, f"PRAGMA {name}"))[0][0] for name in pragmas]
    assert values == ["wal", 2, 5000]  # synchronous=2 is FULL


async def test_a_stale_write_changes_nothing(store: JobStore) -> None:
    job = await claimed(store)
    with pytest.raises(StaleWrite):
        await store.commit_step(job, "someone-else", NOW, JobChanges(attempts=7), to=JobState.SUBMITTING)
    moved = await store.commit_step(job, "me", NOW, to=JobState.SUBMITTING, release=False)
    with pytest.raises(StaleWrite):  # the copy read before the move is stale now
        await store.commit_step(job, "me", NOW, JobChanges(attempts=3))
    [row] = await all_jobs(store)
    assert row == moved and row.attempts == 0 and row.state is JobState.SUBMITTING


async def test_snapshots_are_recorded_once_per_step_however_often_reported(store: JobStore) -> None:
    job = await claimed(store)
    job = await store.commit_step(job, "me", NOW, to=JobState.SUBMITTING, release=False)
    job = await store.commit_step(job, "me", NOW, to=JobState.RUNNING, release=False)
    first = [Snapshot(1, 0, 3.0), Snapshot(2, 0, 2.0)]
    job = await store.commit_step(job, "me", NOW, snapshots_seen=first, release=False)
    job = await store.commit_step(job, "me", NOW, snapshots_seen=[*first, Snapshot(3, 1, math.nan)], release=False)
    rows = await sql_rows(store, "SELECT step, mean_loss FROM snapshots ORDER BY step")
    assert [r[0] for r in rows] == [1, 2, 3] and rows[0][1] == 3.0 and math.isnan(float(rows[2][1]))
    assert len(rows) == 3  # reported twice, stored once
    # Snapshot times are bound as text by hand: the same text SQLAlchemy writes for the job's times.
    [(recorded_at, updated_at)] = await sql_rows(
        store, "SELECT s.recorded_at, j.updated_at FROM snapshots s JOIN jobs j ON j.id = s.job_id WHERE s.step = 3"
    )
    assert recorded_at == updated_at and job.updated_at == NOW


async def test_cancel_requests_follow_the_state(store: JobStore) -> None:
    queued = await claimed(store, index=0)
    assert (await store.request_cancel(queued.id, NOW)).state is JobState.CANCELLED
    with pytest.raises(StaleWrite):  # the scheduler that had claimed it loses its submit
        await store.commit_step(queued, "me", NOW, to=JobState.SUBMITTING)

    running = await claimed(store, index=1)
    running = await store.commit_step(running, "me", NOW, to=JobState.SUBMITTING, release=False)
    flagged = await store.request_cancel(running.id, NOW)
    assert flagged.state is JobState.SUBMITTING and flagged.cancel_requested
    # The step in flight still commits (the flag is not a state) and its next check becomes "now".
    later = NOW + timedelta(hours=1)
    after = await store.commit_step(running, "me", NOW, JobChanges(next_check_at=later), to=JobState.RUNNING,
                                    soon_if_cancel_requested=True)
    assert after.state is JobState.RUNNING and after.cancel_requested and after.next_check_at == NOW


async def test_a_terminal_job_ignores_cancel_and_keeps_its_state(store: JobStore) -> None:
    job = await claimed(store)
    job = await store.commit_step(job, "me", NOW, to=JobState.SUBMITTING, release=False)
    job = await store.commit_step(job, "me", NOW, JobChanges(error_message="refused"), to=JobState.FAILED)
    assert (await store.request_cancel(job.id, NOW)) == job
    assert not job.cancel_requested and job.finished_at == NOW


async def test_claims_respect_the_queued_cap_priority_and_other_leases(store: JobStore) -> None:
    for index in range(3):
        await add_job(store, index)
    first = await store.claim_due("a", NOW + LEASE, LEASE, 10, 2)
    assert len(first) == 2
    assert await store.claim_due("b", NOW + LEASE, LEASE, 10, 10) != []  # the third, unleased
    assert await store.claim_due("b", NOW + LEASE, LEASE, 10, 10) == []  # all leased now
    expired = await store.claim_due("b", NOW + 3 * LEASE, LEASE, 10, 10)
    assert len(expired) == 3 and {j.lease_owner for j in expired} == {"b"}


async def test_secrets_are_scrubbed_from_every_text_written(store: JobStore) -> None:
    register_secret("AIzaSy-test-secret-value-123")
    job = await claimed(store)
    job = await store.commit_step(job, "me", NOW, JobChanges(last_error="key AIzaSy-test-secret-value-123 refused"),
                                  to=JobState.SUBMITTING, release=False)
    job = await store.commit_step(job, "me", NOW, JobChanges(error_message="AIzaSy-test-secret-value-123"),
                                  to=JobState.FAILED, detail={"message": "AIzaSy-test-secret-value-123"})
    assert job.last_error == "key [redacted] refused" and job.error_message == "[redacted]"
    details = [row[0] for row in await sql_rows(store, "SELECT detail FROM events")]
    assert not any("AIzaSy-test-secret-value-123" in d for d in details)


async def test_a_reader_holding_a_transaction_never_stalls_the_writer(sqlite_store: SqlStore, path: Path) -> None:
    """A person's sqlite3 session left in a read transaction: writes and the checkpoint go on at once."""
    await add_job(sqlite_store, 0)
    reader = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
    reader.execute("BEGIN")
    reader.execute("SELECT COUNT(*) FROM jobs").fetchone()
    try:
        started = time.monotonic()
        for index in range(1, 40):
            await add_job(sqlite_store, index)
        wal = path.with_name(path.name + "-wal")
        assert await sqlite_store.checkpoint_wal(0, wal) is False  # the reader pins the WAL: skipped, not waited for
        await add_job(sqlite_store, 99)
        assert time.monotonic() - started < 2.0
    finally:
        reader.close()
    assert await sqlite_store.checkpoint_wal(0, wal) is True
    assert wal.stat().st_size == 0


async def test_the_checkpoint_leaves_a_small_wal_alone(sqlite_store: SqlStore, path: Path) -> None:
    await add_job(sqlite_store)
    assert await sqlite_store.checkpoint_wal(1 << 30, path.with_name(path.name + "-wal")) is False


async def test_the_next_due_check_leaves_out_jobs_whose_step_is_in_flight(store: JobStore) -> None:
    """A leased job's row still shows the check that made it due; the scheduler's sleep must not count it."""
    in_flight = await claimed(store, index=0)
    waiting = await add_job(store, 1)
    assert in_flight.next_check_at is not None and waiting.next_check_at is not None
    assert in_flight.next_check_at < waiting.next_check_at
    assert await store.next_due_at() == waiting.next_check_at
    sooner = waiting.next_check_at - timedelta(seconds=1)
    # the step ends: its row counts again
    await store.commit_step(in_flight, "me", NOW, JobChanges(next_check_at=sooner))
    assert await store.next_due_at() == sooner


async def test_the_hot_path_reads_and_writes_rows_exactly_as_the_core_types_do(sqlite_store: SqlStore) -> None:
    """Claims and steps go through plain SQL (store/hotpath.py): the jobs they return, and the rows
    they leave, must be those SQLAlchemy's types would (timestamps, NaN loss, booleans, states)."""
    job = await claimed(sqlite_store)
    job = await sqlite_store.commit_step(job, "me", NOW, to=JobState.SUBMITTING, release=False)
    changes = JobChanges(started_at=NOW, last_loss=math.nan, completed_steps=3, next_check_at=NOW + LEASE)
    job = await sqlite_store.commit_step(job, "me", NOW, changes, to=JobState.RUNNING, release=False,
                                  soon_if_cancel_requested=True)
    [stored] = await all_jobs(sqlite_store)
    assert job.last_loss is not None and math.isnan(job.last_loss)
    assert stored.last_loss is not None and math.isnan(stored.last_loss)
    assert replace(job, last_loss=0.0) == replace(stored, last_loss=0.0)
    assert job.started_at == NOW and job.next_check_at == NOW + LEASE and job.lease_owner == "me"
    assert job.state is JobState.RUNNING and job.cancel_requested is False


async def test_a_failed_driver_transaction_is_rolled_back_and_the_writer_goes_on(sqlite_store: SqlStore) -> None:
    def fail_half_way(driver: sqlite3.Connection) -> None:
        driver.execute("INSERT INTO meta (key, value) VALUES ('half', 'way')")
        raise RuntimeError("a bug in the middle of a transaction")

    with pytest.raises(RuntimeError):
        await sqlite_store._db.run_on_driver(fail_half_way)
    assert await sql_rows(sqlite_store, "SELECT value FROM meta WHERE key = 'half'") == []
    assert await sqlite_store.get_or_set_meta("after", "ok") == "ok"


@pytest.mark.parametrize("value", [
    datetime(2026, 11, 21, 9, 30, tzinfo=UTC),  # whole seconds: the microseconds are still written
    datetime(2026, 11, 21, 10, 30, 0, 5, tzinfo=timezone(timedelta(hours=1))),
])
def test_db_time_writes_the_text_the_core_type_writes(value: datetime) -> None:
    dialect = sqlite.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None and db_time(value) == process(value)


def test_job_changes_write_only_the_columns_they_set() -> None:
    """``KEEP`` leaves a column alone; ``None`` is a value (it clears the column)."""
    assert JobChanges().columns() == {}
    assert JobChanges(last_error=None, attempts=0).columns() == {"attempts": 0, "last_error": None}


class RecordingObserver:
    """A store observer that remembers what it heard."""

    def __init__(self) -> None:
        self.commits = 0
        self.claims: list[tuple[datetime, list[str]]] = []
        self.snapshots = 0

    def committed(self) -> None:
        self.commits += 1

    def claimed(self, now: datetime, jobs: Sequence[Job]) -> None:
        self.claims.append((now, [job.id for job in jobs]))

    def snapshots_recorded(self, count: int) -> None:
        self.snapshots += count


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"], indirect=["backend"])
async def test_the_observer_hears_every_commit_claim_and_snapshot(backend: DatabaseSettings) -> None:
    observer = RecordingObserver()
    async with open_store(backend, observer) as store:
        added = await add_job(store, 0)
        assert observer.commits == 1
        [job] = await store.claim_due("me", NOW, LEASE, 10, 10)
        assert observer.commits == 2 and observer.claims == [(NOW, [added.id])]
        job = await store.commit_step(job, "me", NOW, to=JobState.SUBMITTING, release=False)
        job = await store.commit_step(job, "me", NOW, to=JobState.RUNNING, release=False)
        await store.commit_step(job, "me", NOW, snapshots_seen=[Snapshot(1, 0, 2.0), Snapshot(2, 0, 1.5)])
    assert observer.commits == 5 and observer.snapshots == 2


def test_every_remote_fact_is_a_column_a_step_may_set() -> None:
    """The scheduler writes a service's ``RemoteFacts`` as ``JobChanges``: each fact must have its field."""
    from dataclasses import fields

    from orchestrator.tuning import RemoteFacts

    assert {f.name for f in fields(RemoteFacts)} <= {f.name for f in fields(JobChanges)}


async def test_a_daemon_row_keeps_its_start_moves_its_heartbeat_and_records_a_clean_stop(store: JobStore) -> None:
    daemon = DaemonInfo("host-a:12:cafe", "host-a", 12, "/srv/spool")
    await store.heartbeat(daemon, NOW)
    await store.heartbeat(daemon, NOW + timedelta(seconds=5))
    [(started, beat, stopped)] = await sql_rows(store, "SELECT started_at, heartbeat_at, stopped_at FROM daemons")
    assert stopped is None and str(beat) > str(started)
    await store.daemon_stopped(daemon.id, NOW + timedelta(seconds=7))
    [(stopped,)] = await sql_rows(store, "SELECT stopped_at FROM daemons")
    assert stopped is not None


async def test_the_shared_api_pause_only_ever_grows(store: JobStore) -> None:
    """One daemon's 429 pause is everyone's: an earlier end never shortens a later one."""
    api = "https://generativelanguage.googleapis.com"
    assert await store.share_pause(api, None, "a") is None
    assert await store.share_pause(api, NOW + timedelta(seconds=30), "a") == NOW + timedelta(seconds=30)
    assert await store.share_pause(api, NOW + timedelta(seconds=10), "b") == NOW + timedelta(seconds=30)
    assert await store.share_pause(api, NOW + timedelta(seconds=60), "b") == NOW + timedelta(seconds=60)
    assert await store.share_pause(api, None, "c") == NOW + timedelta(seconds=60)
    assert await store.share_pause("http://127.0.0.1:1", None, "c") is None  # another API is not paused


async def test_a_failure_marked_for_an_automatic_retry_is_retried_once(store: JobStore) -> None:
    """The mark is JSON in events.detail: read with each database's JSON functions."""
    job = await claimed(store)
    job = await store.commit_step(job, "me", NOW, to=JobState.SUBMITTING, release=False)
    await store.commit_step(job, "me", NOW, JobChanges(error_message="internal"), to=JobState.FAILED,
                            detail={"auto_retry": True})
    [retry] = await store.retry_marked_failures(NOW, "install")
    assert retry.retry_of == job.id and retry.state is JobState.QUEUED
    assert await store.retry_marked_failures(NOW, "install") == []
