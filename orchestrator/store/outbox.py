"""The webhook outbox: what a state change writes so that its announcement can never be lost.

A notification is a row of ``notifications`` inserted *in the transaction of the state change it
announces* (DESIGN.md, "Telling people"): if the change commits, so does the notification; if it
rolls back or loses its compare-and-set, neither exists. The sender (:mod:`orchestrator.webhooks`)
delivers the rows later, at least once; the row's id is the ``webhook-id`` of every attempt, so a
receiver can deduplicate, and the ``event_id`` column is unique, so one change is never announced
under two ids.

This module is the part every store shares: which changes are announced, the row's values and its
payload, and the INSERT, written in plain SQL with named parameters that SQLite's driver and
SQLAlchemy's ``text()`` (so PostgreSQL too) both accept. It does no I/O itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from orchestrator.config import NotifySettings
from orchestrator.jobs import Job, JobState

INSERT_NOTIFICATION = (
    "INSERT INTO notifications (id, job_id, event_id, type, payload, state, attempts, next_attempt_at, created_at)"
    " VALUES (:id, :job_id, :event_id, :type, :payload, 'pending', 0, :next_attempt_at, :created_at)"
)


@dataclass(frozen=True, slots=True)
class Announced:
    """The state changes that get a notification: empty when no webhook is configured."""

    states: frozenset[JobState] = frozenset()

    @classmethod
    def of(cls, settings: NotifySettings) -> Announced:
        """What ``[notify]`` asks for: its ``events``, or nothing when no webhook URL is set.

        Every writer of the database (the daemon, ``orchestrator cancel``) builds it the same way,
        so a change is announced whoever makes it.
        """
        if not settings.webhook_url:
            return cls()
        return cls(frozenset(JobState(name) for name in settings.events))

    def __contains__(self, state: object) -> bool:
        return state in self.states


def event_type(state: JobState) -> str:
    """The webhook event type of a change into ``state``, e.g. ``job.succeeded``."""
    return f"job.{state.value}"


def notification_id(job_id: str, event_id: int) -> str:
    """The ``webhook-id``: derived from the change itself, so even a repeated insert could not make a second one."""
    return f"msg_{job_id}_{event_id}"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def payload(job: Job, at: datetime) -> dict[str, Any]:
    """The notification's JSON body: the Standard Webhooks envelope around the job as it ended.

    ``data`` carries what a receiver acts on without calling back: identity (id, key, labels), the
    outcome (state, the service's name for the tuned model and, where the service has them, its
    endpoint and billable tokens; the API's error words; the final loss) and the timestamps. A NaN
    loss is ``null`` (JSON has no NaN).
    """
    labels = json.loads(job.labels) if job.labels else {}
    loss = job.last_loss if job.last_loss is not None and math.isfinite(job.last_loss) else None
    error = None
    if job.error_message or job.error_status or job.error_code is not None:
        error = {"code": job.error_code, "status": job.error_status, "message": job.error_message}
    return {
        "type": event_type(job.state),
        "timestamp": _iso(at),
        "data": {
            "job_id": job.id,
            "job_key": job.job_key,
            "display_name": job.display_name,
            "labels": labels,
            "state": job.state.value,
            "base_model": job.base_model,
            "tuned_model": job.model_name,
            "endpoint": job.endpoint,
            "billable_tokens": job.billable_tokens,
            "error": error,
            "final_loss": loss,
            "completed_steps": job.completed_steps,
            "total_steps": job.total_steps,
            "created_at": _iso(job.created_at),
            "started_at": _iso(job.started_at),
            "finished_at": _iso(job.finished_at),
        },
    }


def notification_row(job: Job, event_id: int, at: datetime) -> dict[str, Any]:
    """The values of :data:`INSERT_NOTIFICATION` announcing that ``job`` (as updated) reached its state.

    Due at once; timestamps are aware datetimes (each store converts them as its columns store them).
    """
    return {
        "id": notification_id(job.id, event_id),
        "job_id": job.id,
        "event_id": event_id,
        "type": event_type(job.state),
        "payload": json.dumps(payload(job, at), separators=(",", ":"), sort_keys=True),
        "next_attempt_at": at,
        "created_at": at,
    }
