"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright, against a daemon on the emulator.

Playwright drives the system's ``/usr/bin/chromium`` (``executable_path``; no browser is ever
downloaded), with a fresh profile per test. Set ``ORCHESTRATOR_SCREENSHOTS=DIR`` to keep a picture
of each page (that is how ``docs/dashboard.png`` and ``docs/job-page.png`` were made).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Dialog, Page, async_playwright, expect

from orchestrator.config import Settings
from orchestrator.daemon import run_daemon
from orchestrator.demo import tutorial_job_bytes
from orchestrator.intake import drop_job_file
from orchestrator.jobs import JobState
from tests.conftest import RunningDaemon, free_port
from tests.corpus import good_job

pytestmark = pytest.mark.timeout(120)

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: A display name (at most 40 bytes) and a label that would run script if they reached the page as markup.
HOSTILE_NAME = "<script>alert('name')</script>"
HOSTILE_LABEL = "<img src=x onerror=alert(1)>"
HOSTILE_FILE = "<img src=x onerror=alert(2)>.json"


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[tuple[RunningDaemon, str]]:
    """A daemon with its status server (and so the dashboard) on a free loopback port."""
    port = free_port()
    settings = replace(settings, status=replace(settings.status, enabled=True, port=port))
    stop = asyncio.Event()
    daemon = RunningDaemon(settings, stop, asyncio.create_task(run_daemon(settings, stop)))
    try:
        yield daemon, f"http://127.0.0.1:{port}"
    finally:
        stop.set()
        await asyncio.wait_for(daemon.task, timeout=15)


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """Headless Chromium with a fresh profile; any CSP violation or page error fails the test."""
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context
        finally:
            await context.close()


async def open_page(context: BrowserContext, url: str) -> tuple[Page, list[str]]:
    """The page at ``url`` and a live list of the console errors, dialogs and page errors it raises."""
    page = await context.new_page()
    problems: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console: {message.text}")

    async def on_dialog(dialog: Dialog) -> None:
        problems.append(f"dialog: {dialog.message}")
        await dialog.dismiss()

    page.on("console", on_console)
    page.on("dialog", on_dialog)
    page.on("pageerror", lambda error: problems.append(f"pageerror: {error}"))
    await page.goto(url)
    return page, problems


async def screenshot(page: Page, name: str) -> None:
    folder = os.environ.get("ORCHESTRATOR_SCREENSHOTS")
    if folder:
        await page.screenshot(path=str(Path(folder) / name), full_page=True)


def slow_job(name: str, **orchestrator: object) -> bytes:
    """A job of 100 steps: 5 s at the tests' emulator speed, long enough to be seen running."""
    examples = [{"text_input": str(n), "output": str(n + 1)} for n in range(20)]
    return good_job(
        display_name=name,
        tuning_task={"hyperparameters": {"batch_size": 1, "learning_rate": 0.001, "epoch_count": 5},
                     "training_data": {"examples": {"examples": examples}}},
        orchestrator=orchestrator,
    )


async def test_the_list_shows_every_job_and_follows_their_states_without_a_reload(
    served: tuple[RunningDaemon, str], browser: BrowserContext
) -> None:
    daemon, base = served
    spool = daemon.settings.spool.path
    drop_job_file(spool, "watched.json", slow_job("watched job", labels={"team": "nlp"}))
    hostile_job = good_job(display_name=HOSTILE_NAME, orchestrator={"labels": {"x": HOSTILE_LABEL}})
    drop_job_file(spool, "hostile.json", hostile_job)
    await daemon.wait_for_jobs(2, terminal=False)

    page, problems = await open_page(browser, base + "/")
    await page.evaluate("window.sameDocument = 'yes'")
    watched = page.locator("#jobs tbody tr", has_text="watched job")
    hostile = page.locator("#jobs tbody tr", has=page.locator("td.name", has_text="<script>"))
    await expect(page.locator("#jobs tbody tr")).to_have_count(2)
    await expect(watched.locator("td.state")).not_to_have_text("succeeded")
    await expect(watched.locator("td.labels")).to_have_text("team=nlp")

    # The daemon moves the job on; the page follows by itself.
    await expect(watched.locator("td.state")).to_have_text("succeeded", timeout=30_000)
    await expect(watched.locator("td.progress .pct")).to_have_text("100%")
    assert await watched.locator("svg.spark polyline").count() == 1
    assert await page.evaluate("window.sameDocument") == "yes"  # no reload happened

    # The hostile name is text, in the first render and in the live one alike.
    await expect(hostile.locator("td.name")).to_have_text(HOSTILE_NAME)
    await expect(hostile.locator("td.labels")).to_have_text(f"x={HOSTILE_LABEL}")
    assert await page.locator("#jobs script, #jobs img").count() == 0  # and no alert() dialog: see problems

    # A file rejected while the page is open shows up in its own table, its name as text.
    drop_job_file(spool, HOSTILE_FILE, b'{"display_name": 7}')
    rejected = page.locator("#rejections tbody tr")
    await expect(rejected).to_have_count(1, timeout=15_000)
    await expect(rejected.locator("td.file")).to_have_text(HOSTILE_FILE)
    await expect(rejected.locator("td.field")).to_have_text("display_name")
    await expect(page.locator("#rejections")).to_be_visible()

    # Filters: by state, and by label.
    await page.goto(base + "/?label=team%3Dnlp")
    await expect(page.locator("#jobs tbody tr")).to_have_count(1)
    await page.goto(base + "/?state=queued")
    await expect(page.locator("p.empty")).to_be_visible()
    await page.goto(base + "/")
    await expect(page.locator("#jobs tbody tr")).to_have_count(2)
    await screenshot(page, "dashboard.png")
    assert problems == []


async def test_a_job_page_charts_every_step_with_epochs_and_hover_details(
    served: tuple[RunningDaemon, str], browser: BrowserContext
) -> None:
    daemon, base = served
    drop_job_file(daemon.settings.spool.path, "number-generator.json", tutorial_job_bytes())
    [job] = await daemon.wait_for_jobs(1)
    detail = await daemon.detail(job.id)
    assert job.state is JobState.SUCCEEDED and len(detail.snapshots) == 38

    page, problems = await open_page(browser, f"{base}/jobs/{job.id}")
    points = page.locator("#chart circle.point")
    await expect(points).to_have_count(len(detail.snapshots))
    epochs = sorted({s.epoch for s in detail.snapshots})
    assert await page.locator("#chart line.epoch").count() == len(epochs)
    await expect(page.locator("#state")).to_have_text("succeeded")
    await expect(page.locator("table.events")).to_contain_text("running")

    twelfth = detail.snapshots[11]
    await points.nth(11).hover()
    tooltip = page.locator("#chart .tooltip")
    await expect(tooltip).to_be_visible()
    await expect(tooltip).to_have_text(f"step {twelfth.step} · epoch {twelfth.epoch} · loss {twelfth.mean_loss:.4f}")
    await screenshot(page, "job-page.png")
    assert problems == []

    # Scripts still get JSON from the same address.
    response = await page.request.get(f"{base}/jobs/{job.id}", headers={"Accept": "application/json"})
    assert response.headers["content-type"].startswith("application/json")
    assert json.loads(await response.text())["id"] == job.id
