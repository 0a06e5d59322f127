"""The scheduler: drives every job through its lifecycle, one short step at a time.

A step is one decision about one job: submit it, poll it, or cancel it. Each step reads the row,
talks to the API, and writes the outcome back with a compare-and-set. Every state change is
committed *before* the side effect that depends on it (queued → submitting before the create,
running → cancelling before ``:cancel``), so a crash at any point leaves a row that the next start
knows how to resume. Retries are not transitions: a failed step bumps ``attempts`` and
``next_check_at`` and keeps the state. Nothing that matters lives only in memory.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from orchestrator.clock import Clock
from orchestrator.config import SchedulerSettings
from orchestrator.errors import ApiError, NotDelivered, RateLimited, StaleWrite, TransientError, Unauthenticated
from orchestrator.jobs import TERMINAL, Job, JobState, Snapshot, retry_attempt
from orchestrator.policy import backoff_delay, next_poll_delay, pause_delay, rpc_status_name, should_auto_retry
from orchestrator.store.protocol import NO_CHANGES, JobChanges, JobStore
from orchestrator.tuning import Outcome, RemoteStatus, TuningApi, Verdict

log = structlog.get_logger(__name__)

#: Longest the loop sleeps without looking at the database (a CLI cancel arrives this way).
IDLE_WAKE_SECONDS = 1.0
#: Shortest time between two claims, as a share of ``poll_min_interval`` and at most
#: ``CLAIM_SPACING_MAX_SECONDS``: polls falling due within it share one claim transaction (with the
#: defaults, at most 5 claims a second however many jobs run, instead of one per poll), and none is
#: delayed by more than it.
CLAIM_SPACING_SHARE = 0.04
CLAIM_SPACING_MAX_SECONDS = 0.2
_ALWAYS = datetime.max.replace(tzinfo=UTC)
#: Longest pause after the database failed a tick, and how often such failures are logged.
STORE_RETRY_CAP_SECONDS = 5.0
STORE_LOG_INTERVAL_SECONDS = 60.0


class _EveryInterval:
    """Says yes at most once per ``interval`` seconds: one log line per interval, not one per job."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._last = float("-inf")

    def due(self, now: float) -> bool:
        if now - self._last < self._interval:
            return False
        self._last = now
        return True


