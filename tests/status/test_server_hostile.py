"""The status port facing a hostile network peer: idle sockets, a missing token, silly queries, a broken database.

Real sockets on 127.0.0.1: the review's 1,030 idle connections exhausted the daemon's file descriptors
(new jobs stayed unclaimed, ``/healthz`` timed out) because nothing capped them and an idle one lived an
hour. Here the cap and the idle timeout are small so the test sees them act.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from structlog.testing import capture_logs

from orchestrator.config import DatabaseSettings, StatusSettings
from orchestrator.errors import ConfigError
from orchestrator.status.metrics import Metrics
from orchestrator.status.server import (
    MAX_LIMIT,
    Health,
    StatusContext,
    create_app,
    read_token,
    running_status_server,
)
from orchestrator.store import open_reader
from tests.status.conftest import build_database

TOKEN = "0123456789abcdef0123456789abcdef"


@asynccontextmanager
async def status_server(
    database: Path, *, token: str | None = None, max_connections: int = 64, idle_timeout: float = 5.0,
) -> AsyncIterator[str]:
    health = Health(lambda: 0.0, lambda: 0.0, lambda: 1.0, StatusSettings())
    async with open_reader(DatabaseSettings(path=database)) as reader:
        context = StatusContext(reader, health, Metrics(), database.with_name("x-wal"), lambda: None, token=token)
        app = create_app(context)  # the dashboard's routes included
        async with running_status_server(app, "127.0.0.1", 0, max_connections=max_connections,
                                         idle_timeout=idle_timeout) as url:
            yield url


@pytest.fixture
async def database(tmp_path: Path) -> Path:
    path = tmp_path / "status.db"
    await build_database(path)
    return path


async def read_all(reader: asyncio.StreamReader) -> bytes:
    return await reader.read()  # until the server closes the connection


async def test_idle_connections_are_capped_and_closed(database: Path) -> None:
    async with status_server(database, max_connections=4, idle_timeout=0.5) as url:
        host, port = url.removeprefix("http://").split(":")
        connections = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(10)))
        try:
            answers = await asyncio.wait_for(asyncio.gather(*(read_all(reader) for reader, _ in connections)), 15)
        finally:
            for _, writer in connections:
                writer.close()

        refused = [answer for answer in answers if answer.startswith(b"HTTP/1.1 503")]
        assert len(refused) == 6  # over the cap: answered and closed at once
        assert answers.count(b"") == 4  # within it: closed by the server once idle for the timeout
        async with aiohttp.ClientSession() as session, session.get(url + "/healthz") as response:
            assert response.status == 200  # the slots are free again


async def test_a_burst_of_connections_is_capped_too(database: Path) -> None:
    """asyncio makes the protocols of a burst before connecting any: the cap counts them from creation."""
    async with status_server(database, max_connections=8, idle_timeout=1.0) as url:
        host, port = url.removeprefix("http://").split(":")
        connections = await asyncio.gather(*(asyncio.open_connection(host, int(port)) for _ in range(80)))
        try:
            answers = await asyncio.wait_for(asyncio.gather(*(read_all(reader) for reader, _ in connections)), 30)
        finally:
            for _, writer in connections:
                writer.close()

        assert sum(answer.startswith(b"HTTP/1.1 503") for answer in answers) == 72
        async with aiohttp.ClientSession() as session, session.get(url + "/jobs") as response:
            assert response.status == 200  # served connections work through the counting protocol


async def test_a_half_sent_request_is_closed_after_the_idle_timeout(database: Path) -> None:
    async with status_server(database, idle_timeout=0.5) as url:
        host, port = url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(b"GET /jobs HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # headers never finished
        try:
            assert await asyncio.wait_for(reader.read(), 10) == b""
        finally:
            writer.close()


async def test_the_token_guards_every_route_but_healthz(database: Path) -> None:
    async with status_server(database, token=TOKEN) as url, aiohttp.ClientSession() as session:
        for path in ("/jobs", "/jobs/x", "/readyz", "/metrics", "/rejections", "/", "/dashboard.json",
                     "/static/dashboard.js"):
            async with session.get(url + path) as response:
                assert response.status == 401, path
                assert response.headers["WWW-Authenticate"].startswith("Bearer")
                assert "default-src 'none'" in response.headers["Content-Security-Policy"]
            async with session.get(url + path, headers={"Authorization": "Bearer wrong-token-wrong-token"}) as wrong:
                assert wrong.status == 401, path
        async with session.get(url + "/healthz") as response:
            assert response.status == 200
        authorized = {"Authorization": f"Bearer {TOKEN}"}
        for path in ("/jobs", "/readyz", "/metrics", "/", "/dashboard.json", "/static/dashboard.js"):
            async with session.get(url + path, headers=authorized) as response:
                assert response.status == 200, path


def test_the_token_is_read_from_its_file_and_a_bad_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "token").write_text(TOKEN + "\n")
    assert read_token(StatusSettings(token_file=str(tmp_path / "token"))) == TOKEN
    assert read_token(StatusSettings()) is None
    (tmp_path / "short").write_text("abc")
    for name, words in (("missing", "cannot be read"), ("short", "at least 16")):
        with pytest.raises(ConfigError) as info:
            read_token(StatusSettings(token_file=str(tmp_path / name)))
        assert info.value.key == "token_file" and words in str(info.value)


@pytest.mark.parametrize("limit", ["-1", "0", "abc", "1.5", "", "\u0661"])
async def test_a_bad_limit_is_a_400_naming_the_rule(database: Path, limit: str) -> None:
    async with status_server(database) as url, aiohttp.ClientSession() as session:
        for path in ("/jobs", "/rejections"):
            async with session.get(url + path, params={"limit": limit}) as response:
                assert response.status == 400
                assert "limit must be a whole number" in await response.text()


async def test_a_huge_limit_is_clamped(database: Path) -> None:
    async with status_server(database) as url, aiohttp.ClientSession() as session:
        for limit in ("99999999999999999999", str(MAX_LIMIT + 1), "9" * 5000):
            async with session.get(url + "/jobs", params={"limit": limit}) as response:
                assert response.status == 200
                assert 0 < len(json.loads(await response.text())) <= MAX_LIMIT


async def test_readyz_never_echoes_the_database_error(database: Path) -> None:
    async with status_server(database) as url, aiohttp.ClientSession() as session:
        await asyncio.to_thread(drop_jobs_table, database)  # the reader now fails: "no such table: jobs"
        with capture_logs() as logs:
            async with session.get(url + "/readyz") as response:
                status, body = response.status, json.loads(await response.text())

    assert status == 503
    assert body == {"status": "not ready", "reason": "the database cannot be read"}
    [logged] = [entry for entry in logs if entry["event"] == "readyz_database_unreadable"]
    assert "no such table" in logged["error"]  # the details go to the log only


def drop_jobs_table(database: Path) -> None:
    with sqlite3.connect(database) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DROP VIEW IF EXISTS job_status")
        db.execute("DROP TABLE jobs")


async def test_repeated_accept_failures_are_logged_once_with_a_count(database: Path) -> None:
    loop = asyncio.get_running_loop()
    async with status_server(database):
        with capture_logs() as logs:
            for _ in range(50):  # what asyncio reports once a second while out of file descriptors
                error = OSError(24, "Too many open files")
                loop.call_exception_handler({"message": "socket.accept() out of system resource", "exception": error})
    assert [entry["event"] for entry in logs] == ["status_accept_failed"]
    assert loop.get_exception_handler() is None  # the server put the loop's own handler back
