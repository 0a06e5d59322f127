"""The dashboard's routes: ``GET /``, ``/dashboard.json``, job pages for browsers, and the static files.

Read-only, like everything on the status server: each handler reads through the
:class:`~orchestrator.store.StatusReader` the CLI uses. Live updates are short polling: the page
asks ``/dashboard.json`` every few seconds. Server-sent events would push, but the daemon has no
change feed to push from (the database is written by another connection, so the server would poll
SQLite anyway), a held-open stream per tab counts against the status port's connection cap, and
some proxies buffer event streams; a poll is one short read, stateless, and passes any proxy.

Every response carries a strict Content-Security-Policy: scripts and styles only from this server's
``/static/`` files (no inline script or style at all), no frames, no plugins, requests only to this
origin. With every text escaped (:mod:`orchestrator.status.pages`), a job named ``<script>`` is text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from aiohttp import web

from orchestrator.errors import OrchestratorError
from orchestrator.jobs import Job, JobState
from orchestrator.report import rejection_json
from orchestrator.status.pages import dashboard_page, job_page, job_row
from orchestrator.store import StatusReader
from orchestrator.store.rejections import Rejection

#: The files under ``/static/``, with their content types: nothing else is served from there.
STATIC_FILES = {
    "style.css": "text/css",
    "dashboard.js": "text/javascript",
    "job.js": "text/javascript",
    "chart.js": "text/javascript",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
#: Jobs the dashboard lists at most (newest first); ``/jobs`` pages through more.
DASHBOARD_LIMIT = 500
#: Unresolved rejected files the dashboard lists at most (newest first); ``/rejections`` has them all.
REJECTIONS_LIMIT = 50

READER = web.AppKey("dashboard_reader", StatusReader)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, reader: StatusReader) -> None:
    """Add the dashboard's routes and the security headers to the status application."""
    app[READER] = reader
    # Outermost, so that every answer has them, the bearer-token middleware's 401 included.
    app.middlewares.insert(0, security_headers)
    app.router.add_get("/", dashboard)
    app.router.add_get("/dashboard.json", dashboard_json)
    app.router.add_get("/static/{name}", static_file)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The CSP and friends on every answer, errors included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(SECURITY_HEADERS)
        raise
    response.headers.update(SECURITY_HEADERS)
    return response


def wants_html(request: web.Request) -> bool:
    """Whether the client prefers HTML to JSON (browsers do); JSON stays the default for everyone else."""
    quality: dict[str, float] = {}
    for part in request.headers.get("Accept", "").split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media.strip().lower()] = max(q, quality.get(media.strip().lower(), 0.0))
    anything = quality.get("*/*", 0.0)
    html = quality.get("text/html", anything)
    return html > 0 and html > quality.get("application/json", anything)


def finite(value: Any) -> Any:
    """``value`` with NaN and infinite floats as None: JSON has no NaN, and a browser's parser refuses it."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def json_text(value: Any) -> str:
    """Strict JSON (a diverged run's NaN loss becomes null), for every JSON answer a page reads."""
    return json.dumps(finite(value), allow_nan=False)


def _filters(request: web.Request) -> tuple[list[JobState], dict[str, str]]:
    """``?state=running&state=queued&label=team=nlp``; a bad value is a 400 naming it."""
    try:
        states = [JobState(s) for s in request.query.getall("state", []) if s]
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"bad query: {exc}") from None
    labels: dict[str, str] = {}
    for text in request.query.getall("label", []):
        for pair in text.split():
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise web.HTTPBadRequest(text=f"bad query: label {pair!r} is not KEY=VALUE")
            labels[key] = value
    return states, labels


@dataclass(frozen=True, slots=True)
class _Listing:
    """What the jobs page shows, for the request's filters."""

    states: list[JobState]
    labels: dict[str, str]
    jobs: list[Job]
    losses: dict[str, list[float]]
    counts: dict[JobState, int]
    rejections: list[Rejection]


async def _listing(request: web.Request) -> _Listing:
    reader = request.app[READER]
    states, labels = _filters(request)
    jobs = await reader.list_jobs(states, labels, DASHBOARD_LIMIT)
    losses = await reader.recent_losses([job.id for job in jobs])
    return _Listing(states, labels, jobs, losses, await reader.count_by_state(),
                    await reader.list_rejections(limit=REJECTIONS_LIMIT))


async def dashboard(request: web.Request) -> web.Response:
    """``GET /``: the jobs page."""
    found = await _listing(request)
    page = dashboard_page(found.jobs, found.losses, found.counts, datetime.now(UTC), found.states, found.labels,
                          found.rejections)
    return web.Response(text=page, content_type="text/html", charset="utf-8")


async def dashboard_json(request: web.Request) -> web.Response:
    """What the jobs page polls: its rows and the counts by state, for the same filters."""
    found = await _listing(request)
    now = datetime.now(UTC)
    return web.json_response(dumps=json_text, data={
        "now": now.isoformat(),
        "counts": {state.value: found.counts.get(state, 0) for state in JobState},
        "jobs": [job_row(job, found.losses.get(job.id, ()), now) for job in found.jobs],
        "rejections": [rejection_json(rejection) for rejection in found.rejections],
    })


async def job_html(request: web.Request) -> web.Response:
    """``GET /jobs/{ref}`` for a browser."""
    try:
        detail = await request.app[READER].detail(request.match_info["ref"])
    except OrchestratorError as exc:
        raise web.HTTPNotFound(text=str(exc)) from None
    page = job_page(detail, datetime.now(UTC))
    return web.Response(text=page, content_type="text/html", charset="utf-8", headers={"Vary": "Accept"})


async def static_file(request: web.Request) -> web.Response:
    """One of :data:`STATIC_FILES`, from the installed package (no file system paths from the request)."""
    name = request.match_info["name"]
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise web.HTTPNotFound()
    body = resources.files("orchestrator.status").joinpath("static", name).read_bytes()
    return web.Response(body=body, content_type=content_type, charset="utf-8",
                        headers={"Cache-Control": "no-cache"})
