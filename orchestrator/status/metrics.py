"""The daemon's Prometheus metrics: one registry per daemon, fed by hooks the daemon wires in.

The scheduler, the intake and the API client never import this module. The daemon passes them
plain callbacks (the intake's ``on_new_jobs`` / ``on_rejected``, the API client's ``on_response``
with each request's route and status), and a store that reports what it committed
(:mod:`orchestrator.status.observed`). Gauges that describe the database (jobs by state, WAL size)
are read when ``/metrics`` is scraped, so they are never stale.

Metric names follow the Prometheus conventions: an ``orchestrator_`` prefix, base units in the
name (``_seconds``, ``_bytes``), ``_total`` on counters (added by the client library).
"""

from __future__ import annotations

from collections import Counter as Counter_
from collections.abc import Mapping, Sequence
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from orchestrator import __version__
from orchestrator.jobs import JobState
from orchestrator.store.daemons import DaemonRecord

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

#: Poll lateness buckets, in seconds: a healthy daemon polls within a tick (≤ 1 s) of the due time.
LATENESS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

class Metrics:
    """Every metric the daemon exports, in its own registry (tests build as many as they like)."""

    def __init__(self) -> None:
        # ``*_created`` series (one per counter) only double the scrape; rate() never needs them.
        # The switch is process-wide, which is right for the daemon that owns the process.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        registry = self.registry
        Info("orchestrator_build", "The running orchestrator's version.", registry=registry).info(
            {"version": __version__}
        )
        self.jobs = Gauge("orchestrator_jobs", "Jobs in the status database, by state.", ["state"], registry=registry)
        self.api_requests = Counter(
            "orchestrator_api_requests",
            "API requests by route and HTTP status ('error': no response, e.g. a dropped connection).",
            ["route", "status"],
            registry=registry,
        )
        self.rate_limit_pauses = Counter(
            "orchestrator_rate_limit_pauses",
            "429 answers; each pauses every API call of the daemon for the delay the API asked for.",
            registry=registry,
        )
        self.poll_lateness = Histogram(
            "orchestrator_poll_lateness_seconds",
            "How long after its due time a running job's poll was claimed.",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        self.intake_files = Counter(
            "orchestrator_intake_files",
            "Job files the intake finished with, by outcome (accepted: a job; rejected: an error file).",
            ["outcome"],
            registry=registry,
        )
        self.snapshots_recorded = Counter(
            "orchestrator_snapshots_recorded",
            "Training snapshots (one per step) written to the status database.",
            registry=registry,
        )
        self.wal_bytes = Gauge("orchestrator_wal_bytes", "Size of the database's write-ahead log.", registry=registry)
        self.tick_age = Gauge(
            "orchestrator_scheduler_tick_age_seconds", "Seconds since the scheduler loop last ran.", registry=registry
        )
        self.write_age = Gauge(
            "orchestrator_last_write_age_seconds", "Seconds since the last successful database write.",
            registry=registry,
        )
        self.webhook_attempts = Counter(
            "orchestrator_webhook_attempts",
            "Webhook delivery attempts, by outcome (delivered; failed: retried or given up; gone: a 410).",
            ["outcome"],
            registry=registry,
        )
        self.webhook_notifications = Gauge(
            "orchestrator_webhook_notifications",
            "Webhook notifications in the outbox, by state (pending, delivered, gave_up).",
            ["state"],
            registry=registry,
        )
        for outcome in ("delivered", "failed", "gone"):
            self.webhook_attempts.labels(outcome)
        self.daemons = Gauge(
            "orchestrator_daemons", "Daemons recorded in the database, by status (running, stopped, dead).",
            ["status"], registry=registry,
        )
        self.daemon_heartbeat_age = Gauge(
            "orchestrator_daemon_heartbeat_age_seconds",
            "Seconds since each daemon that did not stop cleanly last wrote its heartbeat (every 5 s).",
            ["daemon"], registry=registry,
        )
        for outcome in ("accepted", "rejected"):
            self.intake_files.labels(outcome)
        for state in JobState:
            self.jobs.labels(state.value)

    # -- hooks the daemon wires into the parts ------------------------------------------------

    def intake_accepted(self, files: int) -> None:
        """``files`` job files became jobs (the intake records them in batches)."""
        self.intake_files.labels("accepted").inc(files)

    def intake_rejected(self) -> None:
        """A job file was rejected."""
        self.intake_files.labels("rejected").inc()

    def api_response(self, route: str, status: int | None) -> None:
        """One API request of the client's ``route`` ended with ``status`` (None: no response at all)."""
        self.api_requests.labels(route, "error" if status is None else str(status)).inc()
        if status == 429:
            self.rate_limit_pauses.inc()

    def webhook_attempt(self, outcome: str) -> None:
        """One webhook delivery attempt ended with ``outcome``."""
        self.webhook_attempts.labels(outcome).inc()

    # -- scrape time --------------------------------------------------------------------------

    def set_jobs(self, counts: Mapping[JobState, int]) -> None:
        """Jobs by state as the database has them now (states with no job report 0)."""
        for state in JobState:
            self.jobs.labels(state.value).set(counts.get(state, 0))

    def set_notifications(self, counts: Mapping[str, int]) -> None:
        """Webhook notifications by state as the database has them now."""
        for state, count in counts.items():
            self.webhook_notifications.labels(state).set(count)

    def set_daemons(self, daemons: Sequence[DaemonRecord], now: datetime) -> None:
        """The daemons as the database has them now: counts by status, and each unstopped one's heartbeat age.

        Every daemon serves these for all of them, so a dead daemon shows on its peers' ``/metrics``.
        """
        counts = Counter_(daemon.status(now) for daemon in daemons)
        for status in ("running", "stopped", "dead"):
            self.daemons.labels(status).set(counts.get(status, 0))
        self.daemon_heartbeat_age.clear()
        for daemon in daemons:
            if daemon.stopped_at is None:
                self.daemon_heartbeat_age.labels(daemon.id).set(round(daemon.heartbeat_age(now), 3))

    def render(self) -> bytes:
        """The text exposition format."""
        return generate_latest(self.registry)
