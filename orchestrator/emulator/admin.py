"""Introspection and control under ``/_emulator/``, never mixed with the API routes.

Tests and benchmarks use these to prove the daemon's promises (e.g. "at most one successful create per
tuned-model id") and to change the fault plan while the emulator runs.  Shapes are documented in the
package docstring.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from orchestrator.emulator.faults import FaultPlan
from orchestrator.emulator.routes import Emulator

EMULATOR_KEY: web.AppKey[Emulator] = web.AppKey("emulator", Emulator)


def _json(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status)


def _vertex(emu: Emulator) -> dict[str, Any]:
    jobs = emu.vertex
    peaks = jobs.peaks()
    return {
        "tuning_jobs": len(jobs.jobs),
        "active_jobs": jobs.active_count(),
        "peak_active_jobs": peaks["active"],
        "peak_running_jobs": peaks["running"],
        "creates_by_label": dict(jobs.creates_by_label),
        "creates_by_dataset": dict(jobs.creates_by_dataset),
    }


def _storage(emu: Emulator) -> dict[str, Any]:
    store = emu.storage
    return {
        "uploads": dict(store.uploads),
        "objects": sum(len(bucket.objects) for bucket in store.buckets.values()),
        "buckets": sorted(store.buckets),
    }


def _stats(emu: Emulator) -> dict[str, Any]:
    registry = emu.registry
    return {
        "requests": {route: dict(counts) for route, counts in sorted(registry.requests.items())},
        "creates": dict(registry.creates),
        "active_jobs": registry.active_jobs(),
        "peak_active_jobs": registry.peak_active_jobs(),
        "models": len(registry.models),
        "vertex": _vertex(emu),
        "storage": _storage(emu),
        "faults": emu.faults.plan.to_json(),
        "fault_calls": list(emu.faults.counters),
    }


async def stats(request: web.Request) -> web.Response:
    """``GET /_emulator/stats``: everything below in one document."""
    return _json(_stats(request.app[EMULATOR_KEY]))


async def reset_stats(request: web.Request) -> web.Response:
    """``DELETE /_emulator/stats``: zero the request and create counters (models are kept)."""
    emu = request.app[EMULATOR_KEY]
    emu.registry.requests.clear()
    emu.registry.creates.clear()
    emu.vertex.creates_by_label.clear()
    emu.vertex.creates_by_dataset.clear()
    emu.storage.uploads.clear()
    return _json({})


async def reset(request: web.Request) -> web.Response:
    """``POST /_emulator/reset``: forget every tuned model, counter and fault (a fresh emulator)."""
    emu = request.app[EMULATOR_KEY]
    emu.registry.reset()
    emu.vertex.reset()
    emu.storage.reset()
    emu.faults.set_plan(FaultPlan())
    return _json({})


async def requests_seen(request: web.Request) -> web.Response:
    """``GET /_emulator/requests``: ``{route: {status: count}}`` (status also ``dropped``/``lost``)."""
    return _json(_stats(request.app[EMULATOR_KEY])["requests"])


async def creates(request: web.Request) -> web.Response:
    """``GET /_emulator/creates``: successful (committed) creates per tuned-model name."""
    return _json(dict(request.app[EMULATOR_KEY].registry.creates))


async def jobs(request: web.Request) -> web.Response:
    """``GET /_emulator/jobs``: every tuned model with its state and progress."""
    emu = request.app[EMULATOR_KEY]
    now = emu.clock.now()
    out = []
    for record in emu.registry.models.values():
        progress = record.run.progress(now)
        out.append(
            {
                "name": record.name,
                "operation": record.operation_name,
                "owner": record.owner,
                "state": record.state(now),
                "completedSteps": progress.completed_steps,
                "totalSteps": record.run.total,
                "ending": progress.ending.value if progress.ending else None,
                "cancelRequested": record.run.cancel_requested is not None,
            }
        )
    return _json({"jobs": out, "active": emu.registry.active_jobs()})


async def vertex_jobs(request: web.Request) -> web.Response:
    """``GET /_emulator/vertex/jobs``: every Vertex AI tuning job with its state, sub-state and progress."""
    emu = request.app[EMULATOR_KEY]
    emu.vertex.advance_all()
    now = emu.clock.now()
    out = []
    for record in emu.vertex.jobs.values():
        view = record.view(now)
        out.append(
            {
                "name": record.name,
                "state": view.state,
                "tuningJobState": view.sub_state or None,
                "completedSteps": view.steps,
                "totalSteps": record.total_steps,
                "labels": dict(record.spec.labels),
                "trainingDatasetUri": record.spec.training_uri,
                "listedFrom": emu.clock.wall(record.visible_from),
            }
        )
    return _json({"jobs": out, **_vertex(emu)})


async def vertex_creates(request: web.Request) -> web.Response:
    """``GET /_emulator/vertex/creates``: committed creates per ``label=value`` and per training dataset."""
    jobs = request.app[EMULATOR_KEY].vertex
    return _json({"by_label": dict(jobs.creates_by_label), "by_dataset": dict(jobs.creates_by_dataset)})


async def storage_uploads(request: web.Request) -> web.Response:
    """``GET /_emulator/storage/uploads``: committed uploads per ``gs://bucket/object``."""
    return _json(dict(request.app[EMULATOR_KEY].storage.uploads))


async def get_faults(request: web.Request) -> web.Response:
    """``GET /_emulator/faults``: the current plan and per-rule call counters."""
    engine = request.app[EMULATOR_KEY].faults
    return _json({**engine.plan.to_json(), "calls": list(engine.counters)})


async def set_faults(request: web.Request) -> web.Response:
    """``POST /_emulator/faults`` with a plan: replace the plan (counters restart); 400 when malformed."""
    try:
        plan = FaultPlan.from_json(json.loads(await request.read() or b"{}"))
    except (ValueError, json.JSONDecodeError) as exc:
        return _json({"error": str(exc)}, status=400)
    request.app[EMULATOR_KEY].faults.set_plan(plan)
    return _json(plan.to_json())


async def clear_faults(request: web.Request) -> web.Response:
    """``DELETE /_emulator/faults``: no faults from now on."""
    request.app[EMULATOR_KEY].faults.set_plan(FaultPlan())
    return _json({})


def add_admin_routes(app: web.Application) -> None:
    """Mount the introspection routes."""
    app.router.add_get("/_emulator/stats", stats)
    app.router.add_delete("/_emulator/stats", reset_stats)
    app.router.add_post("/_emulator/reset", reset)
    app.router.add_get("/_emulator/requests", requests_seen)
    app.router.add_get("/_emulator/creates", creates)
    app.router.add_get("/_emulator/jobs", jobs)
    app.router.add_get("/_emulator/vertex/jobs", vertex_jobs)
    app.router.add_get("/_emulator/vertex/creates", vertex_creates)
    app.router.add_get("/_emulator/storage/uploads", storage_uploads)
    app.router.add_get("/_emulator/faults", get_faults)
    app.router.add_post("/_emulator/faults", set_faults)
    app.router.add_delete("/_emulator/faults", clear_faults)
