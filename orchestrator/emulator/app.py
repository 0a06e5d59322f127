"""Building and running the emulator: ``create_app`` and the ``running_emulator`` context manager."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from aiohttp import web

from orchestrator.emulator.admin import EMULATOR_KEY, add_admin_routes
from orchestrator.emulator.handlers import install
from orchestrator.emulator.oauth import install_oauth
from orchestrator.emulator.permissions import install_permissions
from orchestrator.emulator.records import SimClock
from orchestrator.emulator.routes import Emulator
from orchestrator.emulator.settings import EmulatorSettings
from orchestrator.emulator.storage.handlers import install_storage
from orchestrator.emulator.vertex.handlers import install_vertex


def create_app(
    settings: EmulatorSettings | None = None,
    *,
    clock: Callable[[], float] | None = None,
    wall_start: float | None = None,
) -> web.Application:
    """An aiohttp application serving the Gemini API, Vertex AI, Cloud Storage, ``/token`` and ``/_emulator/``.

    ``clock`` is a monotonic clock in real seconds (default ``time.monotonic``); tests inject a manual
    one to move training forward without sleeping.  ``wall_start`` is the Unix time shown for the
    emulator's start (default now); timestamps are that plus the real (monotonic) time elapsed.
    """
    settings = settings or EmulatorSettings()
    monotonic = clock or time.monotonic
    sim = SimClock(monotonic, settings.time_scale, time.time() if wall_start is None else wall_start)
    emulator = Emulator(settings, sim, monotonic)
    install(emulator)
    install_vertex(emulator)
    install_storage(emulator)
    install_oauth(emulator)
    install_permissions(emulator)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[EMULATOR_KEY] = emulator
    add_admin_routes(app)
    app.router.add_route("*", "/{tail:.*}", emulator.handle)
    return app


@asynccontextmanager
async def running_emulator(
    settings: EmulatorSettings | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    clock: Callable[[], float] | None = None,
) -> AsyncIterator[str]:
    """Serve an emulator on ``host:port`` (0 = any free port) and yield its base URL."""
    app = create_app(settings, clock=clock)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
        bound = runner.addresses[0][1]
        yield f"http://{host}:{bound}"
    finally:
        await runner.cleanup()


def emulator_of(app: web.Application) -> Emulator:
    """The ``Emulator`` behind an app (for tests that inspect state directly)."""
    return app[EMULATOR_KEY]
