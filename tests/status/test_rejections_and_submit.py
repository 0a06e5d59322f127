"""Rejected files as the tools see them (``rejected``, ``resubmit``, ``/rejections``) and ``submit``'s refusals.

Issue 13, items 8 and 9: a rejection is a row the CLI lists and a fixed file can replace; ``submit``
finds the daemon's spool or refuses, and reports a job the database already holds.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from orchestrator.cli import main
from tests.corpus import good_job
from tests.status.conftest import SampleJobs

Sample = tuple[Path, SampleJobs]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The command's stdout; it must exit 0."""
    assert main(list(argv)) == 0
    return capsys.readouterr().out


def fail(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The command's stderr; it must exit 1."""
    assert main(list(argv)) == 1
    return capsys.readouterr().err


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """A spool as the daemon makes it, with ``typo.json`` (the sample rejection) in rejected/."""
    root = tmp_path / "spool"
    for folder in ("inbox", "processing", "accepted", "rejected"):
        (root / folder).mkdir(parents=True)
    (root / "rejected" / "typo.json").write_bytes(b'{"display_name": "typo", "tuning_task": {}}')
    (root / "rejected" / "typo.json.error.json").write_text("{}")
    return root


def test_rejected_lists_open_rejections_with_their_reason(
    sample_db: Sample, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = sample_db
    out = " ".join(run(capsys, "rejected", "--spool", str(spool), "--database", str(path)).split())  # may wrap
    assert f"{ids.rejection} 30m typo.json tuning_task.hyperparameters.epoch_count: must be a whole number" in out

    [data] = json.loads(run(capsys, "rejected", "--json", "--database", str(path)))
    assert data == {
        "id": ids.rejection, "file": "typo.json", "rejected_file": "typo.json",
        "field": "tuning_task.hyperparameters.epoch_count", "problem": "must be a whole number (got 'five')",
        "error": "typo.json: tuning_task.hyperparameters.epoch_count: must be a whole number (got 'five')",
        "duplicate_of": None, "rejected_at": "2026-11-21T11:30:00+00:00", "resolved_at": None, "resubmitted_as": None,
    }


def test_resubmit_drops_the_fixed_file_and_resolves_the_rejection(
    sample_db: Sample, spool: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = sample_db
    fixed = tmp_path / "fixed.json"
    fixed.write_bytes(good_job(orchestrator={"job_key": "typo-fixed"}))

    out = run(capsys, "resubmit", ids.rejection[:4], "--file", str(fixed), "--spool", str(spool),
              "--database", str(path))

    assert f"rejection {ids.rejection} resolved" in out
    assert (spool / "inbox" / "typo.json").read_bytes() == fixed.read_bytes()
    assert list((spool / "rejected").iterdir()) == []
    assert "no open rejections" in run(capsys, "rejected", "--database", str(path))
    [data] = json.loads(run(capsys, "rejected", "--all", "--json", "--database", str(path)))
    assert data["resolved_at"] == "2026-11-21T12:00:00+00:00" and data["resubmitted_as"] == "typo.json"
    assert "was resubmitted already, as typo.json" in fail(capsys, "resubmit", ids.rejection, "--spool", str(spool),
                                                          "--database", str(path))


def test_a_rejected_file_moved_away_by_hand_is_said_to_be_gone(
    sample_db: Sample, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = sample_db
    (spool / "rejected" / "typo.json").rename(spool / "typo.json")

    out = " ".join(run(capsys, "rejected", "--spool", str(spool), "--database", str(path)).split())
    err = fail(capsys, "resubmit", ids.rejection, "--spool", str(spool), "--database", str(path))

    assert f"{ids.rejection} 30m typo.json (file no longer in rejected/) tuning_task" in out
    assert f"{spool / 'rejected' / 'typo.json'} is no longer there (moved by hand?): give the fixed job file" in err


def test_resubmit_of_a_file_still_bad_changes_nothing(
    sample_db: Sample, spool: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without ``--file`` the rejected file itself is resubmitted: still invalid, it stays where it is."""
    path, ids = sample_db

    err = fail(capsys, "resubmit", ids.rejection, "--spool", str(spool), "--database", str(path))

    assert "rejected:" in err and "base_model" in err
    assert list((spool / "inbox").iterdir()) == []
    assert sorted(p.name for p in (spool / "rejected").iterdir()) == ["typo.json", "typo.json.error.json"]
    assert json.loads(run(capsys, "rejected", "--json", "--database", str(path)))[0]["resolved_at"] is None


def test_an_ambiguous_prefix_lists_its_matches(sample_db: Sample, capsys: pytest.CaptureFixture[str]) -> None:
    path, ids = sample_db
    with sqlite3.connect(path) as conn:  # a second rejection whose id shares the first one's prefix
        conn.execute("INSERT INTO rejections (id, file, rejected_file, field, problem, intake_id, rejected_at) "
                     "VALUES (?, 'b.json', 'b.json', '', 'bad', 'x', '2026-11-21 11:00:00.000000')",
                     (ids.rejection[:3] + "zz",))
    err = fail(capsys, "resubmit", ids.rejection[:3], "--database", str(path))
    assert f"{ids.rejection} (typo.json)" in err and f"{ids.rejection[:3]}zz (b.json)" in err


def test_submit_refuses_a_spool_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the daemon's settings, ``submit`` used to make ./spool/inbox and say ``submitted``."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ORCHESTRATOR_CONFIG", raising=False)
    job = tmp_path / "job.json"
    job.write_bytes(good_job())

    err = fail(capsys, "submit", str(job))

    assert f"no spool inbox at {Path('spool') / 'inbox'}" in err and "--config" in err
    assert not (tmp_path / "spool").exists()


def test_submit_finds_the_config_through_orchestrator_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "srv" / "spool" / "inbox").mkdir(parents=True)
    config = tmp_path / "srv" / "orchestrator.toml"
    config.write_text('[spool]\npath = "spool"\n[database]\npath = "orchestrator.db"\n')
    monkeypatch.setenv("ORCHESTRATOR_CONFIG", str(config))
    monkeypatch.chdir(tmp_path)
    job = tmp_path / "job.json"
    job.write_bytes(good_job())

    out = run(capsys, "submit", str(job))

    assert f"submitted {tmp_path / 'srv' / 'spool' / 'inbox' / 'job.json'}" in out


def test_submit_reports_a_job_the_database_already_holds(
    sample_db: Sample, spool: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = sample_db
    job = tmp_path / "again.json"
    job.write_bytes(good_job(orchestrator={"job_key": "done"}))  # the sample's succeeded job

    err = fail(capsys, "submit", str(job), "--spool", str(spool), "--database", str(path))

    assert f"job key 'done' is already recorded as job {ids.succeeded} (succeeded)" in err
    assert "to run it again: give the file another orchestrator.job_key" in err
    job.write_bytes(good_job(orchestrator={"job_key": "bad"}))  # the sample's failed job
    err = fail(capsys, "submit", str(job), "--spool", str(spool), "--database", str(path))
    assert f"already recorded as job {ids.failed} (failed); to run it again: orchestrator retry {ids.failed}" in err
    assert list((spool / "inbox").iterdir()) == []
