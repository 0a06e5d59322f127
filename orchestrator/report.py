"""Jobs as rows and text for people and scripts: pure functions over what the StatusReader returns."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from orchestrator.jobs import TERMINAL, Job, Snapshot
from orchestrator.store.daemons import DaemonRecord
from orchestrator.store.reader import JobDetail
from orchestrator.store.rejections import Rejection

#: Where an epoch begins on a chart: a terminal column (int) or a step on a plot's axis (float).
Position = TypeVar("Position", int, float)

STATUS_COLUMNS = ("id", "state", "name", "progress", "steps", "loss", "age", "daemon", "error")


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


def expected_end(job: Job) -> datetime | None:
    """When a running job should finish, at the step rate seen so far; None before any progress.

    ``last_progress_at`` is when ``completed_steps`` last grew, so the rate is whole steps over the
    time they took since the service began working on the job (``working_since``: a queue or quota
    wait is not step time). (The scheduler's poll timing estimates from an arbitrary instant instead,
    counting the step under way as half done.)
    """
    since = job.working_since or job.started_at
    if not (job.total_steps and job.completed_steps and since and job.last_progress_at):
        return None
    seconds_per_step = max(0.0, (job.last_progress_at - since).total_seconds()) / job.completed_steps
    return since + timedelta(seconds=seconds_per_step * job.total_steps)


def timing(job: Job, now: datetime) -> str:
    """How long a job has run and when it should end, for a live view that refreshes between polls.

    ``running 12m, ends in ~3m``; ``queued 40s``; ``took 15m`` once ended. The figures move with
    ``now``, so a display shows time passing even while the progress bar waits for the next poll.
    """
    if job.state in TERMINAL:
        return f"took {age(job.started_at or job.created_at, job.finished_at or now)}"
    if job.started_at is None:
        return f"{job.state.value} {age(job.created_at, now)}"
    text = f"running {age(job.started_at, now)}"
    end = expected_end(job)
    if end is not None:
        text += f", ends in ~{age(now, end)}" if end > now else ", ending about now"
    return text


def substate_words(job: Job) -> str:
    """What the remote job waits for or does, in words: ``TUNING_JOB_STATE_WAITING_FOR_QUOTA`` → ``waiting
    for quota``; "" when the service reported none (or the job has ended: it is history then)."""
    if not job.remote_substate or job.state in TERMINAL:
        return ""
    name = job.remote_substate.rpartition("STATE_")[2] or job.remote_substate
    return name.replace("_", " ").lower()


def state_words(job: Job) -> str:
    """The state as ``status`` shows it: ``running (waiting for quota)``, ``running (cancel requested)``."""
    notes = [n for n in (substate_words(job), "cancel requested" if job.cancel_requested else "") if n]
    return job.state.value + (f" ({', '.join(notes)})" if notes else "")


def estimated_cost(job: Job, price_per_million_tokens: float) -> float | None:
    """Billable tokens x the user's own price (``[vertex] price_per_million_tokens``); None when unknown."""
    if not job.billable_tokens or price_per_million_tokens <= 0:
        return None
    return job.billable_tokens * price_per_million_tokens / 1_000_000


def error_summary(job: Job, width: int = 60) -> str:
    """The final error, or the latest retried one (marked as such), cut to ``width``."""
    text = job.error_message or (f"retrying: {job.last_error}" if job.last_error else "")
    return shorten_end(" ".join(text.split()), width)


def status_row(job: Job, now: datetime) -> dict[str, str]:
    """One line of ``orchestrator status``."""
    pct = progress_pct(job)
    return {
        "id": job.id,
        "state": state_words(job),
        "name": job.display_name or job.tuned_model_id,
        "progress": "" if pct is None else f"{pct:.0f}%",
        "steps": f"{job.completed_steps}/{job.total_steps or '?'}",
        "loss": "" if job.last_loss is None else f"{job.last_loss:.4f}",
        "age": age(job.created_at, now),
        "daemon": held_by(job, now) or "",
        "error": error_summary(job),
    }


def held_by(job: Job, now: datetime) -> str | None:
    """The daemon taking a step of the job right now (``host:pid``), when one holds a live lease.

    A lease lasts one step (a submit, a poll), not the whole run: between steps no daemon holds the
    job, and whichever daemon claims it next takes its next step.
    """
    if job.lease_owner is None or job.lease_expires_at is None or job.lease_expires_at <= now:
        return None
    return job.lease_owner.rsplit(":", 1)[0]


#: The columns ``status`` shortens to fit the terminal, and the least width it gives each.
_SHRINKING = {"name": 12, "error": 12}


