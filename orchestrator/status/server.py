"""The HTTP status endpoint: ``/healthz``, ``/readyz``, ``/metrics``, ``/jobs``, ``/rejections``, ``/daemons`` and
the dashboard (``/``).

Liveness is progress, not a PID (DESIGN.md): ``/healthz`` is healthy while the scheduler loop has
ticked recently *and* a database write has succeeded recently, each against its own threshold, so a
loop stuck on a lock or a database that stopped accepting writes both turn it unhealthy. ``/readyz``
says the daemon has started and is not stopping. Everything here reads; the database is reached
through the read-only :class:`~orchestrator.store.StatusReader`, like the CLI.

The port may face a network (a container publishes it), so the server defends itself: at most
``[status] max_connections`` connections at once (more are answered 503 and closed, so idle sockets
cannot take the file descriptors the intake needs), idle and half-sent requests closed after
:data:`IDLE_TIMEOUT_SECONDS`, repeated accept failures logged once a minute, and, when ``[status]
token_file`` is set, a bearer token required on every route but ``/healthz`` (a middleware, so routes
added later are covered too). Error answers never carry exception text.
"""

from __future__ import annotations

import asyncio
import hmac
import os
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import structlog
from aiohttp import web

from orchestrator.config import StatusSettings
from orchestrator.errors import ConfigError, OrchestratorError, StatusPortUnavailable
from orchestrator.jobs import JobState
from orchestrator.logs import register_secret
from orchestrator.report import daemon_json, detail_json, job_json, rejection_json
from orchestrator.status import dashboard
from orchestrator.status.metrics import CONTENT_TYPE_LATEST, Metrics
from orchestrator.store import StatusReader

__all__ = ["Health", "HealthReport", "StatusContext", "create_app", "read_token", "running_status_server"]

log = structlog.get_logger(__name__)

#: Seconds a connection may sit idle, before its first request or between two, or spend sending one
#: request's headers; then it is closed. Every client of these routes sends its request at once.
IDLE_TIMEOUT_SECONDS: Final = 5.0
#: ``[status] max_connections``'s default, for servers started without settings (tests, the demo).
DEFAULT_MAX_CONNECTIONS: Final = 64
#: Most rows ``/jobs`` and ``/rejections`` return; a larger ``limit`` is clamped to it.
MAX_LIMIT: Final = 1_000
#: A repeated accept failure (out of file descriptors) is logged at most once per this many seconds.
ACCEPT_ERROR_LOG_SECONDS: Final = 60.0
_ACCEPT_ERROR: Final = "socket.accept() out of system resource"
_UNAUTHORIZED_HEADERS: Final = {"WWW-Authenticate": 'Bearer realm="orchestrator"'}
#: Longest token file read: a token is a line, not a document.
_MAX_TOKEN_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class HealthReport:
    """The ages that liveness is judged by, and the verdict."""

    healthy: bool
    tick_age: float
    write_age: float
    problems: tuple[str, ...]

    def as_dict(self, settings: StatusSettings) -> dict[str, Any]:
        """The ``/healthz`` body."""
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "scheduler_tick_age_seconds": round(self.tick_age, 3),
            "last_write_age_seconds": round(self.write_age, 3),
            "max_tick_age_seconds": settings.max_tick_age,
            "max_write_age_seconds": settings.max_write_age,
            "problems": list(self.problems),
        }


@dataclass(frozen=True, slots=True)
class Health:
    """Liveness from two monotonic timestamps, on an injectable clock (tests move it by hand)."""

    last_tick: Callable[[], float]
    last_write: Callable[[], float]
    monotonic: Callable[[], float]
    settings: StatusSettings

    def check(self) -> HealthReport:
        """Judge the ages now."""
        now = self.monotonic()
        tick_age, write_age = now - self.last_tick(), now - self.last_write()
        limits = self.settings
        problems = []
        if tick_age > limits.max_tick_age:
            problems.append(f"scheduler loop has not ticked for {tick_age:.0f} s (limit {limits.max_tick_age:g} s)")
        if write_age > limits.max_write_age:
            problems.append(f"no database write for {write_age:.0f} s (limit {limits.max_write_age:g} s)")
        return HealthReport(not problems, tick_age, write_age, tuple(problems))


