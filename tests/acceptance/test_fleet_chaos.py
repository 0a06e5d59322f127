"""Three daemons on one PostgreSQL database, SIGKILLed and restarted at random with faults on (short version).

The long version is ``bench/fleet_chaos.py``; both use :mod:`tests.acceptance.fleet_chaos`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.acceptance.fleet_chaos import CAP, FleetChaosConfig, run_fleet_chaos

pytestmark = pytest.mark.timeout(300)


async def test_three_daemons_killed_at_random_keep_every_promise(tmp_path: Path, postgres_url: str) -> None:
    report = await run_fleet_chaos(tmp_path, postgres_url, FleetChaosConfig(jobs=30, kills=9, cancels=2, seed=3))

    summary = json.dumps({k: v for k, v in report.as_json().items() if k != "problems"}, sort_keys=True)
    assert report.violations() == {}, summary + "\n" + "\n".join(report.problems)
    # The run really was rough, and the cap really was reached (so "never exceeded" means something).
    assert report.kills == 9 and report.jobs == 30 and report.rejected == 1
    assert {"lost", "503", "429"} <= set(report.faults_injected), report.faults_injected
    assert report.peak_active_jobs == CAP
    assert report.daemons_seen >= 3 + 9 * 0.5  # most kills hit a daemon at work: a new instance each restart
    assert report.final_exit_codes == [0, 0, 0]
