"""The ADC path on Vertex, end to end and offline: a service-account key file found through
``GOOGLE_APPLICATION_CREDENTIALS`` whose ``token_uri`` is the emulator's ``POST /token``; google-auth
signs a JWT and gets a token; the emulator, enforcing tokens, accepts only tokens it issued; an expired
one is refreshed (off the event loop) and the call repeated. No token reaches the logs or the database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from orchestrator.config import DatabaseSettings
from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.jobs import JobState
from orchestrator.store import open_store
from orchestrator.store.sql import SqlStore
from tests.acceptance.chaos_vertex import write_key_file
from tests.conftest import TEST_TIME_SCALE
from tests.reliability.conftest import Emulator, running_scheduler, until_terminal
from tests.reliability.vertex_rig import PROJECT, add_vertex_job, vertex_for

#: What the emulator's token route issues (``ya29.`` like Google's access tokens).
TOKEN_PREFIX = b"ya29."


@pytest.fixture
async def enforcing() -> AsyncIterator[Emulator]:
    """An emulator that accepts only the tokens it issues (and one for another project)."""
    import aiohttp

    settings = EmulatorSettings(time_scale=TEST_TIME_SCALE, tokens=("someone-else=other-project",))
    async with running_emulator(settings, host="127.0.0.1", port=0) as url, aiohttp.ClientSession() as http:
        yield Emulator(url, http)


async def test_a_service_account_key_runs_a_vertex_job_and_no_token_is_recorded(
    enforcing: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = write_key_file(tmp_path / "key.json", f"{enforcing.url}/token", PROJECT)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    await enforcing.faults({"kind": "token_expired", "routes": ["vertex_get"], "calls": [2]})
    database = tmp_path / "orchestrator.db"
    events: list[dict[str, Any]]
    with structlog.testing.capture_logs() as events:
        async with open_store(DatabaseSettings(path=database, busy_timeout=5.0)) as store:
            await add_vertex_job(store)
            async with vertex_for(enforcing.url, auth="adc") as vertex, running_scheduler(store, vertex):
                [done] = await until_terminal(store)
            await _checkpoint(store)

    assert done.state is JobState.SUCCEEDED
    assert (await enforcing.requests("oauth_token")).get("200", 0) >= 2  # the first token, and its refresh
    assert (await enforcing.requests("vertex_get")).get("401") == 1
    assert any(e["event"] == "api_credentials_refreshed" for e in events)
    recorded = json.dumps(events, default=str).encode()
    files = await asyncio.to_thread(lambda: [p.read_bytes() for p in tmp_path.glob("orchestrator.db*")])
    assert files and all(TOKEN_PREFIX not in part for part in (recorded, *files))
    assert b"PRIVATE KEY" not in recorded


async def test_a_key_for_another_project_is_refused_and_the_job_fails_with_googles_words(
    enforcing: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, store: SqlStore
) -> None:
    """403 IAM_PERMISSION_DENIED on the data's project is permanent: the job fails with Google's words."""
    key_file = write_key_file(tmp_path / "key.json", f"{enforcing.url}/token", PROJECT)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    await add_vertex_job(store)
    async with vertex_for(enforcing.url, auth="adc", project="other-project") as vertex, \
            running_scheduler(store, vertex):
        [done] = await until_terminal(store)

    assert (done.state, done.error_code, done.error_status) == (JobState.FAILED, 403, "PERMISSION_DENIED")
    assert done.error_message and "aiplatform.tuningJobs.create" in done.error_message


async def _checkpoint(store: SqlStore) -> None:
    """Copy the WAL into the database file, so the scan below reads every byte written."""
    await store._db.run_outside_transaction(lambda raw: raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