@dataclass(frozen=True, slots=True)
class StatusContext:
    """What the handlers read: the database, liveness, metrics, and whether the daemon is serving."""

    reader: StatusReader
    health: Health
    metrics: Metrics
    wal_path: Path
    #: Why the daemon does not take work now (starting, stopping, the API unreachable); None: ready.
    unready_reason: Callable[[], str | None]
    #: Required as ``Authorization: Bearer …`` on every route but ``/healthz``; None: no token.
    token: str | None = None


_CONTEXT = web.AppKey("status_context", StatusContext)
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def read_token(settings: StatusSettings) -> str | None:
    """The bearer token in ``[status] token_file``, registered as a secret; None when no file is set.

    An unreadable or empty file is a :class:`ConfigError` naming the key: a daemon that meant to
    require a token must not start without one.
    """
    if not settings.token_file:
        return None
    try:
        with open(settings.token_file, "rb") as handle:
            token = handle.read(_MAX_TOKEN_BYTES).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
        raise ConfigError("status", "token_file", f"{settings.token_file!r} cannot be read: {reason}") from None
    if len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token:
        raise ConfigError(
            "status",
            "token_file",
            f"{settings.token_file!r} must hold one token of at least 16 printable ASCII characters without "
            "spaces (e.g. the output of: openssl rand -hex 32)",
        )
    register_secret(token)
    return token


@web.middleware
async def _require_token(request: web.Request, handler: _Handler) -> web.StreamResponse:
    """Every route but ``/healthz`` answers 401 without the configured bearer token."""
    token = request.app[_CONTEXT].token
    if token is None or request.path == "/healthz":
        return await handler(request)
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise web.HTTPUnauthorized(text="a bearer token is required: Authorization: Bearer TOKEN\n",
                                   headers=_UNAUTHORIZED_HEADERS)
    return await handler(request)


def create_app(context: StatusContext) -> web.Application:
    """The status application."""
    app = web.Application(middlewares=[_require_token])
    app[_CONTEXT] = context
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/jobs", _jobs)
    app.router.add_get("/jobs/{ref}", _job)
    app.router.add_get("/rejections", _rejections)
    dashboard.install(app, context.reader)
    app.router.add_get("/daemons", _daemons)
    return app


async def _healthz(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT]
    report = context.health.check()
    return web.json_response(report.as_dict(context.health.settings), status=200 if report.healthy else 503)


async def _readyz(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT]
    reason = context.unready_reason()
    if reason is not None:
        return web.json_response({"status": "not ready", "reason": reason}, status=503)
    try:
        counts = await context.reader.count_by_state()
    except Exception as exc:  # any failure to read is "not ready", never a crash; the details go to the log
        log.warning("readyz_database_unreadable", error=f"{type(exc).__name__}: {exc}")
        return web.json_response({"status": "not ready", "reason": "the database cannot be read"}, status=503)
    return web.json_response({"status": "ready", "jobs": sum(counts.values())})


async def _metrics(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT]
    metrics = context.metrics
    metrics.set_jobs(await context.reader.count_by_state())
    metrics.set_notifications(await context.reader.count_notifications())
    metrics.set_daemons(await context.reader.daemons(), datetime.now(UTC))
    try:
        metrics.wal_bytes.set(context.wal_path.stat().st_size)
    except FileNotFoundError:
        metrics.wal_bytes.set(0)
    report = context.health.check()
    metrics.tick_age.set(report.tick_age)
    metrics.write_age.set(report.write_age)
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _jobs(request: web.Request) -> web.Response:
    """``/jobs?state=running&state=queued&label=team=nlp&limit=50``, newest first, as ``status --json``."""
    try:
        states = [JobState(s) for s in request.query.getall("state", [])]
        labels = dict(pair.split("=", 1) for pair in request.query.getall("label", []))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"bad query: {exc}") from None
    jobs = await request.app[_CONTEXT].reader.list_jobs(states, labels, _limit(request))
    return web.json_response([job_json(job) for job in jobs])


async def _job(request: web.Request) -> web.Response:
    """``/jobs/{id, id prefix or job key}``, as ``show --json``; a browser (``Accept: text/html``) gets the page."""
    if dashboard.wants_html(request):
        return await dashboard.job_html(request)
    try:
        detail = await request.app[_CONTEXT].reader.detail(request.match_info["ref"])
    except OrchestratorError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.json_response(detail_json(detail), dumps=dashboard.json_text, headers={"Vary": "Accept"})


