"""Promises 1-4, 6 and 7, and webhook delivery, under fire: SIGKILLs at random moments, faults on (short version).

The long version is ``bench/chaos.py`` (hundreds of jobs, many kills); both use :mod:`tests.acceptance.chaos`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.acceptance.chaos import ChaosConfig, run_chaos, summary

pytestmark = pytest.mark.timeout(240)


async def test_chaos_run_keeps_every_promise(tmp_path: Path) -> None:
    report = await run_chaos(tmp_path, ChaosConfig(jobs=24, bad_files=6, kills=10, cancels=3, seed=7))

    assert report.violations() == {}, summary(report) + "\n" + "\n".join(report.problems)
    # The run really was rough: kills landed, and every kind of fault fired.
    assert report.kills == 10 and report.jobs == 24 and report.rejected == 7
    assert {"lost", "dropped", "503", "429"} <= set(report.faults_injected), report.faults_injected
    assert report.final_exit_code == 0 and report.final_stop_seconds < 10
    assert not report.problems, report.problems
    # The webhook receiver failed about a fifth of its requests, and every ending still arrived.
    assert report.webhook_failures_injected > 0 and report.unannounced_endings == 0, summary(report)
    # Each failure was a logged decision, never a crash of a step or a tick.
    assert not {"step_failed_unexpectedly", "scheduler_tick_failed"} & set(report.log_warnings)


async def test_chaos_run_on_vertex_keeps_every_promise(tmp_path: Path) -> None:
    """The same on the Vertex backend: lost uploads and creates, list lag, token refreshes, SIGKILLs."""
    report = await run_chaos(tmp_path / "run", ChaosConfig(jobs=20, bad_files=4, kills=8, cancels=3, seed=11,
                                                           backend="vertex"))

    assert report.violations() == {}, summary(report) + "\n" + "\n".join(report.problems)
    assert report.kills == 8 and report.jobs == 20
    assert {"lost", "412", "503"} <= set(report.faults_injected), report.faults_injected
    assert report.final_exit_code == 0 and report.final_stop_seconds < 10
    assert not report.problems, report.problems
    assert not {"step_failed_unexpectedly", "scheduler_tick_failed"} & set(report.log_warnings)
