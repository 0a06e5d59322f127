"""A plain configuration mistake is one line on stderr naming the key and where it was set, and exit 1.

Each case runs the real command (``python -m orchestrator run``) in a subprocess, as an operator
would, and checks there is no traceback: a setting of 0 that would divide by zero or spin, bounds
that contradict each other, a TOML syntax error (with its line and column), a typo in an
environment variable's name, a config path that is a folder, and a status port already in use.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, config: str | None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``orchestrator run`` on a new database with ``config`` as its file; it must refuse to start."""
    environ = {key: value for key, value in os.environ.items() if not key.startswith("ORCHESTRATOR_")}
    args = [sys.executable, "-m", "orchestrator", "run", "--database", str(tmp_path / "o.db"),
            "--spool", str(tmp_path / "spool")]
    if config is not None:
        path = tmp_path / "orchestrator.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
                          env={**environ, **(env or {})})


def one_line(done: subprocess.CompletedProcess[str], *, after_logs: bool = False) -> str:
    """The error line (the last line: the daemon may have logged its start-up before it)."""
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert (len(lines) >= 1 if after_logs else len(lines) == 1) and lines[-1].startswith("orchestrator: "), done.stderr
    assert all(line.startswith("{") for line in lines[:-1]), done.stderr  # JSON log lines, nothing else
    return lines[-1]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("[emulator]\ntime_scale = 0\n", "orchestrator.toml: emulator.time_scale: must be above 0"),
        ("[emulator]\nstep_seconds = 0\n", "orchestrator.toml: emulator.step_seconds: must be above 0"),
        ("[scheduler]\npoll_min_interval = 90\n",
         "orchestrator.toml: scheduler.poll_min_interval: 90 is above scheduler.poll_max_interval (60, from "),
        ("[scheduler]\nbackoff_base = 10\nbackoff_cap = 5\n",
         "orchestrator.toml: scheduler.backoff_base: 10 is above scheduler.backoff_cap (5, from "),
        ("[scheduler]\nstall_timeout = 30\n",
         "orchestrator.toml: scheduler.poll_max_interval: 60 is above scheduler.stall_timeout (30, from "),
        ("[status]\nmax_write_age = 60\n",
         "orchestrator.toml: scheduler.backoff_cap: 300 is above status.max_write_age (60, from "),
        ("[status]\nport = 70000\n", "orchestrator.toml: status.port: must be at most 65535"),
        ("[api]\nbase_url = 'x'\n[scheduler\n", "orchestrator.toml: line 3, column 11: not valid TOML: "),
    ],
)
def test_a_bad_setting_in_the_file_is_one_line(tmp_path: Path, config: str, expected: str) -> None:
    assert expected in one_line(run(tmp_path, config))


def test_a_contradiction_names_the_variable_each_side_came_from(tmp_path: Path) -> None:
    line = one_line(run(tmp_path, "[scheduler]\npoll_max_interval = 10\n",
                        {"ORCHESTRATOR_SCHEDULER_POLL_MIN_INTERVAL": "20"}))
    assert line == (
        "orchestrator: environment ORCHESTRATOR_SCHEDULER_POLL_MIN_INTERVAL: scheduler.poll_min_interval: 20 is above "
        f"scheduler.poll_max_interval (10, from {tmp_path / 'orchestrator.toml'})"
    )


def test_a_typo_in_an_environment_variable_names_it_and_the_closest_setting(tmp_path: Path) -> None:
    line = one_line(run(tmp_path, None, {"ORCHESTRATOR_SCHEDULER_MAX_ACTIV_JOBS": "2"}))
    assert line == (
        "orchestrator: environment ORCHESTRATOR_SCHEDULER_MAX_ACTIV_JOBS: names no setting; did you mean "
        "ORCHESTRATOR_SCHEDULER_MAX_ACTIVE_JOBS ([scheduler] max_active_jobs)?"
    )


def test_a_config_path_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "orchestrator", "run", "--config", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, cwd=REPO, check=False)
    assert one_line(done) == f"orchestrator: {tmp_path}: cannot be read (Is a directory)"


def test_a_status_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line(run(tmp_path, f"[status]\nenabled = true\nport = {port}\n"), after_logs=True)
    assert line.startswith(f"orchestrator: status.port: cannot listen on 127.0.0.1:{port}: Address already in use")
