"""The composition root: builds the parts, runs them together, and stops them on purpose.

Only this module names concrete classes. One daemon runs per database: it holds an exclusive
``flock`` on ``<database>.lock`` for its lifetime, which is also what makes it safe to forget the
leases of a previous (dead) process at start-up instead of waiting for them to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import secrets
import signal
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog

from orchestrator import stop_signals
from orchestrator.clock import Clock, SystemClock
from orchestrator.config import EMBEDDED_EMULATOR, Settings
from orchestrator.errors import OrchestratorError
from orchestrator.gemini.client import open_tuning_api
from orchestrator.gemini.service import GeminiTuning
from orchestrator.gemini.throttle import Throttle
from orchestrator.intake import Intake
from orchestrator.jobfiles import job_file_parser
from orchestrator.jobs import new_installation_id
from orchestrator.notify import Notifier
from orchestrator.peers import PeerLink
from orchestrator.scheduler import Scheduler
from orchestrator.status.metrics import Metrics
from orchestrator.status.observed import StoreMetrics
from orchestrator.status.reachability import ApiReachability
from orchestrator.status.server import Health, StatusContext, create_app, read_token, running_status_server
from orchestrator.store import Announced, JobStore, describe, open_reader, open_store
from orchestrator.store.daemons import DaemonInfo
from orchestrator.tuning import TuningApi
from orchestrator.vertex.client import open_vertex_client
from orchestrator.vertex.service import VertexTuning
from orchestrator.webhooks import WebhookSender, load_signer

log = structlog.get_logger(__name__)

#: How often the store's housekeeping runs (SQLite: the WAL size against ``database.wal_checkpoint_bytes``).
HOUSEKEEPING_SECONDS = 30.0


class DaemonAlreadyRunning(OrchestratorError):
    """Another daemon holds this database."""


@contextlib.contextmanager
def daemon_lock(database: Path) -> Iterator[None]:
    """Hold ``<database>.lock`` exclusively, or fail at once naming the file."""
    lock_path = database.with_name(database.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # Readable by the daemon's user alone (0600, tightened if an older start left it 0660): anyone who
    # can open the file can hold a shared flock on it and so keep the daemon from starting.
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DaemonAlreadyRunning(f"another orchestrator daemon is using {database} (lock {lock_path})") from None
        yield


@asynccontextmanager
async def api_base_url(settings: Settings) -> AsyncIterator[str]:
    """The API's base URL, starting the embedded emulator on a free loopback port when asked."""
    if settings.api.base_url != EMBEDDED_EMULATOR:
        yield settings.api.base_url.rstrip("/")
        return
    from orchestrator.emulator import EmulatorSettings, running_emulator

    emulator = EmulatorSettings(
        step_seconds=settings.emulator.step_seconds, time_scale=settings.emulator.time_scale,
        seed=settings.emulator.seed,
    )
    async with running_emulator(emulator, host="127.0.0.1", port=0) as url:
        log.info("embedded_emulator_started", url=url, time_scale=emulator.time_scale)
        yield url


def install_stop_signals(stop: asyncio.Event) -> None:
    """First SIGTERM/SIGINT: a graceful stop. A second one: exit at once (the next start resumes).

    A signal that arrived earlier, while ``run`` was still importing (:mod:`orchestrator.stop_signals`),
    counts as the first one: ``stop`` is set at once.
    """
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second_signal_exiting_now", signal=signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    for signum in stop_signals.STOP_SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    early = stop_signals.early_signal()
    if early is not None:
        on_signal(early)


def stopped_during_startup(stop: asyncio.Event, before: str) -> bool:
    """Whether a stop was asked for before ``before`` (a start-up step), which is then skipped."""
    if stop.is_set():
        log.info("stopped_during_startup", before=before)
    return stop.is_set()


