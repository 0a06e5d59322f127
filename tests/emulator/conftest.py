"""Fixtures for the emulator's own tests: a manual clock, a running emulator, a client, seed bodies."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from orchestrator.emulator import EmulatorSettings, running_emulator

FIXTURES = Path(__file__).parent / "fixtures"


class ManualClock:
    """A monotonic clock that moves only when told, so tests drive training without sleeping."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def fixture_text(name: str) -> str:
    """A fixture file's text (request bodies keep the tutorial's trailing commas)."""
    return (FIXTURES / name).read_text(encoding="utf-8")


def fixture_json(name: str) -> Any:
    """A fixture file parsed as JSON."""
    return json.loads(fixture_text(name))


def tutorial_body(**hyper: int) -> dict[str, Any]:
    """The tutorial's v1beta create body (15 examples) as a dict, with hyperparameters overridden."""
    from orchestrator.emulator.wire import strip_trailing_commas

    body: dict[str, Any] = json.loads(strip_trailing_commas(fixture_text("create_v1beta_001.txt")))
    body["tuning_task"]["hyperparameters"].update(hyper)
    return body


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


EmulatorFactory = Callable[..., AbstractAsyncContextManager[str]]


@pytest.fixture
def emulator_factory(clock: ManualClock) -> EmulatorFactory:
    """``async with emulator_factory(**settings) as base_url`` on 127.0.0.1:0 with the manual clock."""

    def factory(**overrides: Any) -> AbstractAsyncContextManager[str]:
        return running_emulator(EmulatorSettings(**overrides), clock=clock)

    return factory


@pytest.fixture
async def base_url(emulator_factory: EmulatorFactory) -> AsyncIterator[str]:
    """A default emulator (2 s steps, manual clock)."""
    async with emulator_factory() as url:
        yield url


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, raw: str | None = None
) -> tuple[int, Any]:
    """One request; returns (status, parsed JSON body)."""
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    async with http.request(method, url, data=data, headers={"Content-Type": "application/json"}) as response:
        return response.status, await response.json(content_type=None)


@contextmanager
def threaded_emulator(settings: EmulatorSettings) -> Iterator[str]:
    """An emulator on its own event loop in a thread, for the blocking SDKs; yields its base URL."""
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        async with running_emulator(settings) as url:
            state["url"] = url
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # surfaced to the test below
            state["error"] = exc
            ready.set()

    thread = threading.Thread(target=run, name="emulator", daemon=True)
    thread.start()
    assert ready.wait(10), "emulator thread did not start"
    if "error" in state:
        raise state["error"]
    try:
        yield state["url"]
    finally:
        state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(10)
