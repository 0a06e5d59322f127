"""The sender: delivers the outbox's notifications, at least once, without ever slowing the scheduler.

It is its own task with its own HTTP session: a receiver that is down, slow or wrong costs this
task time, never the scheduler's. At most ``max_in_flight`` deliveries run at once; each attempt
has a total timeout and follows no redirect (a redirect is a failed attempt: the signed body is
for the configured URL only). Every attempt is recorded (``notification_attempts``) together with
what follows for its notification, in one transaction.

What an answer means:

- 2xx: delivered.
- 410 Gone: the receiver says this endpoint wants no more. The notification is given up at once
  (no retries) and an error is logged; later notifications are still tried, each giving up on its
  first 410, so a receiver that comes back is not ignored forever and no state outlives a restart.
- anything else (3xx, 4xx, 5xx, a timeout, a refused connection, a bad host): retried with
  exponential back-off and full jitter between ``backoff_min`` and ``backoff_max``, until the
  notification is ``give_up_after`` seconds old.

Killed at any moment, nothing is lost: a notification is claimed by moving its next attempt past a
short lease, so a crash mid-attempt leaves it pending, and the next start (or this one, once the
lease ends) sends it again under the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import aiohttp
import structlog

from orchestrator.clock import Clock
from orchestrator.config import NotifySettings
from orchestrator.store import DeliveryAttempt, DueNotification, JobStore
from orchestrator.webhooks.message import Signer, endpoint_label, render

log = structlog.get_logger(__name__)

#: Seconds the sender waits between looks at the outbox when nothing is due.
IDLE_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When the next attempt of a notification is, or whether to give up: pure, tested without a clock."""

    backoff_min: float
    backoff_max: float
    give_up_after: float

    @classmethod
    def of(cls, settings: NotifySettings) -> RetryPolicy:
        """From the ``[notify]`` settings."""
        return cls(settings.backoff_min, settings.backoff_max, settings.give_up_after)

    def delay(self, failed_attempts: int, rng: random.Random) -> float:
        """Seconds before the next attempt after ``failed_attempts`` failures: doubling, capped, jittered.

        The jitter keeps the lower half of the range, so a receiver that comes back is not hit by
        every pending notification at the same instant, and the back-off still grows.
        """
        ceiling = min(self.backoff_max, self.backoff_min * 2.0 ** max(0, failed_attempts - 1))
        return rng.uniform(ceiling / 2, ceiling)

    def next_attempt(self, created_at: datetime, now: datetime, failed_attempts: int,
                     rng: random.Random) -> datetime | None:
        """When to try again, or None when the next attempt would fall past the give-up age."""
        at = now + timedelta(seconds=self.delay(failed_attempts, rng))
        return None if at > created_at + timedelta(seconds=self.give_up_after) else at


def describe(exc: BaseException, timeout: float) -> str:
    """A failed attempt in words, for the attempts table and the page (no URL: it may hold a token)."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port}: {exc.os_error.strerror or type(exc.os_error).__name__}"
    if isinstance(exc, aiohttp.InvalidURL):
        return "invalid URL"
    return type(exc).__name__ + (f": {exc}" if str(exc) else "")


class WebhookSender:
    """Delivers due notifications until told to stop; see the module docstring for the rules."""

    def __init__(
        self,
        store: JobStore,
        settings: NotifySettings,
        signer: Signer,
        clock: Clock,
        on_attempt: Callable[[str], None] = lambda outcome: None,
        rng: random.Random | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._signer = signer
        self._clock = clock
        self._on_attempt = on_attempt
        self._policy = RetryPolicy.of(settings)
        self._rng = rng or random.Random()
        #: How long a claimed notification is held: longer than one attempt can take.
        self._lease = timedelta(seconds=settings.timeout + 5.0)
        self._endpoint = endpoint_label(settings.webhook_url)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; deliveries still in flight then are abandoned (they stay pending)."""
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout)
        connector = aiohttp.TCPConnector(limit=self._settings.max_in_flight)
        in_flight: set[asyncio.Task[None]] = set()
        wake = asyncio.Event()  #: a delivery finished (room for another), or stop was asked for
        stopping = asyncio.create_task(stop.wait())
        stopping.add_done_callback(lambda _: wake.set())
        log.info("webhook_sender_started", endpoint=self._endpoint, format=self._settings.format)
        async with aiohttp.ClientSession(timeout=timeout, connector=connector, trust_env=False) as session:
            try:
                while not stop.is_set():
                    wake.clear()
                    room = self._settings.max_in_flight - len(in_flight)
                    for notification in await self._claim(room) if room > 0 else []:
                        task = asyncio.create_task(self._deliver(session, notification))
                        in_flight.add(task)
                        task.add_done_callback(in_flight.discard)
                        task.add_done_callback(lambda _: wake.set())
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(wake.wait(), IDLE_SECONDS)
            finally:
                stopping.cancel()
                for task in in_flight:
                    task.cancel()
                await asyncio.gather(*in_flight, return_exceptions=True)

    async def _claim(self, limit: int) -> list[DueNotification]:
        try:
            return await self._store.claim_notifications(self._clock.now(), self._lease, limit)
        except Exception as exc:  # a busy or failing database: look again on the next round
            log.warning("webhook_claim_failed", error=f"{type(exc).__name__}: {exc}")
            return []

    async def _deliver(self, session: aiohttp.ClientSession, notification: DueNotification) -> None:
        """One attempt, then its record. A failure to record leaves the notification held, then retried."""
        body = render(notification.payload, self._settings.format)
        at = self._clock.now()
        started = self._clock.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            async with session.post(
                self._settings.webhook_url, data=body.encode(), allow_redirects=False,
                headers=self._signer.headers(notification.id, at, body),
            ) as response:
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = describe(exc, self._settings.timeout)
        attempt = self._judge(notification, at, status, error, self._clock.monotonic() - started)
        self._on_attempt(attempt.outcome)
        try:
            await self._store.record_attempt(notification.id, attempt)
        except Exception as exc:
            log.warning("webhook_attempt_not_recorded", notification=notification.id,
                        error=f"{type(exc).__name__}: {exc}")
            return
        fields = {"notification": notification.id, "job_id": notification.job_id, "type": notification.type,
                  "attempt": notification.attempts + 1, "status": status, "error": error}
        if attempt.outcome == "delivered":
            log.info("webhook_delivered", **fields)
        elif attempt.outcome == "gone":
            log.error("webhook_endpoint_gone", endpoint=self._endpoint, **fields)
        elif attempt.state == "gave_up":
            log.error("webhook_given_up", give_up_after=self._settings.give_up_after, **fields)
        else:
            log.warning("webhook_attempt_failed", retry_at=attempt.next_attempt_at, **fields)

    def _judge(self, notification: DueNotification, at: datetime, status: int | None, error: str | None,
               seconds: float) -> DeliveryAttempt:
        """What an attempt's answer means for its notification (see the module docstring)."""
        if status is not None and 200 <= status < 300:
            return DeliveryAttempt(at, "delivered", status, None, seconds, "delivered", None)
        if status == 410:
            return DeliveryAttempt(at, "gone", status, "410 Gone: the receiver wants no more", seconds, "gave_up", None)
        if status is not None:
            error = f"HTTP {status}" + (" (redirects are not followed)" if 300 <= status < 400 else "")
        retry_at = self._policy.next_attempt(notification.created_at, self._clock.now(), notification.attempts + 1,
                                             self._rng)
        return DeliveryAttempt(at, "failed", status, error, seconds, "pending" if retry_at else "gave_up", retry_at)