def status_table(jobs: Sequence[Job], now: datetime, width: int) -> tuple[list[str], list[list[str]]]:
    """The columns and cells of ``orchestrator status``, fitted to ``width`` characters (one space apart).

    Every column but the name and the error keeps its whole text (people copy the id). The error
    column is left out when no job has one, or when there is no room for it (``show`` has it); the
    name gets two thirds of what is left and is cut in the middle (``batch swe…bs=4 run A``), so jobs
    named alike stay told apart in 80 columns.
    """
    rows = [status_row(job, now) for job in jobs]
    # The error and daemon columns are shown when some job has one.
    columns = [c for c in STATUS_COLUMNS if c not in ("error", "daemon") or any(row[c] for row in rows)]
    widths = {c: max([len(c), *(len(row[c]) for row in rows)]) for c in columns}
    room = width - (len(columns) - 1) - sum(w for c, w in widths.items() if c not in _SHRINKING)
    if "error" in columns and room < sum(_SHRINKING.values()):  # too narrow for both: the name wins
        columns.remove("error")
        room += 1
    if "error" in columns:
        name = max(_SHRINKING["name"], min(widths["name"], room * 2 // 3, room - _SHRINKING["error"]))
        widths.update(name=name, error=min(widths["error"], room - name))
    else:
        widths["name"] = max(_SHRINKING["name"], min(widths["name"], room))
    cells = [
        [shorten_middle(row[c], widths[c]) if c == "name" else shorten_end(row[c], widths[c]) if c == "error"
         else row[c] for c in columns]
        for row in rows
    ]
    return columns, cells


def shorten_middle(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut in the middle with ``…`` (the ends tell names apart)."""
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[: width - 1 - tail] + "…" + (text[-tail:] if tail else "")


def shorten_end(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, cut at the end with ``…``."""
    return text if len(text) <= width else text[: width - 1] + "…"


def job_json(job: Job, price_per_million_tokens: float = 0.0) -> dict[str, Any]:
    """A job as JSON-ready data (``--json``): every column, timestamps in ISO 8601, and the estimated
    cost at the user's own price (None without one, or without billable tokens)."""
    data: dict[str, Any] = {}
    for name in Job.__dataclass_fields__:
        value = getattr(job, name)
        data[name] = value.isoformat() if isinstance(value, datetime) else value
    data["state"] = job.state.value
    data["labels"] = json.loads(job.labels)
    data["tuned_model"] = job.model_name  # the service's name for it, once it named one
    data["progress_pct"] = progress_pct(job)
    data["estimated_cost"] = estimated_cost(job, price_per_million_tokens)
    # The lease is how several daemons share the queue: who takes the job's current step, until when.
    data["held_by"], data["held_until"] = data.pop("lease_owner"), data.pop("lease_expires_at")
    del data["intake_id"]
    return data


def daemon_json(daemon: DaemonRecord, now: datetime) -> dict[str, Any]:
    """A ``daemons`` row as JSON-ready data, with its status and heartbeat age as of ``now``."""
    return {
        "id": daemon.id, "host": daemon.host, "pid": daemon.pid, "spool": daemon.spool,
        "status": daemon.status(now), "heartbeat_age_seconds": round(daemon.heartbeat_age(now), 3),
        "jobs_held": daemon.jobs_held, "started_at": daemon.started_at.isoformat(),
        "heartbeat_at": daemon.heartbeat_at.isoformat(),
        "stopped_at": daemon.stopped_at.isoformat() if daemon.stopped_at else None,
    }


def rejection_json(rejection: Rejection) -> dict[str, Any]:
    """A rejection as JSON-ready data (``rejected --json``, ``/rejections``)."""
    return {
        "id": rejection.id, "file": rejection.file, "rejected_file": rejection.rejected_file,
        "field": rejection.field, "problem": rejection.problem, "error": rejection.error,
        "duplicate_of": rejection.duplicate_of, "rejected_at": rejection.rejected_at.isoformat(),
        "resolved_at": rejection.resolved_at.isoformat() if rejection.resolved_at else None,
        "resubmitted_as": rejection.resubmitted_as,
    }


#: What ``show`` says of a dataset outside the job file (a ``gs://`` URI) before the service counted it.
UNCOUNTED_EXAMPLES = "unknown until the service counts it"


def example_count(detail: JobDetail) -> int | None:
    """The job's training examples: the file's count, else the service's (a ``gs://`` dataset), else None."""
    return detail.example_count if detail.example_count is not None else detail.job.dataset_example_count


def examples_words(detail: JobDetail) -> str:
    """``12``, ``1,204 (counted by the service)``, or that the count is not known yet."""
    if detail.example_count is not None:
        return f"{detail.example_count:,}"
    if detail.job.dataset_example_count is not None:
        return f"{detail.job.dataset_example_count:,} (counted by the service)"
    return UNCOUNTED_EXAMPLES


def detail_json(detail: JobDetail, price_per_million_tokens: float = 0.0) -> dict[str, Any]:
    """``orchestrator show --json``."""
    return {
        **job_json(detail.job, price_per_million_tokens),
        "retried_as": detail.retried_as,
        "example_count": example_count(detail),  # None: not counted yet
        "file_bytes": detail.file_bytes,
        "hyperparameters": dict(detail.hyperparameters),
        "events": [
            {"at": e.at, "from": e.from_state, "to": e.to_state, "detail": dict(e.detail)} for e in detail.events
        ],
        "snapshots": [
            {"step": s.step, "epoch": s.epoch, "mean_loss": s.mean_loss, "compute_time": s.compute_time}
            for s in detail.snapshots
        ],
        "notifications": [
            {
                "id": n.id, "type": n.type, "state": n.state, "created_at": n.created_at,
                "finished_at": n.finished_at, "next_attempt_at": n.next_attempt_at, "last_error": n.last_error,
                "attempts": [
                    {"at": a.at, "outcome": a.outcome, "status_code": a.status_code, "error": a.error,
                     "seconds": a.seconds}
                    for a in n.attempts
                ],
            }
            for n in detail.notifications
        ],
    }


def epoch_starts(snapshots: Sequence[Snapshot]) -> list[tuple[int, int]]:
    """``(index, epoch)`` for each snapshot that begins a new epoch: where the pictures mark epochs."""
    starts = []
    for index, snapshot in enumerate(snapshots):
        if index == 0 or snapshot.epoch != snapshots[index - 1].epoch:
            starts.append((index, snapshot.epoch))
    return starts


def labelled_epochs(
    starts: Sequence[tuple[Position, int]], width_of: Callable[[str], float]
) -> list[tuple[Position, int]]:
    """Which epoch starts get a label: every k-th epoch, for the smallest k in 1, 2, 5, 10, 20, 50, …
    whose labels do not run into each other.

    ``starts`` is ``(position, epoch)`` per epoch start, positions increasing; ``width_of(label)`` is
    the room a label needs (gap included), in the positions' unit. At 80 epochs this labels 0, 10,
    20, … instead of printing 80 numbers on top of each other.
    """
    largest = max((epoch for _, epoch in starts), default=0)
    for step in (factor * 10**power for power in itertools.count() for factor in (1, 2, 5)):
        chosen = [(x, epoch) for x, epoch in starts if epoch % step == 0]
        fits = all(later - x >= width_of(str(epoch)) for (x, epoch), (later, _) in itertools.pairwise(chosen))
        if fits or step > largest:  # past the largest epoch at most one label is left: it always fits
            return chosen
    raise AssertionError("unreachable: the steps grow without bound")


def loss_chart(snapshots: Sequence[Snapshot], width: int = 60, height: int = 8) -> list[str]:
    """The loss curve as a block-character chart for a terminal, with a loss axis and epochs marked.

    Columns are steps (averaged when there are more steps than ``width``); each bar's top uses the
    eighth-blocks, so the curve has ``8 * height`` levels. The row under the chart puts ``┬`` where
    an epoch begins and the epoch numbers under it, the way ``orchestrator plot`` draws lines.
    """
    if not snapshots:
        return []
    columns = min(width, len(snapshots))
    buckets = [snapshots[i * len(snapshots) // columns:(i + 1) * len(snapshots) // columns] for i in range(columns)]
    values = [sum(s.mean_loss for s in bucket) / len(bucket) for bucket in buckets]
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    levels = [1 + round((v - low) / span * (height * 8 - 1)) for v in values]  # at least one eighth
    partial = " ▁▂▃▄▅▆▇█"
    label_width = max(len(f"{high:.4f}"), len(f"{low:.4f}"))
    lines = []
    for row in range(height - 1, -1, -1):
        cells = "".join(partial[max(0, min(8, level - row * 8))] for level in levels)
        label = f"{high:.4f}" if row == height - 1 else f"{low:.4f}" if row == 0 else ""
        lines.append(f"{label:>{label_width}} ┤{cells}".rstrip())
    axis, numbers = ["─"] * columns, [" "] * (columns + 8)
    first_step_of_bucket = [bucket[0].step for bucket in buckets]
    starts = [
        (next(c for c in range(columns - 1, -1, -1) if first_step_of_bucket[c] <= snapshots[index].step), epoch)
        for index, epoch in epoch_starts(snapshots)
    ]
    for column, epoch in labelled_epochs(starts, lambda text: len(text) + 1):
        axis[column] = "┬"
        numbers[column:column + len(str(epoch))] = str(epoch)
    lines.append(f"{'':>{label_width}} └{''.join(axis)}")
    lines.append(f"{'epoch':>{label_width}}  {''.join(numbers).rstrip()}")
    lines.append(f"{'':>{label_width}}  step {snapshots[0].step} → {snapshots[-1].step}")
    return lines


def epoch_summary(snapshots: Sequence[Snapshot]) -> list[dict[str, Any]]:
    """Per epoch: its steps, and its first, last and mean loss (``show`` prints this table)."""
    rows: list[dict[str, Any]] = []
    starts = [index for index, _epoch in epoch_starts(snapshots)] + [len(snapshots)]
    for begin, end in itertools.pairwise(starts):
        part = snapshots[begin:end]
        rows.append({
            "epoch": part[0].epoch, "steps": f"{part[0].step}-{part[-1].step}", "first": part[0].mean_loss,
            "last": part[-1].mean_loss, "mean": sum(s.mean_loss for s in part) / len(part),
        })
    return rows
