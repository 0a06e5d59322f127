"""The chaos run: the daemon as a subprocess, faults on, SIGKILLed at random moments, restarted until done.

It is the proof of DESIGN.md's promises 1-4 and 7 (and 6 for the final stop), and of the webhooks'
at-least-once delivery: a receiver in this process fails a fifth of its requests, and every job's
ending must reach it, verified, under one ``webhook-id``. The emulator runs in this
process on a free loopback port with a fault plan (503s, 429s with RetryInfo, dropped connections,
lost create responses, expired tokens, operation lists missing on v1, jobs that fail); the daemon runs
as ``python -m orchestrator run`` with an API key the emulator enforces. Job files, good and bad, are
dropped before and between the kills; a few jobs are cancelled through the CLI while all this goes on.
At the end, with the faults cleared, the database, the spool and the emulator's introspection are
compared, and every output of the run (logs, database, spool files) is searched for the API key.

``backend="vertex"`` runs the same on the Vertex AI backend (``chaos_vertex.py`` says what differs).
``tests/acceptance/test_chaos.py`` runs a short version of each in CI; ``bench/chaos.py`` runs a long one.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from standardwebhooks import Webhook

from orchestrator.emulator import EmulatorSettings, running_emulator
from orchestrator.intake import ACCEPTED, INBOX, PROCESSING, REJECTED, SEPARATOR, drop_job_file
from tests.acceptance import chaos_vertex
from tests.corpus import BAD_JOB_FILES, good_job

#: The API key of the run: the emulator accepts only it, and it must appear in no output.
API_KEY = "chaos-key-6f1d2b9e4c7a0835"
#: The webhook signing secret of the run (Standard Webhooks form); it too must appear in no output.
WEBHOOK_SECRET = "whsec_Y2hhb3Mtd2ViaG9vay1zZWNyZXQtOWE0ZDE="
WEBHOOK_SECRET_ENV = "CHAOS_WEBHOOK_SECRET"
#: The share of webhook requests the receiver answers with a 500.
WEBHOOK_FAILURE_RATE = 0.2
TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
#: The emulator's ending of a remote job → the state our job must end in.
EXPECTED_STATE = {"succeeded": "succeeded", "failed": "failed", "cancelled": "cancelled"}


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """How big and how rough a run is."""

    jobs: int = 24
    bad_files: int = 6
    kills: int = 8
    cancels: int = 2
    seed: int = 0
    #: Seconds the daemon lives between kills: uniform in this range (start-up itself takes ~0.5 s).
    uptime: tuple[float, float] = (0.4, 2.5)
    time_scale: float = 40.0
    #: Seconds the whole run may take before it is declared stuck.
    deadline: float = 240.0
    fault_rate: float = 1.0
    #: ``gemini`` or ``vertex``: the tuning service the daemon drives.
    backend: str = "gemini"


@dataclass
class ChaosReport:
    """What happened and the invariant counts (every count but the first block must be zero)."""

    config: dict[str, Any]
    files_dropped: int = 0
    jobs: int = 0
    rejected: int = 0
    kills: int = 0
    starts: int = 0
    cancels_requested: int = 0
    final_exit_code: int | None = None
    final_stop_seconds: float = 0.0
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
    secret_leaks: list[str] = field(default_factory=list)
    #: Webhooks: endings never delivered, endings seen under two ids, requests with a bad signature.
    unannounced_endings: int = 0
    endings_with_two_ids: int = 0
    bad_signatures: int = 0
    webhook_requests: int = 0
    webhook_failures_injected: int = 0
    #: Warnings and errors the daemon logged, by event (the run's story, not invariants).
    log_warnings: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def violations(self) -> dict[str, Any]:
        """The invariant counts that are not zero."""
        names = ("lost_files", "files_counted_twice", "jobs_without_file", "unfinished_jobs", "duplicate_creates",
                 "duplicate_snapshots", "missing_snapshots", "extra_snapshots", "wrong_terminal_states",
                 "secret_leaks", "unannounced_endings", "endings_with_two_ids", "bad_signatures")
        bad = {name: getattr(self, name) for name in names if getattr(self, name)}
        if self.final_exit_code != 0:
            bad["final_exit_code"] = self.final_exit_code
        return bad

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def fault_plan(seed: int, rate: float) -> dict[str, Any]:
    """Faults on every route, at rates that make each kind fire many times in a run of a minute."""
    return {
        "seed": seed,
        "rules": [
            {"kind": "lost_response", "routes": ["create"], "probability": min(1.0, 0.35 * rate)},
            # One of each transient kind on a fixed call as well, so that a short run sees every kind
            # whatever the dice say (the assertions name them).
            {"kind": "http_error", "status": 503, "calls": [5]},
            {"kind": "rate_limit", "retry_delay_seconds": 0.3, "calls": [9]},
            {"kind": "drop_connection", "calls": [13]},
            {"kind": "http_error", "status": 503, "probability": min(1.0, 0.06 * rate)},
            {"kind": "http_error", "status": 500, "routes": ["create"], "probability": min(1.0, 0.1 * rate)},
            {"kind": "rate_limit", "retry_delay_seconds": 0.3, "probability": min(1.0, 0.03 * rate)},
            {"kind": "drop_connection", "probability": min(1.0, 0.04 * rate)},
            {"kind": "token_expired", "probability": min(1.0, 0.02 * rate)},
            # Operation lists on some versions only: the v1 call of a list often 404s, v1beta answers.
            {"kind": "http_error", "status": 404, "routes": ["list_operations"], "probability": min(1.0, 0.4 * rate)},
            {"kind": "fail_job", "step": 3, "code": 13, "probability": 0.1},
        ],
    }


def daemon_env(root: Path, base_url: str, webhook_url: str | None = None) -> dict[str, str]:
    """The daemon's settings, all through the environment (``ORCHESTRATOR_SECTION_KEY``).

    With ``webhook_url``, job endings are announced there, signed with :data:`WEBHOOK_SECRET`.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRATOR_")}
    if webhook_url is not None:
        env.update({
            WEBHOOK_SECRET_ENV: WEBHOOK_SECRET,
            "ORCHESTRATOR_NOTIFY_WEBHOOK_URL": webhook_url,
            "ORCHESTRATOR_NOTIFY_WEBHOOK_SECRET_ENV": WEBHOOK_SECRET_ENV,
            "ORCHESTRATOR_NOTIFY_TIMEOUT": "2",
            "ORCHESTRATOR_NOTIFY_BACKOFF_MIN": "0.05",
            "ORCHESTRATOR_NOTIFY_BACKOFF_MAX": "0.5",
        })
    env.update({
        "GEMINI_API_KEY": API_KEY,
        "ORCHESTRATOR_API_BASE_URL": base_url,
        "ORCHESTRATOR_API_AUTH": "api_key",
        "ORCHESTRATOR_API_TIMEOUT": "5",
        "ORCHESTRATOR_SPOOL_PATH": str(root / "spool"),
        "ORCHESTRATOR_SPOOL_RESCAN_INTERVAL": "0.5",
        "ORCHESTRATOR_SPOOL_SETTLE_SECONDS": "0.3",
        "ORCHESTRATOR_DATABASE_PATH": str(root / "orchestrator.db"),
        "ORCHESTRATOR_SCHEDULER_MAX_ACTIVE_JOBS": "8",
        "ORCHESTRATOR_SCHEDULER_POLL_MIN_INTERVAL": "0.1",
        "ORCHESTRATOR_SCHEDULER_POLL_MAX_INTERVAL": "0.5",
        "ORCHESTRATOR_SCHEDULER_BACKOFF_BASE": "0.05",
        "ORCHESTRATOR_SCHEDULER_BACKOFF_CAP": "1.0",
        "ORCHESTRATOR_SCHEDULER_LEASE_SECONDS": "10",
        "ORCHESTRATOR_DAEMON_SHUTDOWN_GRACE": "1",
        "ORCHESTRATOR_DAEMON_LOG_FORMAT": "json",
        "ORCHESTRATOR_DAEMON_LOG_LEVEL": "debug",
    })
    return env


