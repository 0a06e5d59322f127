"""The HTTP status endpoint: health semantics on a hand-moved clock, metric names, readiness, /jobs, /rejections,
/daemons."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from orchestrator.config import ApiSettings, DatabaseSettings, StatusSettings
from orchestrator.errors import RateLimited, TransientError
from orchestrator.gemini.client import open_tuning_api
from orchestrator.gemini.throttle import Throttle
from orchestrator.status.metrics import Metrics
from orchestrator.status.server import Health, StatusContext, create_app, running_status_server
from orchestrator.store import open_reader, open_store
from orchestrator.store.daemons import DaemonInfo
from tests.status.conftest import SampleJobs, build_database

#: Every metric family ``/metrics`` exports (names as the text format's ``# TYPE`` lines give them).
METRIC_NAMES = {
    "orchestrator_build_info": "gauge",
    "orchestrator_jobs": "gauge",
    "orchestrator_api_requests": "counter",
    "orchestrator_rate_limit_pauses": "counter",
    "orchestrator_poll_lateness_seconds": "histogram",
    "orchestrator_intake_files": "counter",
    "orchestrator_snapshots_recorded": "counter",
    "orchestrator_wal_bytes": "gauge",
    "orchestrator_scheduler_tick_age_seconds": "gauge",
    "orchestrator_last_write_age_seconds": "gauge",
    "orchestrator_webhook_attempts": "counter",
    "orchestrator_webhook_notifications": "gauge",
    "orchestrator_daemons": "gauge",
    "orchestrator_daemon_heartbeat_age_seconds": "gauge",
}


@dataclass
class ManualClock:
    """A monotonic clock that moves only when told."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Daemonish:
    """The liveness timestamps a daemon would expose."""

    clock: ManualClock = field(default_factory=ManualClock)
    tick: float = 1000.0
    write: float = 1000.0
    ready: bool = True


@dataclass
class Served:
    url: str
    state: Daemonish
    metrics: Metrics
    ids: SampleJobs
    session: aiohttp.ClientSession

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.url + path) as response:
            return response.status, await response.text()


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """The status app on 127.0.0.1:0 over the sample database, with liveness under the test's control."""
    path = tmp_path / "status.db"
    ids = await build_database(path)
    state = Daemonish()
    metrics = Metrics()
    health = Health(lambda: state.tick, lambda: state.write, state.clock,
                    StatusSettings(max_tick_age=30.0, max_write_age=600.0))
    async with open_reader(DatabaseSettings(path=path)) as reader:
        context = StatusContext(reader, health, metrics, path.with_name("status.db-wal"),
                                lambda: None if state.ready else "starting or stopping")
        async with (
            running_status_server(create_app(context), "127.0.0.1", 0) as url,
            aiohttp.ClientSession() as session,
        ):
            yield Served(url, state, metrics, ids, session)


async def test_healthz_is_healthy_while_ticks_and_writes_are_recent(served: Served) -> None:
    """Both ages under their limits: 200 with the ages and the limits."""
    served.state.clock.now += 12.5
    served.state.tick += 10.0
    status, body = await served.get("/healthz")

    assert status == 200
    assert json.loads(body) == {
        "status": "ok", "scheduler_tick_age_seconds": 2.5, "last_write_age_seconds": 12.5,
        "max_tick_age_seconds": 30.0, "max_write_age_seconds": 600.0, "problems": [],
    }


async def test_a_stalled_scheduler_turns_healthz_unhealthy(served: Served) -> None:
    """No tick for longer than max_tick_age: 503 naming the stalled loop, even though writes are fresh."""
    served.state.clock.now += 31.0
    served.state.write = served.state.clock.now
    status, body = await served.get("/healthz")

    assert status == 503
    report = json.loads(body)
    assert report["status"] == "unhealthy"
    assert report["problems"] == ["scheduler loop has not ticked for 31 s (limit 30 s)"]

    served.state.tick = served.state.clock.now  # the loop moves again
    assert (await served.get("/healthz"))[0] == 200


async def test_no_successful_write_turns_healthz_unhealthy(served: Served) -> None:
    """A loop that ticks but cannot write (a locked or full disk) is unhealthy too."""
    served.state.clock.now += 601.0
    served.state.tick = served.state.clock.now
    status, body = await served.get("/healthz")

    assert status == 503
    assert json.loads(body)["problems"] == ["no database write for 601 s (limit 600 s)"]


async def test_readyz_follows_the_daemon(served: Served) -> None:
    """Ready while serving, with the job count; 503 while starting or stopping."""
    assert await served.get("/readyz") == (200, '{"status": "ready", "jobs": 5}')
    served.state.ready = False
    status, body = await served.get("/readyz")
    assert status == 503 and "stopping" in body


