"""Jobs as rows and text for people and scripts: pure functions over what the StatusReader returns."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from orchestrator.jobs import Job
from orchestrator.store.reader import JobDetail

STATUS_COLUMNS = ("id", "state", "name", "progress", "steps", "loss", "age", "error")


def progress_pct(job: Job) -> float | None:
    """Percent of steps done, when the total is known."""
    if not job.total_steps:
        return None
    return round(100.0 * job.completed_steps / job.total_steps, 1)


def age(since: datetime, now: datetime) -> str:
    """``3d``, ``5h``, ``12m`` or ``40s``: the coarsest unit that is at least 1."""
    seconds = max(0, int((now - since).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def error_summary(job: Job, width: int = 60) -> str:
    """The final error, or the latest retried one (marked as such), cut to ``width``."""
    text = job.error_message or (f"retrying: {job.last_error}" if job.last_error else "")
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def status_row(job: Job, now: datetime) -> dict[str, str]:
    """One line of ``orchestrator status``."""
    pct = progress_pct(job)
    return {
        "id": job.id,
        "state": job.state.value + (" (cancel requested)" if job.cancel_requested else ""),
        "name": job.display_name or job.tuned_model_id,
        "progress": "" if pct is None else f"{pct:.0f}%",
        "steps": f"{job.completed_steps}/{job.total_steps or '?'}",
        "loss": "" if job.last_loss is None else f"{job.last_loss:.4f}",
        "age": age(job.created_at, now),
        "error": error_summary(job),
    }


def job_json(job: Job) -> dict[str, Any]:
    """A job as JSON-ready data (``--json``): every column, timestamps in ISO 8601."""
    data: dict[str, Any] = {}
    for name in Job.__dataclass_fields__:
        value = getattr(job, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    data["state"] = job.state.value
    data["labels"] = json.loads(job.labels)
    data["tuned_model"] = job.tuned_model_name
    data["progress_pct"] = progress_pct(job)
    for internal in ("lease_owner", "lease_expires_at", "intake_id"):
        del data[internal]
    return data


def detail_json(detail: JobDetail) -> dict[str, Any]:
    """``orchestrator show --json``."""
    return {
        **job_json(detail.job),
        "example_count": detail.example_count,
        "file_bytes": detail.file_bytes,
        "hyperparameters": dict(detail.hyperparameters),
        "events": [
            {"at": e.at, "from": e.from_state, "to": e.to_state, "detail": dict(e.detail)} for e in detail.events
        ],
        "snapshots": [
            {"step": s.step, "epoch": s.epoch, "mean_loss": s.mean_loss, "compute_time": s.compute_time}
            for s in detail.snapshots
        ],
    }


def loss_sparkline(losses: list[float], width: int = 60) -> str:
    """The loss curve as one line of block characters (downsampled to ``width``)."""
    if not losses:
        return ""
    bars = "▁▂▃▄▅▆▇█"
    if len(losses) > width:
        step = len(losses) / width
        losses = [losses[int(i * step)] for i in range(width)]
    low, high = min(losses), max(losses)
    span = (high - low) or 1.0
    return "".join(bars[min(len(bars) - 1, int((v - low) / span * (len(bars) - 1) + 0.5))] for v in losses)