def job_file(seed: int, index: int, rng: random.Random) -> bytes:
    """A good job of 10-40 steps (0.5-2 s of real time at the default scale)."""
    examples = [{"text_input": f"{index} {n}", "output": f"{n + 1}"} for n in range(rng.randint(4, 16))]
    return good_job(
        display_name=f"chaos {index}",
        tuning_task={
            "hyperparameters": {"batch_size": 2, "learning_rate": 0.001, "epoch_count": rng.randint(5, 6)},
            "training_data": {"examples": {"examples": examples}},
        },
        orchestrator={"job_key": f"chaos-{seed}-{index}"},
    )


class WebhookReceiver:
    """The run's webhook endpoint: verifies each request, fails a fifth of them, records the rest.

    ``delivered`` maps each webhook-id it accepted to the (job id, event type) of its payload.
    """

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.verifier = Webhook(WEBHOOK_SECRET)
        self.delivered: dict[str, tuple[str, str]] = {}
        self.requests = 0
        self.failures = 0
        self.bad_signatures = 0

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        body = await request.read()
        try:
            payload = self.verifier.verify(body, dict(request.headers))
        except Exception:
            self.bad_signatures += 1
            return web.Response(status=400)
        if self.rng.random() < WEBHOOK_FAILURE_RATE:
            self.failures += 1
            return web.Response(status=500)
        self.delivered[request.headers["webhook-id"]] = (payload["data"]["job_id"], payload["type"])
        return web.Response(status=204)

    def announced(self) -> dict[tuple[str, str], set[str]]:
        """Each (job id, event type) delivered, with the ids it came under."""
        ids: dict[tuple[str, str], set[str]] = {}
        for message_id, ending in self.delivered.items():
            ids.setdefault(ending, set()).add(message_id)
        return ids


