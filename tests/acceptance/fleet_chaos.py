"""The fleet chaos run: three daemons on one PostgreSQL database, each SIGKILLed and restarted at random.

The single-daemon run (:mod:`tests.acceptance.chaos`) proves the promises against one daemon and its
SQLite file; this one proves them for the deployment of DESIGN.md's "Scale": several daemons claiming
from one PostgreSQL queue, any of which can die at any instant. The emulator runs in this process
with the same fault plan and, unlike the single run, *no* quota of its own, so the peak of jobs it
saw active at once measures the daemons' shared ``max_active_jobs`` and nothing else. Job files go
into every daemon's spool folder (the daemons given the same folder share it), one file twice into
two folders. Throughout, one daemon at a time is killed and restarted while the others carry on.

At the end (faults cleared, every daemon stopped with SIGTERM) the counts are: no file lost or
counted twice, at most one successful create per job, every snapshot once, every terminal state the
emulator's, the active-job peak within the cap, and neither the API key nor the database password in
any log, spool file or text column.

``tests/acceptance/test_fleet_chaos.py`` runs a short version in CI; ``bench/fleet_chaos.py`` a long one.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from sqlalchemy.engine import make_url

from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.intake import ACCEPTED, INBOX, PROCESSING, REJECTED, SEPARATOR, drop_job_file
from tests.acceptance.chaos import (
    API_KEY,
    EXPECTED_STATE,
    TERMINAL,
    _faults,
    daemon_env,
    fault_plan,
    job_file,
    poll_until,
)

#: The active-job cap every daemon is given (ORCHESTRATOR_SCHEDULER_MAX_ACTIVE_JOBS in ``daemon_env``).
CAP = 4


@dataclass(frozen=True, slots=True)
class FleetChaosConfig:
    """How big and how rough a run is."""

    jobs: int = 30
    #: The spool folder of each daemon, by index: (0, 1, 2) gives each its own; (0, 1, 1) makes two share one.
    spools: tuple[int, ...] = (0, 1, 2)
    kills: int = 9
    cancels: int = 2
    seed: int = 0
    #: Seconds between two kills (one daemon each time): uniform in this range.
    interval: tuple[float, float] = (0.5, 2.0)
    time_scale: float = 40.0
    deadline: float = 240.0
    fault_rate: float = 1.0


@dataclass
class FleetChaosReport:
    """What happened, and the invariant counts (all but the first block must be zero)."""

    config: dict[str, Any]
    files_dropped: int = 0
    jobs: int = 0
    rejected: int = 0
    kills: int = 0
    starts: int = 0
    cancels_requested: int = 0
    daemons_seen: int = 0
    peak_active_jobs: int = 0
    final_exit_codes: list[int | None] = field(default_factory=list)
    seconds: float = 0.0
    terminal_states: dict[str, int] = field(default_factory=dict)
    faults_injected: dict[str, int] = field(default_factory=dict)
    creates_sent: int = 0
    # the invariants
    lost_files: int = 0
    files_counted_twice: int = 0
    jobs_without_file: int = 0
    unfinished_jobs: int = 0
    duplicate_creates: int = 0
    duplicate_snapshots: int = 0
    missing_snapshots: int = 0
    extra_snapshots: int = 0
    wrong_terminal_states: int = 0
    cap_exceeded_by: int = 0
    secret_leaks: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def violations(self) -> dict[str, Any]:
        """The invariant counts that are not zero."""
        names = ("lost_files", "files_counted_twice", "jobs_without_file", "unfinished_jobs", "duplicate_creates",
                 "duplicate_snapshots", "missing_snapshots", "extra_snapshots", "wrong_terminal_states",
                 "cap_exceeded_by", "secret_leaks")
        bad = {name: getattr(self, name) for name in names if getattr(self, name)}
        if any(code != 0 for code in self.final_exit_codes):
            bad["final_exit_codes"] = self.final_exit_codes
        return bad

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


class FleetChaosRun:
    """One run in ``root`` against the (migrated or empty) PostgreSQL database at ``database_url``."""

    def __init__(self, root: Path, database_url: str, config: FleetChaosConfig) -> None:
        self.root = root
        self.database_url = database_url
        self.config = config
        self.rng = random.Random(config.seed)
        self.spools = [root / f"spool-{index}" for index in sorted(set(config.spools))]
        self.daemons: list[asyncio.subprocess.Process | None] = [None] * len(config.spools)
        #: The ``daemon_starting`` lines each daemon's log should hold once its latest start got going.
        self.starts = [0] * len(config.spools)
        self.report = FleetChaosReport(config=asdict(config))
        self.dropped: list[tuple[Path, str]] = []
        self.pending: list[tuple[Path, str, bytes]] = self._files()

    def _files(self) -> list[tuple[Path, str, bytes]]:
        files = [(self.spools[i % len(self.spools)], f"job-{i:04d}.json", job_file(self.config.seed, i, self.rng))
                 for i in range(self.config.jobs)]
        # The same job dropped on two machines: one job, one duplicate rejection.
        files.append((self.spools[-1], "job-0000-elsewhere.json", files[0][2]))
        self.rng.shuffle(files)
        return files

    async def run(self) -> FleetChaosReport:
        started = time.monotonic()
        settings = EmulatorSettings(time_scale=self.config.time_scale, api_keys=(API_KEY,), seed=self.config.seed)
        async with running_emulator(settings, host="127.0.0.1", port=0) as url, aiohttp.ClientSession() as http:
            self.url, self.http = url, http
            await self._admin("POST", "/_emulator/faults", fault_plan(self.config.seed, self.config.fault_rate))
            try:
                async with asyncio.timeout(self.config.deadline):
                    for index in range(len(self.daemons)):
                        await self._start(index)
                    await self._kill_loop()
                    self._drop(len(self.pending))
                    await poll_until(self._all_done, within=self.config.deadline, interval=0.25)
                    await self._stop_all()
            finally:
                for daemon in self.daemons:
                    if daemon is not None and daemon.returncode is None:
                        daemon.kill()
                        await daemon.wait()
            await self._admin("DELETE", "/_emulator/faults")
            await self._check(await self._admin("GET", "/_emulator/stats"))
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    # -- driving ------------------------------------------------------------------------------

    async def _kill_loop(self) -> None:
        per_round = max(1, len(self.pending) // (self.config.kills + 1))
        self._drop(per_round)
        cancel_rounds = set(self.rng.sample(range(self.config.kills), min(self.config.cancels, self.config.kills)))
        for round_no in range(self.config.kills):
            victim = self.rng.randrange(len(self.daemons))
            if self.rng.random() < 0.8:
                # Most kills land on a daemon at work (claims, creates, polls); the rest during its
                # start-up (imports, migrations under the advisory lock, intake recovery).
                await self._started(victim)
            await asyncio.sleep(self.rng.uniform(*self.config.interval))
            daemon = self.daemons[victim]
            assert daemon is not None
            if daemon.returncode is not None:
                raise AssertionError(f"daemon {victim} exited on its own with {daemon.returncode}")
            daemon.send_signal(signal.SIGKILL)
            await daemon.wait()
            self.report.kills += 1
            self._drop(per_round)
            if round_no in cancel_rounds:
                await self._cancel_one()
            await self._start(victim)

    def _log(self, index: int) -> Path:
        return self.root / f"daemon-{index}.log"

    def _starts_logged(self, index: int) -> int:
        path = self._log(index)
        return path.read_text(encoding="utf-8", errors="replace").count('"daemon_starting"') if path.exists() else 0

    async def _started(self, index: int) -> None:
        """Wait (at most 20 s) until the daemon's latest start has logged ``daemon_starting``."""
        async def logged() -> bool:
            daemon = self.daemons[index]
            return daemon is None or daemon.returncode is not None or self._starts_logged(index) >= self.starts[index]

        await poll_until(logged, within=20, interval=0.05)

    async def _start(self, index: int) -> None:
        self.report.starts += 1
        self.starts[index] = self._starts_logged(index) + 1
        spool = self.spools[sorted(set(self.config.spools)).index(self.config.spools[index])]
        env = daemon_env(self.root, self.url)
        del env["ORCHESTRATOR_DATABASE_PATH"]
        env.update({"ORCHESTRATOR_DATABASE_URL": self.database_url, "ORCHESTRATOR_SPOOL_PATH": str(spool),
                    "ORCHESTRATOR_SCHEDULER_MAX_ACTIVE_JOBS": str(CAP)})
        log = await asyncio.to_thread(open, self._log(index), "ab")
        with log:
            self.daemons[index] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "orchestrator", "run", env=env, stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=log, cwd=self.root,
            )

    async def _stop_all(self) -> None:
        for daemon in self.daemons:
            assert daemon is not None
            daemon.send_signal(signal.SIGTERM)
        for daemon in self.daemons:
            assert daemon is not None
            try:
                self.report.final_exit_codes.append(await asyncio.wait_for(daemon.wait(), 15))
            except TimeoutError:
                self.report.problems.append("SIGTERM did not stop a daemon within 15 s")
                daemon.kill()
                self.report.final_exit_codes.append(await daemon.wait())

    def _drop(self, count: int) -> None:
        for spool, name, data in self.pending[:count]:
            drop_job_file(spool, name, data)
            self.dropped.append((spool, name))
        del self.pending[:count]
        self.report.files_dropped = len(self.dropped)

    async def _cancel_one(self) -> None:
        """``orchestrator cancel`` on some unfinished job, as a user on any machine would."""
        ids = self._query("SELECT id FROM jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY id")
        if not ids:
            return
        env = daemon_env(self.root, self.url)
        env["ORCHESTRATOR_DATABASE_URL"] = self.database_url
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator", "cancel", self.rng.choice(ids)[0], env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        if await process.wait() == 0:
            self.report.cancels_requested += 1

    async def _all_done(self) -> bool:
        for index, daemon in enumerate(self.daemons):
            if daemon is not None and daemon.returncode is not None:
                raise AssertionError(f"daemon {index} exited on its own with {daemon.returncode}")
        for spool in self.spools:
            if any((spool / INBOX).iterdir()) or any((spool / PROCESSING).iterdir()):
                return False
        accepted = sum(len(list((spool / ACCEPTED).iterdir())) for spool in self.spools)
        rows = self._query("SELECT state FROM jobs")
        return len(rows) == accepted and all(state in TERMINAL for (state,) in rows)

    def _query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """A read-only query on the shared database, as a dashboard would run it."""
        url = make_url(self.database_url)
        with psycopg.connect(host=url.host, port=url.port, user=url.username, password=url.password,
                             dbname=url.database, autocommit=True) as conn:
            conn.execute("SET default_transaction_read_only = on")
            return list(conn.execute(sql, params).fetchall())  # type: ignore[arg-type]

    async def _admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.url + path, json=body) as response:
            return await response.json(content_type=None)

    async def _api(self, path: str) -> Any:
        async with self.http.get(self.url + path, headers={"x-goog-api-key": API_KEY}) as response:
            return await response.json(content_type=None)

    # -- checking -----------------------------------------------------------------------------

    async def _check(self, stats: Mapping[str, Any]) -> None:
        self._check_files()
        await self._check_remote(stats)
        self._check_secrets()
        self.report.daemons_seen = len(self._query("SELECT id FROM daemons"))

    def _check_files(self) -> None:
        """Promise 1 across the fleet: each dropped file is one job or one rejection, in its own spool."""
        accepted: dict[tuple[Path, str], str] = {}
        rejected: list[tuple[Path, str]] = []
        for spool in self.spools:
            for path in (spool / ACCEPTED).iterdir():
                job_id, _, name = path.name.partition(SEPARATOR)
                accepted[(spool, name)] = job_id
            rejected += [(spool, p.name) for p in (spool / REJECTED).iterdir() if not p.name.endswith(".error.json")]
        seen = Counter([*accepted, *rejected])
        self.report.lost_files = sum(1 for dropped in self.dropped if seen[dropped] == 0)
        self.report.files_counted_twice = sum(n - 1 for n in seen.values() if n > 1)
        self.report.rejected = len(rejected)
        jobs = dict(self._query("SELECT id, source_file FROM jobs"))
        self.report.jobs = len(jobs)
        by_job = {job_id: name for (_spool, name), job_id in accepted.items()}
        self.report.jobs_without_file = sum(1 for job_id, source in jobs.items() if by_job.get(job_id) != source)
        self.report.jobs_without_file += sum(1 for job_id in by_job if job_id not in jobs)

    async def _check_remote(self, stats: Mapping[str, Any]) -> None:
        """Promises 2-4, and the cap: one create per job, snapshots once, the API's states, peak ≤ cap."""
        creates: dict[str, int] = await self._admin("GET", "/_emulator/creates")
        self.report.creates_sent = sum(stats.get("requests", {}).get("create", {}).values())
        self.report.duplicate_creates = sum(n - 1 for n in creates.values() if n > 1)
        self.report.faults_injected = _faults(stats)
        self.report.peak_active_jobs = int(stats["peak_active_jobs"])
        self.report.cap_exceeded_by = max(0, self.report.peak_active_jobs - CAP)
        remote = {job["name"]: job for job in (await self._admin("GET", "/_emulator/jobs"))["jobs"]}
        rows = self._query("SELECT id, state, tuned_model_id FROM jobs")
        self.report.terminal_states = dict(Counter(state for _, state, _ in rows))
        self.report.unfinished_jobs = sum(1 for _, state, _ in rows if state not in TERMINAL)
        for job_id, state, model_id in rows:
            name = f"tunedModels/{model_id}"
            if name not in remote:
                continue  # never created (cancelled while queued, refused at create)
            if state != EXPECTED_STATE.get(remote[name]["ending"]):
                self.report.wrong_terminal_states += 1
                self.report.problems.append(f"job {job_id}: {state}, the API says {remote[name]['ending']}")
            model = await self._api(f"/v1beta/{name}")
            reported = {s.get("step", 0) for s in model.get("tuningTask", {}).get("snapshots", [])}
            steps = [step for (step,) in self._query("SELECT step FROM snapshots WHERE job_id = %s", job_id)]
            self.report.duplicate_snapshots += len(steps) - len(set(steps))
            self.report.missing_snapshots += len(reported - set(steps))
            self.report.extra_snapshots += len(set(steps) - reported)

    def _check_secrets(self) -> None:
        """Promise 7: neither the API key nor the database password in a log, a spool file or a text column."""
        secrets = [API_KEY.encode()]
        password = make_url(self.database_url).password
        if password:
            secrets.append(password.encode())
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.is_symlink() and any(secret in path.read_bytes() for secret in secrets):
                self.report.secret_leaks.append(str(path.relative_to(self.root)))
        texts = self._query(
            "SELECT coalesce(last_error, '') || coalesce(error_message, '') FROM jobs"
            " UNION ALL SELECT detail FROM events UNION ALL SELECT problem FROM rejections"
        )
        if any(secret.decode() in text for (text,) in texts for secret in secrets):
            self.report.secret_leaks.append("database text columns")


async def run_fleet_chaos(root: Path, database_url: str, config: FleetChaosConfig) -> FleetChaosReport:
    """Run one fleet chaos run in ``root`` (which it fills) against ``database_url``, and report."""
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    return await FleetChaosRun(root, database_url, config).run()


__all__ = ["CAP", "FleetChaosConfig", "FleetChaosReport", "run_fleet_chaos"]
