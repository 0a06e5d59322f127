"""The HTTP status endpoint: ``/healthz``, ``/readyz``, ``/metrics``, ``/jobs`` and ``/rejections``.

Liveness is progress, not a PID (DESIGN.md): ``/healthz`` is healthy while the scheduler loop has
ticked recently *and* a database write has succeeded recently, each against its own threshold, so a
loop stuck on a lock or a database that stopped accepting writes both turn it unhealthy. ``/readyz``
says the daemon has started and is not stopping. Everything here reads; the database is reached
through the read-only :class:`~orchestrator.store.StatusReader`, like the CLI.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from orchestrator.config import StatusSettings
from orchestrator.errors import OrchestratorError, StatusPortUnavailable
from orchestrator.jobs import JobState
from orchestrator.report import detail_json, job_json, rejection_json
from orchestrator.status.metrics import CONTENT_TYPE_LATEST, Metrics
from orchestrator.store import StatusReader

__all__ = ["Health", "HealthReport", "StatusContext", "create_app", "running_status_server"]


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
    ready: Callable[[], bool]


_CONTEXT = web.AppKey("status_context", StatusContext)


def create_app(context: StatusContext) -> web.Application:
    """The status application."""
    app = web.Application()
    app[_CONTEXT] = context
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/jobs", _jobs)
    app.router.add_get("/jobs/{ref}", _job)
    app.router.add_get("/rejections", _rejections)
    return app


async def _healthz(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT]
    report = context.health.check()
    return web.json_response(report.as_dict(context.health.settings), status=200 if report.healthy else 503)


async def _readyz(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT]
    if not context.ready():
        return web.json_response({"status": "not ready", "reason": "starting or stopping"}, status=503)
    try:
        counts = await context.reader.count_by_state()
    except Exception as exc:  # any failure to read is "not ready", with the reason, never a crash
        return web.json_response({"status": "not ready", "reason": f"database: {exc}"}, status=503)
    return web.json_response({"status": "ready", "jobs": sum(counts.values())})


async def _metrics(request: web.Request) -> web.Response:
    context = request.app[_CONTEXT]
    metrics = context.metrics
    metrics.set_jobs(await context.reader.count_by_state())
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
        limit = int(request.query.get("limit", "200"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"bad query: {exc}") from None
    jobs = await request.app[_CONTEXT].reader.list_jobs(states, labels, limit)
    return web.json_response([job_json(job) for job in jobs])


async def _job(request: web.Request) -> web.Response:
    """``/jobs/{id, id prefix or job key}``, as ``show --json``."""
    try:
        detail = await request.app[_CONTEXT].reader.detail(request.match_info["ref"])
    except OrchestratorError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    return web.json_response(detail_json(detail))


async def _rejections(request: web.Request) -> web.Response:
    """``/rejections?all=1&limit=50``: rejected job files, newest first, as ``rejected --json``."""
    try:
        limit = int(request.query.get("limit", "200"))
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"bad query: {exc}") from None
    include_resolved = request.query.get("all", "") not in ("", "0", "false")
    found = await request.app[_CONTEXT].reader.list_rejections(include_resolved, limit)
    return web.json_response([rejection_json(rejection) for rejection in found])


@asynccontextmanager
async def running_status_server(app: web.Application, host: str, port: int) -> AsyncIterator[str]:
    """Serve ``app`` for the block; yields its base URL (with the real port when ``port`` is 0)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:  # in use, no such address, no permission: a configuration mistake
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise StatusPortUnavailable(host, port, reason) from None
        bound_host, bound_port = runner.addresses[0][:2]
        yield f"http://[{bound_host}]:{bound_port}" if ":" in bound_host else f"http://{bound_host}:{bound_port}"
    finally:
        await runner.cleanup()