class ChaosRun:
    """One run in ``root``; :meth:`run` returns the report."""

    def __init__(self, root: Path, config: ChaosConfig) -> None:
        self.root = root
        self.config = config
        self.rng = random.Random(config.seed)
        self.spool = root / "spool"
        self.db = root / "orchestrator.db"
        self.log_path = root / "daemon.log"
        self.report = ChaosReport(config=asdict(config))
        self.dropped: list[str] = []
        self.writers: set[asyncio.Task[None]] = set()
        self.vertex = config.backend == "vertex"
        self.daemon: asyncio.subprocess.Process | None = None
        #: The Vertex run's service-account key: outside ``root``, which is searched for secrets.
        self.key_file = root.with_name(root.name + "-key.json")
        self.pending_files: list[tuple[str, bytes]] = self._files()
        self.receiver = WebhookReceiver(config.seed)

    def _files(self) -> list[tuple[str, bytes]]:
        make = chaos_vertex.job_file if self.vertex else job_file
        files = [(f"job-{i:04d}.json", make(self.config.seed, i, self.rng)) for i in range(self.config.jobs)]
        usable = [bad for bad in BAD_JOB_FILES if bad.max_bytes == BAD_JOB_FILES[0].max_bytes]
        for i in range(self.config.bad_files):
            bad = usable[(self.config.seed + i * 7) % len(usable)]
            files.append((f"bad-{i:03d}.json", bad.data))
        files.append(("job-0000-again.json", files[0][1]))  # the same job dropped twice
        self.rng.shuffle(files)
        return files

    async def run(self) -> ChaosReport:
        started = time.monotonic()
        settings = EmulatorSettings(time_scale=self.config.time_scale, api_keys=(API_KEY,), seed=self.config.seed)
        plan = fault_plan(self.config.seed, self.config.fault_rate)
        if self.vertex:  # tokens enforced: the daemon's own (issued by /token) and the checker's
            settings = EmulatorSettings(time_scale=self.config.time_scale, seed=self.config.seed,
                                        tokens=(f"{chaos_vertex.READER_TOKEN}={chaos_vertex.PROJECT}",),
                                        vertex_max_concurrent_jobs=0)
            plan = chaos_vertex.fault_plan(self.config.seed, self.config.fault_rate)
        async with (
            running_emulator(settings, host="127.0.0.1", port=0) as url,
            aiohttp.ClientSession() as http,
            _serving(self.receiver.handle) as webhook_url,
        ):
            self.url, self.http, self.webhook_url = url, http, webhook_url
            if self.vertex:
                await asyncio.to_thread(chaos_vertex.write_key_file, self.key_file, f"{url}/token")
            await self._admin("POST", "/_emulator/faults", plan)
            try:
                async with asyncio.timeout(self.config.deadline):
                    await self._kill_loop()
                    await self._final_run()
            finally:
                await self._kill_leftover()
            await self._admin("DELETE", "/_emulator/faults")
            stats = await self._admin("GET", "/_emulator/stats")
            await self._check(stats)
        self.report.seconds = round(time.monotonic() - started, 1)
        return self.report

    # -- driving ------------------------------------------------------------------------------

    async def _kill_loop(self) -> None:
        per_round = max(1, len(self.pending_files) // (self.config.kills + 1))
        self._drop(per_round)
        cancel_rounds = set(self.rng.sample(range(1, self.config.kills + 1), min(self.config.cancels,
                                                                                 self.config.kills)))
        for round_no in range(1, self.config.kills + 1):
            starts_logged = self._log_text().count('"daemon_starting"')
            daemon = await self._start()
            if self.rng.random() < 0.75:
                # Most kills land after start-up (intake, creates, polls); the rest during it
                # (imports, migrations, recovery of the previous run's leftovers).
                await self._started(daemon, starts_logged)
            uptime = self.rng.uniform(*self.config.uptime)
            await asyncio.sleep(uptime / 2)
            self._drop(per_round)
            if round_no in cancel_rounds:
                await self._cancel_one()
            await asyncio.sleep(uptime / 2)
            daemon.send_signal(signal.SIGKILL)
            await daemon.wait()
            self.report.kills += 1

    async def _final_run(self) -> None:
        self._drop(len(self.pending_files))
        await asyncio.gather(*self.writers)
        daemon = await self._start()

        async def done() -> bool:
            if daemon.returncode is not None:
                raise AssertionError(f"the daemon exited on its own with {daemon.returncode}; see {self.log_path}")
            return self._all_done()

        await poll_until(done, within=self.config.deadline, interval=0.2)
        stop_started = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        try:
            self.report.final_exit_code = await asyncio.wait_for(daemon.wait(), 10)
        except TimeoutError:
            daemon.kill()
            self.report.final_exit_code = await daemon.wait()
            self.report.problems.append("SIGTERM did not stop the daemon within 10 s")
        self.report.final_stop_seconds = round(time.monotonic() - stop_started, 2)

    async def _kill_leftover(self) -> None:
        """A run that failed half-way (its deadline) leaves no daemon running behind it."""
        if self.daemon is not None and self.daemon.returncode is None:
            self.daemon.kill()
            await self.daemon.wait()

    async def _start(self) -> asyncio.subprocess.Process:
        self.report.starts += 1
        log = await asyncio.to_thread(open, self.log_path, "ab")
        with log:
            self.daemon = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "orchestrator", "run", env=self._env(),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.root,
            )
            return self.daemon

    async def _started(self, daemon: asyncio.subprocess.Process, logged_before: int) -> None:
        """Wait (at most 30 s: a loaded machine starts slowly) until this start has logged ``daemon_starting``."""
        async def logged() -> bool:
            return daemon.returncode is not None or self._log_text().count('"daemon_starting"') > logged_before

        await poll_until(logged, within=30, interval=0.02)

    def _env(self) -> dict[str, str]:
        env = daemon_env(self.root, self.url, self.webhook_url)
        if self.vertex:
            env.update(chaos_vertex.daemon_env(self.root, self.key_file))
        return env

    def _log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def _drop(self, count: int) -> None:
        """Drop the next files: most atomically, every seventh by a slow writer straight into the inbox."""
        for name, data in self.pending_files[:count]:
            if len(self.dropped) % 7 == 3:
                self.writers.add(asyncio.create_task(self._write_slowly(self.spool / INBOX / name, data)))
            else:
                drop_job_file(self.spool, name, data)
            self.dropped.append(name)
        del self.pending_files[:count]
        self.report.files_dropped = len(self.dropped)

    @staticmethod
    async def _write_slowly(path: Path, data: bytes) -> None:
        """Half the file, a pause the daemon may claim (or be killed) in, then the rest."""
        handle = await asyncio.to_thread(open, path, "wb")
        with handle:
            handle.write(data[: len(data) // 2])
            handle.flush()
            await asyncio.sleep(0.15)
            handle.write(data[len(data) // 2 :])

    async def _cancel_one(self) -> None:
        """``orchestrator cancel`` on some unfinished job, as a user would, while the daemon runs."""
        ids = self._query("SELECT id FROM jobs WHERE state NOT IN ('succeeded', 'failed', 'cancelled') ORDER BY id")
        if not ids:
            return
        job_id = self.rng.choice(ids)[0]
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "orchestrator", "cancel", job_id, "--database", str(self.db),
            env=self._env(), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
        )
        if await process.wait() == 0:
            self.report.cancels_requested += 1

    def _all_done(self) -> bool:
        if any((self.spool / INBOX).iterdir()) or any((self.spool / PROCESSING).iterdir()):
            return False
        accepted = len(list((self.spool / ACCEPTED).iterdir()))
        rows = self._query("SELECT id, state FROM jobs")
        if len(rows) != accepted or any(state not in TERMINAL for _, state in rows):
            return False
        return not self._unannounced(rows)

    def _unannounced(self, rows: list[tuple[Any, ...]]) -> list[str]:
        """The terminal jobs among ``rows`` whose ending the receiver has not accepted yet."""
        announced = self.receiver.announced()
        return [job_id for job_id, state in rows if state in TERMINAL and (job_id, f"job.{state}") not in announced]

    def _query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """A read-only query, as people run them beside the daemon; empty before the tables exist."""
        if not self.db.exists():
            return []
        connection = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return []
        finally:
            connection.close()

    async def _admin(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, self.url + path, json=body) as response:
            return await response.json(content_type=None)

    async def _api(self, path: str) -> Any:
        async with self.http.get(self.url + path, headers={"x-goog-api-key": API_KEY}) as response:
            return await response.json(content_type=None)

    # -- checking -----------------------------------------------------------------------------

    async def _check(self, stats: Mapping[str, Any]) -> None:
        self._check_files()
        await (self._check_vertex(stats) if self.vertex else self._check_remote(stats))
        self._check_secrets()
        self._check_webhooks()
        self._count_log_warnings()

    def _check_webhooks(self) -> None:
        """Every ending delivered at least once, and never under two different ids."""
        rows = self._query("SELECT id, state FROM jobs")
        missing = self._unannounced(rows)
        self.report.unannounced_endings = len(missing)
        self.report.problems.extend(f"job {job_id}: ending never delivered" for job_id in missing)
        twice = {ending: ids for ending, ids in self.receiver.announced().items() if len(ids) > 1}
        self.report.endings_with_two_ids = len(twice)
        self.report.problems.extend(f"{ending}: delivered under {sorted(ids)}" for ending, ids in twice.items())
        self.report.bad_signatures = self.receiver.bad_signatures
        self.report.webhook_requests = self.receiver.requests
        self.report.webhook_failures_injected = self.receiver.failures

    def _count_log_warnings(self) -> None:
        events: Counter[str] = Counter()
        for line in self._log_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                events["(not a JSON log line)"] += 1
                continue
            if isinstance(record, dict) and record.get("level") in ("warning", "error", "critical"):
                events[str(record.get("event"))] += 1
        self.report.log_warnings = dict(events)

    def _check_files(self) -> None:
        """Promise 1: each dropped file is exactly one job or one rejection."""
        accepted = {p.name.partition(SEPARATOR)[2]: p.name.partition(SEPARATOR)[0]
                    for p in (self.spool / ACCEPTED).iterdir()}
        rejected = [p.name for p in (self.spool / REJECTED).iterdir() if not p.name.endswith(".error.json")]
        seen = Counter([*accepted, *rejected])
        self.report.lost_files = sum(1 for name in self.dropped if seen[name] == 0)
        self.report.files_counted_twice = sum(n - 1 for n in seen.values() if n > 1)
        self.report.rejected = len(rejected)
        jobs = dict(self._query("SELECT id, source_file FROM jobs"))
        self.report.jobs = len(jobs)
        self.report.jobs_without_file = sum(1 for job_id, source in jobs.items() if accepted.get(source) != job_id)
        self.report.jobs_without_file += sum(1 for job_id in accepted.values() if job_id not in jobs)
        for name in rejected:
            if not (self.spool / REJECTED / f"{name}.error.json").exists():
                self.report.problems.append(f"rejected/{name} has no error file")
        # The rejections table and rejected/ agree: one row per rejected file, none without its file.
        rows = Counter(name for (name,) in self._query("SELECT rejected_file FROM rejections"))
        for name in set(rows) | set(rejected):
            if rows[name] != 1 or name not in rejected:
                self.report.problems.append(f"rejected/{name}: {rows[name]} rejections rows, file there: "
                                            f"{name in rejected}")

    async def _check_remote(self, stats: Mapping[str, Any]) -> None:
        """Promises 2-4: one create per job, snapshots once and all, terminal states as the API's."""
        creates: dict[str, int] = await self._admin("GET", "/_emulator/creates")
        self.report.creates_sent = sum(stats.get("requests", {}).get("create", {}).values())
        self.report.duplicate_creates = sum(n - 1 for n in creates.values() if n > 1)
        self.report.faults_injected = _faults(stats)
        remote = {job["name"]: job for job in (await self._admin("GET", "/_emulator/jobs"))["jobs"]}
        rows = self._query("SELECT id, state, tuned_model_id FROM jobs")
        self.report.terminal_states = dict(Counter(state for _, state, _ in rows))
        self.report.unfinished_jobs = sum(1 for _, state, _ in rows if state not in TERMINAL)
        for job_id, state, model_id in rows:
            name = f"tunedModels/{model_id}"
            if name not in remote:
                continue  # never created (cancelled while queued, refused at create)
            expected = EXPECTED_STATE.get(remote[name]["ending"])
            if state != expected:
                self.report.wrong_terminal_states += 1
                self.report.problems.append(f"job {job_id}: {state}, the API says {remote[name]['ending']}")
            await self._check_snapshots(job_id, name)

    async def _check_snapshots(self, job_id: str, name: str) -> None:
        model = await self._api(f"/v1beta/{name}")
        self._compare_snapshots(job_id, {s.get("step", 0) for s in model.get("tuningTask", {}).get("snapshots", [])})

    async def _check_vertex(self, stats: Mapping[str, Any]) -> None:
        """Promises 2-4 on Vertex: one tuning job per job, loss points once and all, endings as Vertex's."""
        creates = chaos_vertex.creates_per_job(await self._admin("GET", "/_emulator/vertex/creates"))
        self.report.creates_sent = sum(stats.get("requests", {}).get("vertex_create", {}).values())
        self.report.duplicate_creates = sum(n - 1 for n in creates.values() if n > 1)
        self.report.faults_injected = _faults(stats)
        remote = chaos_vertex.remote_by_job((await self._admin("GET", "/_emulator/vertex/jobs"))["jobs"])
        rows = self._query("SELECT id, state, remote_job FROM jobs")
        self.report.terminal_states = dict(Counter(state for _, state, _ in rows))
        self.report.unfinished_jobs = sum(1 for _, state, _ in rows if state not in TERMINAL)
        for job_id, state, remote_job in rows:
            if job_id not in remote:
                continue  # never created (cancelled while queued, refused at create)
            job = remote[job_id]
            expected = chaos_vertex.EXPECTED_STATE.get(job["state"])
            if state != expected or remote_job != job["name"]:
                self.report.wrong_terminal_states += 1
                self.report.problems.append(f"job {job_id}: {state} ({remote_job}), Vertex says {job['state']} "
                                            f"({job['name']})")
            reported = await chaos_vertex.reported_steps(self._vertex_read, job)
            self._compare_snapshots(job_id, reported)

    async def _vertex_read(self, path: str) -> Any:
        headers = {"authorization": f"Bearer {chaos_vertex.READER_TOKEN}"}
        async with self.http.get(self.url + path, headers=headers) as response:
            return await response.json(content_type=None)

    def _compare_snapshots(self, job_id: str, reported: set[int]) -> None:
        steps = [step for (step,) in self._query("SELECT step FROM snapshots WHERE job_id = ?", job_id)]
        self.report.duplicate_snapshots += len(steps) - len(set(steps))
        self.report.missing_snapshots += len(reported - set(steps))
        self.report.extra_snapshots += len(set(steps) - reported)
        if reported != set(steps):
            self.report.problems.append(f"job {job_id}: snapshots {sorted(set(steps))} vs API {sorted(reported)}")

    def _check_secrets(self) -> None:
        """Promise 7: the key (Vertex: any token, the private key) and the webhook secret appear in no log
        line, database page or spool file."""
        markers = (*(chaos_vertex.SECRET_MARKERS if self.vertex else (API_KEY.encode(),)),
                   WEBHOOK_SECRET.removeprefix("whsec_").encode())
        for path in sorted(self.root.rglob("*")):
            if path.is_file() and not path.is_symlink() and any(m in path.read_bytes() for m in markers):
                self.report.secret_leaks.append(str(path.relative_to(self.root)))


@contextlib.asynccontextmanager
async def _serving(handler: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[str]:
    """``handler`` for POSTs on a free loopback port, for the block; yields the URL."""
    app = web.Application()
    app.router.add_post("/webhook", handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}/webhook"
    finally:
        await runner.cleanup()


def _faults(stats: Mapping[str, Any]) -> dict[str, int]:
    """Faults the emulator injected, by kind, from its per-route status counts."""
    totals: Counter[str] = Counter()
    for statuses in stats.get("requests", {}).values():
        for status, count in statuses.items():
            if status in ("dropped", "lost", "401", "404", "412", "429", "500", "503"):
                totals[status] += count
    return dict(totals)


async def poll_until(condition: Callable[[], Awaitable[bool]], *, within: float, interval: float) -> None:
    """Re-check a condition another process makes true, every ``interval``, for at most ``within`` s.

    The daemon is another process: there is no event to await, so this is a bounded poll.
    """
    async with asyncio.timeout(within):
        while not await condition():  # noqa: ASYNC110 - see the docstring
            await asyncio.sleep(interval)


async def run_chaos(root: Path, config: ChaosConfig) -> ChaosReport:
    """Run one chaos run in ``root`` (which it fills) and report."""
    await asyncio.to_thread(root.mkdir, parents=True, exist_ok=True)
    return await ChaosRun(root, config).run()


def summary(report: ChaosReport) -> str:
    """One paragraph for a person."""
    return json.dumps(
        {k: v for k, v in report.as_json().items() if k not in ("config", "problems")}, sort_keys=True
    )


__all__ = ["API_KEY", "ChaosConfig", "ChaosReport", "run_chaos", "summary"]