class Scheduler:
    """Claims due jobs and runs their steps concurrently, within the configured limits."""

    def __init__(
        self,
        store: JobStore,
        api: TuningApi,
        settings: SchedulerSettings,
        clock: Clock,
        owner: str,
        *,
        max_concurrent_steps: int = 64,
        shutdown_grace: float = 5.0,
        rng: random.Random | None = None,
        installation_id: str | None = None,
    ) -> None:
        self._store = store
        #: Tags the tuned-model ids of automatic retries; without it there are none (``auto_retry``).
        self._installation_id = installation_id
        self._api = api
        self._settings = settings
        self._clock = clock
        self._owner = owner
        self._rng = rng or random.Random()
        self._max_steps = max_concurrent_steps
        self._shutdown_grace = shutdown_grace
        self._steps: set[asyncio.Task[None]] = set()
        self._claimed_queued = 0
        self._auth_paused_until = 0.0
        self._auth_failures = 0
        self._auth_log = _EveryInterval(settings.backoff_cap)
        self._store_failures = 0
        self._store_log = _EveryInterval(STORE_LOG_INTERVAL_SECONDS)
        self._writes: set[asyncio.Future[Job]] = set()
        #: Jobs with a step of this process in flight (never two steps of one job at once); its
        #: size is the number of steps in flight.
        self._stepping: set[str] = set()
        self._steps_started = 0
        self.wake = asyncio.Event()
        #: When the sleeping loop means to look at the database next; a step that schedules work
        #: sooner wakes it (see ``_commit``).
        self._look_at = clock.now()
        self._claim_spacing = min(CLAIM_SPACING_MAX_SECONDS, CLAIM_SPACING_SHARE * settings.poll_min_interval)
        #: Monotonic time of the last loop iteration, for liveness checks.
        self.last_tick = clock.monotonic()

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set, then give steps in flight ``shutdown_grace`` seconds to end.

        A step still running after that is cancelled: that is safe, because its state change was
        committed before its request went out and a repeated request is idempotent. Writes already
        started are awaited (they are shielded), so the store is never closed under one.

        A failing database ("database is locked", a full disk) never ends the loop: the tick is
        logged once per interval and tried again after a short pause.
        """
        lease = timedelta(seconds=self._settings.lease_seconds)
        await self._retry_marked_failures()  # those a crash kept from their retry
        while not stop.is_set():
            self.last_tick = self._clock.monotonic()
            self.wake.clear()
            self._look_at = _ALWAYS  # until the loop sleeps, any step that schedules work wakes it
            try:
                started = self._steps_started
                looked_at = self._clock.now()
                if self._clock.monotonic() >= self._auth_paused_until:
                    looked_at = await self._claim_and_start(lease)
                timeout = await self._sleep_budget(looked_at, claimed_nothing=self._steps_started == started)
            except Exception as exc:
                timeout = self._store_trouble(exc)
            else:
                self._store_failures = 0
            await self._wait(stop, timeout)
        await self._drain()

    async def _drain(self) -> None:
        if self._steps:
            done, pending = await asyncio.wait(self._steps, timeout=self._shutdown_grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            log.info("scheduler_stopped", steps_finished=len(done), steps_abandoned=len(pending))
        if self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    def _store_trouble(self, exc: Exception) -> float:
        """Seconds to wait after a tick failed on the database, logging it at most once per interval."""
        self._store_failures += 1
        delay = min(STORE_RETRY_CAP_SECONDS, 0.1 * 2.0 ** min(self._store_failures, 10))
        if self._store_log.due(self._clock.monotonic()):
            log.error("scheduler_tick_failed", error=f"{type(exc).__name__}: {exc}", retry_in=round(delay, 3),
                      consecutive_failures=self._store_failures)
        return delay

    async def _claim_and_start(self, lease: timedelta) -> datetime:
        """Claim what is due and start its steps; returns the time the claim looked at."""
        now = self._clock.now()
        room = self._max_steps - len(self._stepping)
        if self._auth_failures:
            # Credentials were refused: one probe step at a time until a request gets through, so
            # an expired key costs one request and one log line per pause, not one per job.
            room = min(room, 1 - len(self._stepping))
        if room <= 0:
            return now
        active_cap = self._settings.max_active_jobs - self._claimed_queued
        jobs = await self._store.claim_due(self._owner, now, lease, room, active_cap)
        for job in jobs:
            if job.id in self._stepping:
                # Our own step still holds it: its lease ran out while it waited (a long 429 pause).
                # One step per job at a time; the re-claim only renewed the lease.
                continue
            if job.state is JobState.QUEUED:
                self._claimed_queued += 1
            self._stepping.add(job.id)
            self._steps_started += 1
            task = asyncio.create_task(self._step(job))
            self._steps.add(task)
            task.add_done_callback(self._steps.discard)
        return now

    async def _sleep_budget(self, looked_at: datetime, *, claimed_nothing: bool) -> float:
        """Seconds until the next job is due (at most ``IDLE_WAKE_SECONDS``), or until a pause ends.

        A job that was already due when the claim ``looked_at`` the table and was passed over is
        blocked: its own step is still running, or queued jobs wait for a slot of the active-job cap.
        The end of a step wakes the loop, so it sleeps instead of claiming again at once, which would
        spin (hundreds of write transactions a second while a queue waits for the cap). A job that
        fell due only after that look is claimed at once.
        """
        timeout = IDLE_WAKE_SECONDS
        due = await self._store.next_due_at()
        if due is not None:
            timeout = min(timeout, max(0.0, (due - self._clock.now()).total_seconds()))
        if len(self._stepping) >= self._max_steps:
            return IDLE_WAKE_SECONDS
        paused = self._auth_paused_until - self._clock.monotonic()
        if paused > 0:  # jobs are due but may not be claimed yet: sleep through the pause
            return max(timeout, min(IDLE_WAKE_SECONDS, paused))
        if claimed_nothing and due is not None and due <= looked_at:
            return IDLE_WAKE_SECONDS
        return timeout

    async def _wait(self, stop: asyncio.Event, seconds: float) -> None:
        """Sleep ``seconds``, or until a step needs the loop, new work arrives or ``stop``.

        Never less than the claim spacing after the previous tick, so that a busy loop claims jobs
        in batches instead of one transaction per job.
        """
        self._look_at = self._clock.now() + timedelta(seconds=seconds)
        waiters = [asyncio.ensure_future(self.wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        spacing = self.last_tick + self._claim_spacing - self._clock.monotonic()
        if spacing > 0 and not stop.is_set():
            await self._clock.sleep(spacing)

    async def _step(self, job: Job) -> None:
        was_queued = job.state is JobState.QUEUED
        bound = log.bind(job_id=job.id)
        try:
            if job.state is JobState.QUEUED:
                # The submission may be sent from this commit on: until it is seen, it is looked for.
                now = self._clock.now()
                job = await self._commit(job, JobChanges(submitted_at=now, submit_sent_at=now),
                                         to=JobState.SUBMITTING, release=False)
                bound.info("job_submitting")
                self._claimed_queued -= 1
                was_queued = False
                await self._submit(job, bound, fresh=True)
            elif job.state is JobState.SUBMITTING:
                await self._submit(job, bound, fresh=False)
            else:
                await self._poll(job, bound)
        except StaleWrite as exc:
            bound.warning("stale_write_ignored", expected=exc.expected, wanted=exc.wanted)
        except Exception as exc:
            # A bug or a database failure: never kill the loop for one job. The lease expires and
            # the step is retried; the error is logged once with its context.
            bound.exception("step_failed_unexpectedly", error=str(exc))
        finally:
            # Work may be waiting for this slot (the loop stopped claiming when all were taken), or
            # for the quota a queued job held, or for the end of a credentials probe.
            if len(self._stepping) >= self._max_steps or was_queued or self._auth_failures:
                self.wake.set()
            self._stepping.discard(job.id)
            if was_queued:
                self._claimed_queued -= 1

    # -- submitting ---------------------------------------------------------------------------

    async def _submit(self, job: Job, bound: Any, *, fresh: bool) -> None:
        """Prepare and submit the job once, adopting an earlier submission whose answer was lost.

        ``submit_sent_at`` is committed before every submission. A job found in ``submitting`` with it
        set (a retry after a timeout, a 5xx, a dropped connection or a crash) may have a remote twin:
        the service's :meth:`~TuningApi.find` looks for it, and the job is not submitted again until
        ``settle_seconds`` after that submission was sent, so a twin the service lists late is still
        found. The mark is cleared only when no submission of this job can be out there: this step
        set it and failed before sending (for an earlier one, once ``find`` has had its say), or its
        submission never left (:class:`NotDelivered`: no connection was made) and there was no earlier
        one (a ``find`` that failed, or a service whose ``find`` does not look, proves nothing).

        That is what lets a cancel end a job that never reached the service (:meth:`_cancel_unsent`):
        with the mark cleared it is certain that no create landed, so no remote job can be orphaned.
        """
        if job.cancel_requested and job.submit_sent_at is None:
            await self._cancel_unsent(job, bound)
            return
        # An earlier submission may be out there (its answer was lost): a later one that never left
        # does not make it go away, so only a step without one may clear the mark on NotDelivered.
        earlier = None if fresh else job.submit_sent_at
        # True only between "no earlier submission can land any more" and the next submission: an
        # error there (the upload failed) means nothing of this job is in flight, and the mark goes.
        # An error while looking for an earlier one keeps it: that one may still be listed.
        nothing_in_flight = False
        sent = False
        try:
            if earlier is not None:
                found = await self._api.find(job)
                if found is not None:
                    bound.info("submission_found_adopting")
                    await self._start_running(job, found, bound)
                    return
                settled_at = earlier + timedelta(seconds=self._api.settle_seconds)
                if self._clock.now() < settled_at:
                    await self._look_again(job, settled_at, bound)
                    return
            nothing_in_flight = True
            body = await self._store.request_body(job.id)
            facts = (await self._api.prepare(job, body)).columns()
            if facts or not fresh:
                job = await self._commit(job, JobChanges(submit_sent_at=self._clock.now(), **facts), release=False)
            nothing_in_flight = False
            sent = True
            status = await self._api.submit(job, body)
        except (TransientError, Unauthenticated) as exc:
            never_left = sent and isinstance(exc, NotDelivered) and earlier is None
            clear_mark = JobChanges(submit_sent_at=None) if nothing_in_flight or never_left else NO_CHANGES
            await self._retry_later(job, exc, bound, clear_mark)
            return
        except ApiError as exc:
            self._api_reachable()
            await self._fail_permanently(job, exc, "prepare" if nothing_in_flight else "create", bound)
            return
        self._api_reachable()
        await self._start_running(job, status, bound)

    async def _cancel_unsent(self, job: Job, bound: Any) -> None:
        """A user's cancel of a job whose submission certainly never reached the service: end it here.

        ``submit_sent_at`` is empty in ``submitting`` only after every submission of the job failed
        before it was sent (see :meth:`_submit`), so there is nothing remote to cancel, and no quota
        slot should stay taken (an unreachable API would otherwise hold the job there for ever).
        """
        await self._commit(job, JobChanges(cancel_reason="user"), to=JobState.CANCELLED,
                           detail={"reason": "user", "remote": "never created"})
        bound.info("job_cancelled", reason="user", remote="never created")

    async def _start_running(self, job: Job, status: RemoteStatus, bound: Any) -> None:
        """The service holds the job now: record what it said and poll it from here on."""
        now = self._clock.now()
        facts = status.facts.columns()
        running = JobChanges(
            total_steps=status.total_steps or job.total_steps, started_at=now, last_progress_at=now, attempts=0,
            last_error=None, next_check_at=now + timedelta(seconds=self._settings.poll_min_interval),
            working_since=None if status.waiting else now, **facts,
        )
        await self._commit(job, running, to=JobState.RUNNING, detail=facts, soon_if_cancel_requested=True)
        bound.info("job_running", **facts)

    async def _look_again(self, job: Job, settled_at: datetime, bound: Any) -> None:
        """An earlier submission is not listed yet and may still appear: look again before re-submitting."""
        now = self._clock.now()
        wait = min((settled_at - now).total_seconds(), self._settings.poll_min_interval)
        await self._commit(job, JobChanges(next_check_at=now + timedelta(seconds=max(wait, 0.0))))
        bound.info("earlier_submission_not_listed_yet", settles_in=round((settled_at - now).total_seconds(), 3))

    async def _fail_permanently(self, job: Job, exc: ApiError, phase: str, bound: Any) -> None:
        """A request the API will never accept: the job fails with the API's status and words."""
        failure = JobChanges(error_code=exc.http_status, error_status=exc.status or None,
                             error_message=exc.api_message, attempts=0)
        await self._commit(job, failure, to=JobState.FAILED, detail={"phase": phase, **exc.as_dict()})
        bound.warning("job_failed", phase=phase, http_status=exc.http_status, status=exc.status,
                      message=exc.api_message)

    # -- running and cancelling ---------------------------------------------------------------

    async def _poll(self, job: Job, bound: Any) -> None:
        try:
            # Each commit is assigned here before the next request, so an error after it retries
            # against the row as it now is (a stale copy would make the retry's write stale).
            job = await self._begin_cancel_if_due(job, bound)
            if job.state is JobState.CANCELLING and job.cancel_sent_at is None:
                await self._api.cancel(job)
                job = await self._commit(job, JobChanges(cancel_sent_at=self._clock.now()), release=False)
            status = await self._api.poll(job)
        except (TransientError, Unauthenticated) as exc:
            await self._retry_later(job, exc, bound)
            return
        except ApiError as exc:
            await self._fail_permanently(job, exc, "poll", bound)
            return
        self._api_reachable()
        now = self._clock.now()
        new = tuple(s for s in status.snapshots if s.step > job.completed_steps)
        changes = JobChanges(attempts=0, last_error=None,
                             **{k: v for k, v in status.facts.columns().items() if v != getattr(job, k)})
        if status.total_steps:
            changes = replace(changes, total_steps=status.total_steps)
        if new:
            changes = replace(changes, last_loss=new[-1].mean_loss)
        completed = status.completed_steps if status.completed_steps is not None else (new[-1].step if new else 0)
        if completed > job.completed_steps:
            changes = replace(changes, completed_steps=completed, last_progress_at=now)
        elif not status.progress_visible or status.waiting:
            changes = replace(changes, last_progress_at=now)  # silence that is not a stall (see RemoteStatus)
        working_since = job.working_since
        if working_since is None and not status.waiting:
            working_since = self._work_began(job, completed, now)
            changes = replace(changes, working_since=working_since)
        verdict = status.verdict
        if verdict.outcome is Outcome.RUNNING:
            seen = max(completed, job.completed_steps)
            # Waiting, the wait so far paces the polls (they back off); working, the steps' own rate.
            since = working_since or job.started_at or now
            delay = self._settings.poll_min_interval if job.state is JobState.CANCELLING else next_poll_delay(
                total_steps=status.total_steps or job.total_steps, completed_steps=seen,
                running_seconds=(now - since).total_seconds(),
                min_interval=self._settings.poll_min_interval, max_interval=self._settings.poll_max_interval,
                rng=self._rng,
            )
            job = await self._commit(job, replace(changes, next_check_at=now + timedelta(seconds=delay)),
                                     snapshots_seen=new, soon_if_cancel_requested=True)
            if new:
                bound.debug("job_progress", step=job.completed_steps, total_steps=job.total_steps, loss=job.last_loss)
            return
        to, reason = self._terminal_state(job, verdict)
        if to is not JobState.SUCCEEDED:
            changes = replace(changes, error_code=verdict.code, error_status=rpc_status_name(verdict.code),
                              error_message=reason)
        detail: dict[str, Any] = {"outcome": verdict.outcome.value, "code": verdict.code, "message": reason}
        # The wish to retry is committed with the failure itself, so a crash cannot lose it.
        retry = to is JobState.FAILED and self._installation_id is not None and should_auto_retry(
            verdict.code, retry_attempt(job), self._settings.auto_retry)
        if retry:
            detail["auto_retry"] = True
        await self._commit(job, changes, to=to, snapshots_seen=new, detail=detail)
        bound.info(f"job_{to.value}", code=verdict.code, message=reason,
                   steps=completed if completed > job.completed_steps else None)
        if retry:
            await self._retry_marked_failures()
        if to is JobState.CANCELLED and self._settings.delete_cancelled_models:
            await self._discard(job, bound)

    async def _retry_marked_failures(self) -> None:
        """Start the automatic retries that failures asked for (``[scheduler] auto_retry``).

        A failure here (a locked database) is logged and left: the marks stay in the events, and the
        next failure or start looks again.
        """
        if self._installation_id is None or not self._settings.auto_retry:
            return
        try:
            retries = await self._store.retry_marked_failures(self._clock.now(), self._installation_id)
        except Exception as exc:
            log.error("auto_retry_failed", error=f"{type(exc).__name__}: {exc}")
            return
        for retry in retries:
            log.info("job_retried_automatically", job_id=retry.id, retry_of=retry.retry_of, job_key=retry.job_key)
        if retries:
            self.wake.set()

    @staticmethod
    def _work_began(job: Job, completed: int, now: datetime) -> datetime:
        """When the service began working on a job that the previous read found waiting.

        Between that read (``last_progress_at``, kept fresh while the job waits) and this one: now when
        no step is done yet, else half-way, so a long quota wait never counts as time the steps took.
        """
        previous = job.last_progress_at or job.started_at or now
        return now if completed <= 0 else previous + (now - previous) / 2

    def _terminal_state(self, job: Job, verdict: Verdict) -> tuple[JobState, str | None]:
        """Our final state for the remote's verdict; a cancel we sent for a deadline is a failure."""
        if verdict.outcome is Outcome.SUCCEEDED:
            return JobState.SUCCEEDED, None
        if verdict.outcome is Outcome.CANCELLED and job.cancel_reason in (None, "user"):
            return JobState.CANCELLED, verdict.message
        if verdict.outcome is Outcome.CANCELLED:
            return JobState.FAILED, f"{job.cancel_reason}: cancelled by the orchestrator ({verdict.message})"
        return JobState.FAILED, verdict.message

    async def _begin_cancel_if_due(self, job: Job, bound: Any) -> Job:
        """Move a running job to cancelling (committed before ``:cancel`` is sent) when asked or overdue."""
        if job.state is not JobState.RUNNING:
            return job
        reason = "user" if job.cancel_requested else self._overdue_reason(job)
        if reason is None:
            return job
        job = await self._commit(job, JobChanges(cancel_reason=reason, cancel_requested=False),
                                 to=JobState.CANCELLING, release=False, detail={"reason": reason})
        bound.info("job_cancelling", reason=reason)
        return job

    def _overdue_reason(self, job: Job) -> str | None:
        now = self._clock.now()
        max_run = job.max_run_time or self._settings.max_run_time
        if max_run and job.started_at and (now - job.started_at).total_seconds() > max_run:
            return "deadline"
        stall = job.stall_timeout or self._settings.stall_timeout
        # A poll that cannot see progress keeps ``last_progress_at`` fresh (RemoteStatus.progress_visible).
        last = job.last_progress_at or job.started_at
        if stall and last and (now - last).total_seconds() > stall:
            return "stalled"
        return None

    async def _discard(self, job: Job, bound: Any) -> None:
        try:
            await self._api.discard(job)
        except ApiError as exc:
            bound.warning("cancelled_model_not_deleted", error=str(exc))
        else:
            bound.info("cancelled_model_deleted")

    # -- shared -------------------------------------------------------------------------------

    async def _retry_later(self, job: Job, exc: ApiError, bound: Any, also: JobChanges = NO_CHANGES) -> None:
        """Keep the state, count the attempt, and look again after a jittered back-off (and write ``also``)."""
        attempts = job.attempts + 1
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        delay = backoff_delay(attempts, base=self._settings.backoff_base, cap=self._settings.backoff_cap,
                              rng=self._rng, retry_after=retry_after)
        if isinstance(exc, Unauthenticated):
            delay = max(delay, self._pause_for_auth(exc))
        now = self._clock.now()
        await self._commit(job, replace(also, attempts=attempts, last_error=str(exc),
                                        next_check_at=now + timedelta(seconds=delay)))
        report = bound.debug if isinstance(exc, Unauthenticated) else bound.warning
        report("step_retry_scheduled", attempt=attempts, delay=round(delay, 3), error=str(exc),
               error_kind=type(exc).__name__, http_status=exc.http_status)

    def _pause_for_auth(self, exc: ApiError) -> float:
        """Stop claiming work while credentials fail: one log line per interval, not one per job.

        The pause grows with consecutive refusals (the scheduler's own back-off, not a job's), and
        until a request succeeds again only one probe step runs at a time.
        """
        self._auth_failures += 1
        pause = pause_delay(self._auth_failures, base=self._settings.backoff_base, cap=self._settings.backoff_cap,
                            rng=self._rng)
        now = self._clock.monotonic()
        self._auth_paused_until = max(self._auth_paused_until, now + pause)
        if self._auth_log.due(now):
            log.error("scheduler_paused_unauthenticated", pause_seconds=round(pause, 3), error=str(exc),
                      consecutive_failures=self._auth_failures)
        return pause

    def _api_reachable(self) -> None:
        """A step got an answer: credentials work (again), so the scheduler runs at full width."""
        if self._auth_failures:
            log.info("scheduler_resumed_authenticated", after_failures=self._auth_failures)
            self._auth_failures = 0

    async def _commit(
        self,
        job: Job,
        changes: JobChanges = NO_CHANGES,
        *,
        to: JobState | None = None,
        detail: Mapping[str, Any] | None = None,
        snapshots_seen: Sequence[Snapshot] = (),
        release: bool = True,
        soon_if_cancel_requested: bool = False,
    ) -> Job:
        """``store.commit_step`` for this process, shielded: a write that started is not cut off.

        The write is remembered until it ends, so a shutdown that abandons the step still waits
        for it before the store closes.
        """
        write = asyncio.ensure_future(self._store.commit_step(
            job, self._owner, self._clock.now(), changes, to=to, detail=detail, snapshots_seen=snapshots_seen,
            release=release, soon_if_cancel_requested=soon_if_cancel_requested,
        ))
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)
        committed = await asyncio.shield(write)
        if release:
            self._wake_if_needed(committed)
        return committed

    def _wake_if_needed(self, job: Job) -> None:
        """Wake the loop when a released job falls due before the loop means to look, or freed quota."""
        due = job.next_check_at
        if job.state in TERMINAL:
            self.wake.set()
        elif due is not None and due < self._look_at:
            self._look_at = due
            delay = (due - self._clock.now()).total_seconds()
            asyncio.get_running_loop().call_later(max(0.0, delay), self.wake.set)