async def run_daemon(
    settings: Settings, stop: asyncio.Event | None = None, clock: Clock | None = None, notifier: Notifier | None = None
) -> None:
    """Run intake and scheduler until ``stop`` is set (by a signal when none is given).

    ``notifier`` tells systemd how the daemon is doing (by default through ``NOTIFY_SOCKET``, when set).
    """
    clock = clock or SystemClock()
    notifier = notifier or Notifier.from_environ()
    if stop is None:
        stop = asyncio.Event()
        install_stop_signals(stop)
    if stopped_during_startup(stop, "migrations"):
        return
    metrics = Metrics()
    reachability = ApiReachability(clock.monotonic, settings.status.max_api_unreachable)

    def on_response(route: str, status: int | None) -> None:
        metrics.api_response(route, status)
        reachability.observe(route, status)

    # Before anything starts: a missing webhook secret is a config error, not a daemon that
    # writes notifications it can never sign.
    signer = load_signer(settings.notify, os.environ) if settings.notify.webhook_url else None
    announced = Announced.of(settings.notify)
    # One daemon per SQLite file; on PostgreSQL, several daemons share the database by design.
    with contextlib.nullcontext() if settings.database.url else daemon_lock(settings.database.path):
        store_metrics = StoreMetrics(metrics, clock.monotonic)
        async with open_store(settings.database, store_metrics, announced) as store:
            if stopped_during_startup(stop, "api"):
                return
            installation_id = settings.daemon.installation_id or await store.get_or_set_meta(
                "installation_id", new_installation_id()
            )
            released = await store.release_all_leases()
            owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
            log.info("daemon_starting", owner=owner, installation_id=installation_id,
                     database=describe(settings.database), spool=str(settings.spool.path),
                     stale_leases_released=released)
            daemon = DaemonInfo(owner, socket.gethostname(), os.getpid(), str(settings.spool.path))
            await store.heartbeat(daemon, clock.now())
            throttle = Throttle.from_settings(settings.api)
            async with (
                api_base_url(settings) as base_url,
                tuning_service(settings, base_url, on_response, throttle) as api,
            ):
                if stopped_during_startup(stop, "intake and scheduler"):
                    return
                peers = PeerLink(store, daemon, throttle, base_url, clock)
                scheduler = Scheduler(store, api, settings.scheduler, clock, owner,
                                      max_concurrent_steps=max(4 * settings.api.max_in_flight, 16),
                                      shutdown_grace=settings.daemon.shutdown_grace, installation_id=installation_id)

                def on_new_jobs(count: int) -> None:
                    metrics.intake_accepted(count)
                    scheduler.wake.set()

                intake = Intake(store, settings.spool, clock, installation_id, on_new_jobs=on_new_jobs,
                                on_rejected=metrics.intake_rejected, parse=job_file_parser(settings))
                intake.prepare()  # an unsafe spool folder stops the start here, in one line
                health = Health(lambda: scheduler.last_tick, lambda: store_metrics.last_write, clock.monotonic,
                                settings.status)

                def unready_reason() -> str | None:
                    return "starting or stopping" if stop.is_set() else reachability.unready_reason()

                async with _status_server(settings, health, metrics, unready_reason), asyncio.TaskGroup() as tasks:
                    tasks.create_task(intake.run(stop))
                    tasks.create_task(scheduler.run(stop))
                    tasks.create_task(_housekeeping(store, stop))
                    tasks.create_task(peers.run(stop))
                    tasks.create_task(_tell_service_manager(notifier, health, settings, stop))
                    if signer is not None:
                        sender = WebhookSender(store, settings.notify, signer, clock, metrics.webhook_attempt)
                        tasks.create_task(sender.run(stop))
            log.info("daemon_stopped")


@asynccontextmanager
async def tuning_service(
    settings: Settings, base_url: str, on_response: Callable[[str, int | None], None], throttle: Throttle
) -> AsyncIterator[TuningApi]:
    """The tuning service ``[api] backend`` names, for the block; ``on_response`` hears every exchange.

    ``throttle`` gates every call; the daemon shares its 429 pauses with the other daemons (``peers``).
    """
    if settings.api.backend == "vertex":
        async with open_vertex_client(settings.api, settings.vertex, base_url, throttle=throttle,
                                      on_response=on_response) as vc:
            yield VertexTuning(vc, settings.vertex.staging_uri, settings.vertex.list_settle_seconds)
        return
    async with open_tuning_api(settings.api, base_url, throttle=throttle, on_response=on_response) as client:
        yield GeminiTuning(client)


@asynccontextmanager
async def _status_server(
    settings: Settings, health: Health, metrics: Metrics, unready_reason: Callable[[], str | None]
) -> AsyncIterator[None]:
    """Serve /healthz, /readyz, /metrics and /jobs for the block, when ``[status] enabled``."""
    if not settings.status.enabled:
        yield
        return
    wal = settings.database.path.with_name(settings.database.path.name + "-wal")
    async with open_reader(settings.database) as reader:
        context = StatusContext(reader, health, metrics, wal, unready_reason=unready_reason,
                                token=read_token(settings.status))
        async with running_status_server(create_app(context), settings.status.host, settings.status.port,
                                         max_connections=settings.status.max_connections) as url:
            log.info("status_server_started", url=url)
            yield


async def _tell_service_manager(notifier: Notifier, health: Health, settings: Settings, stop: asyncio.Event) -> None:
    """READY once running; WATCHDOG only while the scheduler loop moves; STOPPING when asked to stop.

    A loop that stopped ticking gets no pings, so systemd's ``WatchdogSec=`` restarts a daemon that
    is alive but stuck, which a PID check would not notice.
    """
    if not notifier.enabled:
        return
    notifier.ready(f"watching {settings.spool.path / 'inbox'}")
    interval = notifier.watchdog_interval
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)
        if stop.is_set():
            break
        report = health.check()
        if report.tick_age <= settings.status.max_tick_age:
            notifier.watchdog()
        else:
            log.error("watchdog_withheld", tick_age=round(report.tick_age, 1), limit=settings.status.max_tick_age)
    notifier.stopping()


async def _housekeeping(store: JobStore, stop: asyncio.Event) -> None:
    """Run the store's upkeep (SQLite: keep the WAL bounded) every ``HOUSEKEEPING_SECONDS``."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), HOUSEKEEPING_SECONDS)
        try:
            done = await store.housekeeping()
        except Exception as exc:  # a locked or failing database must not end the daemon: next interval
            log.warning("store_housekeeping_failed", error=f"{type(exc).__name__}: {exc}")
        else:
            if done:
                log.info(done)
