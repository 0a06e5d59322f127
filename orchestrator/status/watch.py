"""``orchestrator watch``: a live progress bar per active job, until they have all ended.

The multi-job version of the legacy SDK's ``wait_bar``: it reads the status database (read-only)
once per ``interval`` instead of polling the API, so watching costs no quota and any number of
people can watch at once. Jobs that start while it runs join the display; jobs that end stay on
it with their final state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from orchestrator.jobs import TERMINAL, Job, JobState
from orchestrator.report import shorten_middle, state_words, timing
from orchestrator.text import terminal_text

#: Reads the jobs to show: the unfinished ones, plus those with the given ids whatever their state.
FetchJobs = Callable[[Collection[str]], Awaitable[list[Job]]]
Sleep = Callable[[float], Awaitable[Any]]
Now = Callable[[], datetime]

_STATE_STYLE = {
    JobState.SUCCEEDED: "green", JobState.FAILED: "red", JobState.CANCELLED: "yellow",
    JobState.CANCELLING: "yellow", JobState.QUEUED: "dim",
}


def _fields(job: Job, now: datetime) -> dict[str, Any]:
    style = _STATE_STYLE.get(job.state, "cyan")
    loss = "" if job.last_loss is None else f"loss {job.last_loss:.4f}"
    return {"state": f"[{style}]{escape(state_words(job))}[/{style}]", "loss": loss, "timing": timing(job, now)}


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def watch(
    fetch: FetchJobs, console: Console, sleep: Sleep, interval: float = 1.0, now: Now = _utc_now
) -> list[Job]:
    """Show live progress until every job shown has ended; returns the jobs as last seen.

    Each refresh also shows how long each job has run and when it should end (``timing``): polls
    are sparse by design (the scheduler polls near the expected end), so between them the bar
    stands still while these figures move. Returns at once (printing a line) when no job is active.
    ``sleep`` and ``now`` are injected so that tests run the loop without waiting.
    """
    jobs = await fetch(())
    if not any(job.state not in TERMINAL for job in jobs):
        console.print("no active jobs")
        return jobs
    tasks: dict[str, TaskID] = {}
    progress = Progress(
        TextColumn("{task.description}", markup=False),  # the display name is the user's text, not markup
        BarColumn(bar_width=30),
        TaskProgressColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[state]}"),
        TextColumn("{task.fields[loss]}"),
        TextColumn("{task.fields[timing]}"),
        console=console,
        auto_refresh=False,
    )
    with progress:
        while True:
            moment = now()
            for job in jobs:
                name = shorten_middle(terminal_text(job.display_name or job.tuned_model_id), 28)
                if job.id not in tasks:
                    tasks[job.id] = progress.add_task(f"{job.id}  {name:<28}", total=job.total_steps,
                                                      **_fields(job, moment))
                total = job.total_steps if job.total_steps else None
                completed = total if job.state is JobState.SUCCEEDED and total else job.completed_steps
                progress.update(tasks[job.id], total=total, completed=completed, **_fields(job, moment))
            progress.refresh()
            if all(job.state in TERMINAL for job in jobs):
                return jobs
            await sleep(interval)
            jobs = await fetch(tasks.keys())
