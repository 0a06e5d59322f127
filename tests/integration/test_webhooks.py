"""Webhooks end to end: a daemon on the emulator announces job endings to a local receiver.

The receiver verifies every request with the ``standardwebhooks`` package's own verifier, the one
a user's receiver would run. It can be told to answer with a status, or to hang, per request.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from standardwebhooks import Webhook

from orchestrator.config import NotifySettings, Settings
from orchestrator.daemon import run_daemon
from orchestrator.errors import ConfigError
from orchestrator.intake import drop_job_file
from orchestrator.jobs import JobState
from orchestrator.report import detail_json
from orchestrator.store import Announced, open_store
from orchestrator.webhooks import RetryPolicy, load_signer
from tests.conftest import RunningDaemon, free_port, sql_rows, wait_until
from tests.corpus import good_job

SECRET = "whsec_" + base64.b64encode(b"orchestrator-test-webhook-secret!").decode()
SECRET_ENV = "TEST_WEBHOOK_SECRET"


@dataclass
class Receiver:
    """A webhook endpoint on a free loopback port: verifies, records, answers as told."""

    url: str = ""
    verified: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    #: Decides each answer from (webhook-id, attempt number for that id): a status, or None to hang.
    answer: Callable[[str, int], int | None] = lambda _id, _n: 204
    seen: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = Webhook(SECRET).verify(body, dict(request.headers))
        except Exception as exc:
            self.refused.append(str(exc))
            return web.Response(status=400)
        message_id = request.headers["webhook-id"]
        self.seen[message_id] = self.seen.get(message_id, 0) + 1
        status = self.answer(message_id, self.seen[message_id])
        if status is None:
            await asyncio.Event().wait()  # hang until the sender gives up on this attempt
        assert status is not None
        if 200 <= status < 300:
            self.verified.append((message_id, payload))
        return web.Response(status=status)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hooks/orchestrator", found.handle)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    found.url = f"http://{host}:{port}/hooks/orchestrator"
    try:
        yield found
    finally:
        await runner.cleanup()


def with_webhook(settings: Settings, url: str, **notify: object) -> Settings:
    """``settings`` with ``[notify]`` pointing at ``url``, fast retries."""
    values: dict[str, object] = {
        "webhook_url": url, "webhook_secret_env": SECRET_ENV, "timeout": 1.0, "backoff_min": 0.05,
        "backoff_max": 0.2, **notify,
    }
    return replace(settings, notify=replace(settings.notify, **values))  # type: ignore[arg-type]


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)


async def running(settings: Settings) -> RunningDaemon:
    stop = asyncio.Event()
    return RunningDaemon(settings, stop, asyncio.create_task(run_daemon(settings, stop)))


async def stopped(daemon: RunningDaemon) -> None:
    daemon.stop.set()
    await asyncio.wait_for(daemon.task, timeout=15)


async def test_a_succeeded_job_is_announced_once_signed_with_the_job_record(
    settings: Settings, receiver: Receiver
) -> None:
    """The receiver verifies the signature; the payload names the job and its outcome; show lists it."""
    daemon = await running(with_webhook(settings, receiver.url))
    try:
        labelled = good_job(display_name="announce me", orchestrator={"labels": {"team": "nlp"}})
        drop_job_file(settings.spool.path, "a.json", labelled)
        [job] = await daemon.wait_for_jobs(1)
        await wait_until(lambda: _delivered(daemon, job.id), within=10)
        detail = await daemon.detail(job.id)
    finally:
        await stopped(daemon)

    assert receiver.refused == []
    [(message_id, payload)] = receiver.verified
    assert payload["type"] == "job.succeeded"
    data = payload["data"]
    assert isinstance(data, dict)
    assert data["job_id"] == job.id and data["job_key"] == job.job_key
    assert data["state"] == "succeeded" and data["labels"] == {"team": "nlp"}
    assert data["tuned_model"] == job.model_name == job.tuned_model_name  # the Gemini API's name for it
    assert data["endpoint"] is None and data["billable_tokens"] is None  # Vertex fills these
    assert data["final_loss"] == pytest.approx(job.last_loss)
    assert data["error"] is None and data["finished_at"].endswith("Z")
    [note] = detail.notifications
    assert (note.id, note.type, note.state) == (message_id, "job.succeeded", "delivered")
    assert [(a.outcome, a.status_code) for a in note.attempts] == [("delivered", 204)]
    assert detail_json(detail)["notifications"][0]["attempts"][0]["outcome"] == "delivered"


async def test_a_failing_receiver_gets_the_same_id_until_it_answers(settings: Settings, receiver: Receiver) -> None:
    """500, 500, then 200: three attempts recorded, one webhook-id, one delivery."""
    receiver.answer = lambda _id, n: 500 if n <= 2 else 200
    daemon = await running(with_webhook(settings, receiver.url))
    try:
        drop_job_file(settings.spool.path, "a.json", good_job())
        [job] = await daemon.wait_for_jobs(1)
        await wait_until(lambda: _delivered(daemon, job.id), within=15)
        detail = await daemon.detail(job.id)
    finally:
        await stopped(daemon)

    [note] = detail.notifications
    assert receiver.seen == {note.id: 3}
    assert [(a.outcome, a.status_code) for a in note.attempts] == [("failed", 500), ("failed", 500),
                                                                   ("delivered", 200)]
    assert note.attempts[0].error == "HTTP 500"


async def test_410_gives_the_notification_up_at_once(settings: Settings, receiver: Receiver) -> None:
    """A receiver answering 410 Gone is not asked again for that notification."""
    receiver.answer = lambda _id, _n: 410
    daemon = await running(with_webhook(settings, receiver.url))
    try:
        drop_job_file(settings.spool.path, "a.json", good_job())
        [job] = await daemon.wait_for_jobs(1)
        await wait_until(lambda: _finished(daemon, job.id), within=10)
        detail = await daemon.detail(job.id)
    finally:
        await stopped(daemon)

    [note] = detail.notifications
    assert note.state == "gave_up"
    assert [(a.outcome, a.status_code) for a in note.attempts] == [("gone", 410)]


async def test_a_hanging_or_missing_receiver_never_holds_jobs_back(settings: Settings, receiver: Receiver) -> None:
    """Jobs finish while every delivery hangs past its timeout or finds nobody listening; each try is recorded."""
    receiver.answer = lambda _id, _n: None
    nobody = "http://127.0.0.1:9/nobody"  # the discard port: nothing listens there
    for url, expected in ((receiver.url, "no answer within 1 s"), (nobody, "cannot connect to 127.0.0.1:9")):
        root = settings.database.path.parent / url.rsplit("/", 1)[1]
        moved = replace(settings, database=replace(settings.database, path=root / "o.db"),
                        spool=replace(settings.spool, path=root / "spool"))
        daemon = await running(with_webhook(moved, url, backoff_min=5.0))
        try:
            for index in range(6):
                drop_job_file(moved.spool.path, f"j{index}.json", good_job(display_name=f"j{index}"))
            jobs = await daemon.wait_for_jobs(6, within=30)
            await wait_until(lambda d=daemon, j=jobs: _attempted_all(d, [job.id for job in j]), within=15)
            details = [await daemon.detail(job.id) for job in jobs]
        finally:
            await stopped(daemon)
        assert {job.state for job in jobs} == {JobState.SUCCEEDED}
        for detail in details:
            [note] = detail.notifications
            assert note.state == "pending" and note.last_error is not None
            assert note.last_error.startswith(expected), note.last_error


async def test_the_secret_reaches_no_file(settings: Settings, receiver: Receiver) -> None:
    """After a run, neither the database nor the spool holds the signing secret."""
    daemon = await running(with_webhook(settings, receiver.url))
    try:
        drop_job_file(settings.spool.path, "a.json", good_job())
        [job] = await daemon.wait_for_jobs(1)
        await wait_until(lambda: _delivered(daemon, job.id), within=10)
    finally:
        await stopped(daemon)

    raw = SECRET.removeprefix("whsec_")
    for path in settings.database.path.parent.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert raw.encode() not in content and base64.b64decode(raw) not in content, path


async def test_pages_and_metrics_show_the_attempts_but_never_the_secret_or_url(
    settings: Settings, receiver: Receiver
) -> None:
    """The job page lists the webhook and its attempts; /metrics counts them; no page holds the secret or URL."""
    port = free_port()
    settings = replace(with_webhook(settings, receiver.url), status=replace(settings.status, enabled=True, port=port))
    receiver.answer = lambda _id, n: 503 if n == 1 else 200
    base = f"http://127.0.0.1:{port}"
    daemon = await running(settings)
    try:
        drop_job_file(settings.spool.path, "a.json", good_job())
        [job] = await daemon.wait_for_jobs(1)
        await wait_until(lambda: _delivered(daemon, job.id), within=15)
        pages = {}
        async with aiohttp.ClientSession() as session:
            for path, accept in (("/", "text/html"), (f"/jobs/{job.id}", "text/html"),
                                 (f"/jobs/{job.id}", "application/json"), ("/dashboard.json", "*/*"),
                                 ("/metrics", "*/*")):
                async with session.get(base + path, headers={"Accept": accept}) as response:
                    pages[path, accept] = await response.text()
    finally:
        await stopped(daemon)

    [note] = (await daemon.detail(job.id)).notifications
    page = pages[f"/jobs/{job.id}", "text/html"]
    assert note.id in page and "HTTP 503" in page and "delivered" in page
    assert 'orchestrator_webhook_attempts_total{outcome="failed"} 1.0' in pages["/metrics", "*/*"]
    assert 'orchestrator_webhook_notifications{state="delivered"} 1.0' in pages["/metrics", "*/*"]
    for text in pages.values():
        assert SECRET.removeprefix("whsec_") not in text and "/hooks/orchestrator" not in text


async def test_a_queued_job_cancelled_by_a_user_is_announced_in_the_same_transaction(settings: Settings) -> None:
    """``orchestrator cancel`` of a queued job writes the job.cancelled notification with the change."""
    from orchestrator.store.sql import NewJob

    now = datetime.now(UTC)
    announced = Announced.of(with_webhook(settings, "http://x.test/").notify)
    async with open_store(settings.database, announced=announced) as store:
        job = await store.add_job(NewJob(
            job_key="k", priority=0, display_name=None, base_model="models/m", tuned_model_id="t-1", labels={},
            source_file="f.json", intake_id="i", max_run_time=None, stall_timeout=None, body_json="{}",
            example_count=1, total_steps=None, file_sha256="0", file_bytes=2,
        ), now)
        await store.request_cancel(job.id, now)
        rows = await sql_rows(store, "SELECT n.type, n.state, e.to_state FROM notifications n"
                                     " JOIN events e ON e.id = n.event_id")
    assert [tuple(r) for r in rows] == [("job.cancelled", "pending", "cancelled")]


@pytest.mark.parametrize(
    ("notify", "environ", "problem"),
    [
        ({"webhook_url": "ftp://x", "webhook_secret_env": "S"}, {"S": SECRET}, "http:// or https://"),
        ({"webhook_url": "https://x.test/h"}, {}, "webhook_secret_env: is required"),
        ({"webhook_url": "https://x.test/h", "webhook_secret_env": "S"}, {}, "S is not set"),
        ({"webhook_url": "https://x.test/h", "webhook_secret_env": "ORCHESTRATOR_SECRET"},
         {"ORCHESTRATOR_SECRET": SECRET}, "starts with ORCHESTRATOR_"),
    ],
)
def test_config_mistakes_are_one_line_errors_naming_the_key(
    notify: dict[str, str], environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        load_signer(NotifySettings(**notify), environ)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and SECRET not in str(caught.value)


def test_slack_needs_no_secret() -> None:
    signer = load_signer(NotifySettings(webhook_url="https://hooks.slack.test/T/B/x", format="slack"), {})
    headers = signer.headers("msg_1", datetime.now(UTC), "{}")
    assert "webhook-signature" not in headers and headers["webhook-id"] == "msg_1"


def test_retry_policy_doubles_caps_and_gives_up_at_the_age() -> None:
    import random

    policy = RetryPolicy(backoff_min=5.0, backoff_max=60.0, give_up_after=600.0)
    rng = random.Random(1)
    ceilings = [max(policy.delay(n, rng) for _ in range(200)) for n in (1, 2, 3, 4, 5, 10)]
    assert [round(c) for c in ceilings] == [5, 10, 20, 40, 60, 60]
    created = datetime(2026, 1, 1, tzinfo=UTC)
    assert policy.next_attempt(created, created + timedelta(seconds=100), 1, rng) is not None
    assert policy.next_attempt(created, created + timedelta(seconds=599), 3, rng) is None


async def _notification_states(daemon: RunningDaemon, job_id: str) -> list[str]:
    return [n.state for n in (await daemon.detail(job_id)).notifications]


async def _delivered(daemon: RunningDaemon, job_id: str) -> bool:
    return await _notification_states(daemon, job_id) == ["delivered"]


async def _finished(daemon: RunningDaemon, job_id: str) -> bool:
    states = await _notification_states(daemon, job_id)
    return bool(states) and "pending" not in states


async def _attempted_all(daemon: RunningDaemon, job_ids: list[str]) -> bool:
    for job_id in job_ids:
        notes = (await daemon.detail(job_id)).notifications
        if not notes or not notes[0].attempts:
            return False
    return True