async def test_metrics_exports_every_documented_name(served: Served) -> None:
    """The exposition parses, has exactly the documented families, and jobs-by-state reads the database."""
    served.metrics.intake_accepted(1)
    served.metrics.poll_lateness.observe(0.3)
    status, text = await served.get("/metrics")

    assert status == 200
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert {name: f.type for name, f in families.items()} == METRIC_NAMES
    jobs = {s.labels["state"]: s.value for s in families["orchestrator_jobs"].samples}
    assert jobs == {"queued": 1, "submitting": 0, "running": 1, "cancelling": 0, "succeeded": 2, "failed": 1,
                    "cancelled": 0}
    intake = {s.labels["outcome"]: s.value for s in families["orchestrator_intake_files"].samples
              if s.name.endswith("_total")}
    assert intake == {"accepted": 1.0, "rejected": 0.0}
    lateness = {s.name: s.value for s in families["orchestrator_poll_lateness_seconds"].samples if not s.labels}
    assert lateness["orchestrator_poll_lateness_seconds_count"] == 1.0


async def test_jobs_lists_and_filters_like_status_json(served: Served) -> None:
    """``/jobs`` takes state, label and limit; ``/jobs/{ref}`` is ``show --json``; bad input is 4xx."""
    status, body = await served.get("/jobs?state=running&state=failed")
    assert status == 200
    assert {j["id"] for j in json.loads(body)} == {served.ids.running, served.ids.failed}
    assert [j["id"] for j in json.loads((await served.get("/jobs?label=team=vision"))[1])] == [served.ids.failed]
    assert len(json.loads((await served.get("/jobs?limit=2"))[1])) == 2

    status, body = await served.get(f"/jobs/{served.ids.succeeded}")
    assert status == 200 and len(json.loads(body)["snapshots"]) == 12
    assert (await served.get("/jobs/unknown"))[0] == 404
    assert (await served.get("/jobs?state=sleeping"))[0] == 400


async def test_rejections_lists_rejected_files_like_rejected_json(served: Served) -> None:
    """``/rejections`` (open ones; ``all=1`` also the resolved) is ``orchestrator rejected --json``."""
    status, body = await served.get("/rejections")
    assert status == 200
    [rejection] = json.loads(body)
    assert rejection["id"] == served.ids.rejection and rejection["field"] == "tuning_task.hyperparameters.epoch_count"
    assert len(json.loads((await served.get("/rejections?all=1&limit=5"))[1])) == 1
    assert (await served.get("/rejections?limit=many"))[0] == 400


async def test_daemons_and_their_heartbeats_are_served_and_exported(served: Served, tmp_path: Path) -> None:
    """``/daemons`` is ``daemons --json``; ``/metrics`` has each unstopped daemon's heartbeat age, so a
    dead daemon shows on a live one's metrics."""
    now = datetime.now(UTC)
    async with open_store(DatabaseSettings(path=tmp_path / "status.db")) as store:
        await store.heartbeat(DaemonInfo("live:1:a", "live", 1, "/spool"), now)
        await store.heartbeat(DaemonInfo("dead:2:b", "dead", 2, "/spool"), now - timedelta(minutes=2))
    status, body = await served.get("/daemons")
    _, metrics = await served.get("/metrics")

    assert status == 200
    assert [(d["id"], d["status"]) for d in json.loads(body)] == [("live:1:a", "running"), ("dead:2:b", "dead")]
    assert 'orchestrator_daemons{status="dead"} 1.0' in metrics
    [age] = re.findall(r'orchestrator_daemon_heartbeat_age_seconds\{daemon="dead:2:b"\} ([0-9.]+)', metrics)
    assert float(age) >= 120


async def test_the_client_reports_requests_by_route_and_status() -> None:
    """Through the real client: 200s, a 429 (which also counts a pause) and a dropped connection."""
    answers = [web.json_response({"name": "tunedModels/m-1", "state": "ACTIVE"}),
               web.json_response({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}},
                                 status=429)]

    async def model(request: web.Request) -> web.StreamResponse:
        if not answers:
            assert request.transport is not None
            request.transport.close()  # no response at all
            return web.Response()
        return answers.pop(0)

    app = web.Application()
    app.router.add_get("/v1beta/tunedModels/{id}", model)
    metrics = Metrics()
    elapsed = [0.0]  # the throttle's clock: the 429's pause passes the moment it is waited for

    async def sleep(seconds: float) -> None:
        elapsed[0] += seconds

    throttle = Throttle(0, 0.0, clock=lambda: elapsed[0], sleep=sleep)
    async with running_status_server(app, "127.0.0.1", 0) as url:
        settings = ApiSettings(base_url=url, timeout=5.0)
        async with open_tuning_api(settings, throttle=throttle, on_response=metrics.api_response) as api:
            await api.get_tuned_model("tunedModels/m-1")
            with pytest.raises(RateLimited):
                await api.get_tuned_model("tunedModels/m-1")
            with pytest.raises(TransientError):
                await api.get_tuned_model("tunedModels/m-1")

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    for status in ("200", "429", "error"):
        assert value("orchestrator_api_requests_total", route="get_tuned_model", status=status) == 1.0
    assert value("orchestrator_rate_limit_pauses_total") == 1.0