async def _rejections(request: web.Request) -> web.Response:
    """``/rejections?all=1&limit=50``: rejected job files, newest first, as ``rejected --json``."""
    include_resolved = request.query.get("all", "") not in ("", "0", "false")
    found = await request.app[_CONTEXT].reader.list_rejections(include_resolved, _limit(request))
    return web.json_response([rejection_json(rejection) for rejection in found])


async def _daemons(request: web.Request) -> web.Response:
    """``/daemons``: the daemons sharing the database, latest heartbeat first, as ``daemons --json``."""
    found = await request.app[_CONTEXT].reader.daemons()
    now = datetime.now(UTC)
    return web.json_response([daemon_json(daemon, now) for daemon in found])


def _limit(request: web.Request) -> int:
    """``?limit=N``: 200 by default, clamped to :data:`MAX_LIMIT`; anything but a positive integer is a 400."""
    text = request.query.get("limit", "200")
    if not (text.isascii() and text.isdigit()) or not text.strip("0"):
        raise web.HTTPBadRequest(text=f"bad query: limit must be a whole number from 1 (at most {MAX_LIMIT:,} sent)\n")
    return MAX_LIMIT if len(text) > len(str(MAX_LIMIT)) else min(int(text), MAX_LIMIT)


class _Refused(asyncio.Protocol):
    """A connection over the cap: answered 503 and closed at once, so it holds no descriptor."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        transport.close()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, counted from its creation until the connection is lost.

    Counting at creation matters: asyncio creates the protocols of a burst of accepted connections
    before any of them is connected, so aiohttp's own list of connections would let a burst past the cap.
    """

    def __init__(self, handler: asyncio.Protocol, live: weakref.WeakSet[_Counted]) -> None:
        self._handler = handler
        self._live = live
        live.add(self)  # weakly: a protocol whose connection never came to be is forgotten with it

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._handler.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._live.discard(self)
        self._handler.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        return self._handler.eof_received()

    def pause_writing(self) -> None:
        self._handler.pause_writing()

    def resume_writing(self) -> None:
        self._handler.resume_writing()


def _capped(server: web.Server, max_connections: int) -> Callable[[], asyncio.Protocol]:
    """A protocol factory that serves at most ``max_connections`` connections at once."""
    live: weakref.WeakSet[_Counted] = weakref.WeakSet()

    def protocol() -> asyncio.Protocol:
        if len(live) >= max_connections:
            return _Refused()
        return _Counted(server(), live)

    return protocol


class _AcceptErrorThrottle:
    """The loop's exception handler, logging a repeated accept failure once per interval with a count.

    Out of file descriptors, asyncio retries ``accept()`` every second and reports each failure; left
    alone that fills the journal while the daemon is at its weakest.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._previous = loop.get_exception_handler()
        self._next_log = 0.0
        self._suppressed = 0

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if context.get("message") != _ACCEPT_ERROR:
            if self._previous is not None:
                self._previous(loop, context)
            else:
                loop.default_exception_handler(context)
            return
        now = time.monotonic()
        if now < self._next_log:
            self._suppressed += 1
            return
        error = context.get("exception")
        log.error("status_accept_failed", error=f"{type(error).__name__}: {error}", repeats_not_logged=self._suppressed,
                  next_report_in=ACCEPT_ERROR_LOG_SECONDS)
        self._next_log, self._suppressed = now + ACCEPT_ERROR_LOG_SECONDS, 0

    def restore(self) -> None:
        self._loop.set_exception_handler(self._previous)


@asynccontextmanager
async def running_status_server(
    app: web.Application,
    host: str,
    port: int,
    *,
    max_connections: int = DEFAULT_MAX_CONNECTIONS,
    idle_timeout: float = IDLE_TIMEOUT_SECONDS,
) -> AsyncIterator[str]:
    """Serve ``app`` for the block; yields its base URL (with the real port when ``port`` is 0).

    At most ``max_connections`` at once; a connection idle (or sending its headers) for ``idle_timeout``
    seconds is closed.
    """
    loop = asyncio.get_running_loop()
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle_timeout)
    await runner.setup()
    server = None
    throttle = _AcceptErrorThrottle(loop)
    loop.set_exception_handler(throttle)
    try:
        assert runner.server is not None
        try:
            server = await loop.create_server(_capped(runner.server, max_connections), host, port, reuse_address=True)
        except OSError as exc:  # in use, no such address, no permission: a configuration mistake
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StatusPortUnavailable(host, port, reason) from None
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        yield f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"
    finally:
        if server is not None:
            server.close()
        await runner.cleanup()
        throttle.restore()
