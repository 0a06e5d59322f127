"""Every Vertex AI tuning job the emulator holds: ids, the per-project quota queue, listing, bookkeeping.

The concurrent-jobs quota ([med]: "as low as 1 per project") is a first-in-first-out queue per project:
a job whose dataset is processed waits (PENDING, ``…_WAITING_FOR_QUOTA``) until fewer than
``vertex_max_concurrent_jobs`` jobs of its project hold a slot, and it gets the slot at the simulated
instant the last one freed, whenever a request happens to observe it, so the schedule does not
depend on how often anyone polls.  ``advance`` settles that before every read.

Listing is newest first ([low]) with an opaque page token bound to the filter; the filter grammar is
the contract's ([low]): terms ``state=JOB_STATE_X`` and ``labels.KEY=VALUE`` (``:`` works as ``=``,
values may be double-quoted), joined by ``AND``.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter, defaultdict, deque
from typing import Final

from orchestrator.emulator.concurrency import peak_overlap
from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.paging import decode_page_token, encode_page_token, query_hash
from orchestrator.emulator.records import SimClock
from orchestrator.emulator.settings import EmulatorSettings
from orchestrator.emulator.vertex.dataset import data_stats
from orchestrator.emulator.vertex.records import TERMINAL, JobFaults, TuningJobRecord
from orchestrator.emulator.vertex.validation import TuningSpec

DEFAULT_PAGE_SIZE: Final = 100
MAX_PAGE_SIZE: Final = 1000
JOB_STATES: Final = frozenset(
    {
        "JOB_STATE_QUEUED",
        "JOB_STATE_PENDING",
        "JOB_STATE_RUNNING",
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLING",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_PAUSED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_UPDATING",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)
_TERM: Final = re.compile(r'\s*(state|labels\.([^\s=:]+))\s*[=:]\s*(?:"([^"]*)"|(\S+))\s*')
_AND: Final = re.compile(r"\s+AND\s+", re.IGNORECASE)
#: Terms a filter is made of: ("state", "", value) or ("label", key, value).
Term = tuple[str, str, str]


def parse_filter(text: str) -> list[Term]:
    """The filter's terms; 400 for anything outside the supported grammar."""
    if not text.strip():
        return []
    terms: list[Term] = []
    for part in _AND.split(text.strip()):
        found = _TERM.fullmatch(part)
        if found is None:
            raise ApiError.invalid(
                f"Unsupported filter term '{part}': use state=JOB_STATE_X or labels.KEY=VALUE, joined by AND.",
                "filter",
            )
        field, key, quoted, bare = found.groups()
        value = quoted if quoted is not None else bare
        if field == "state":
            if value not in JOB_STATES:
                raise ApiError.invalid(f"Unknown job state '{value}' in filter.", "filter")
            terms.append(("state", "", value))
        else:
            terms.append(("label", key, value))
    return terms


class TuningJobs:
    """The Vertex AI jobs of every project.  Single-threaded: only the event loop touches it."""

    def __init__(self, settings: EmulatorSettings, clock: SimClock) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = random.Random(settings.seed ^ 0x7E57)
        self.jobs: dict[str, TuningJobRecord] = {}
        self.by_experiment: dict[str, TuningJobRecord] = {}
        self.tensorboards: dict[str, str] = {}
        self.creates_by_label: Counter[str] = Counter()
        self.creates_by_dataset: Counter[str] = Counter()
        self._seq = 0
        self._waiting: defaultdict[str, deque[TuningJobRecord]] = defaultdict(deque)
        self._holding: defaultdict[str, list[TuningJobRecord]] = defaultdict(list)
        self._last_grant: dict[str, float] = {}
        self._experiments: set[str] = set()

    def reset(self) -> None:
        """Forget every job and count (ids keep advancing)."""
        self.jobs.clear()
        self.by_experiment.clear()
        self.creates_by_label.clear()
        self.creates_by_dataset.clear()
        self._waiting.clear()
        self._holding.clear()
        self._last_grant.clear()

    # -- ids ---------------------------------------------------------------------------------------

    def _number(self) -> str:
        """A 19-digit numeric id, as Vertex AI's resource ids are."""
        return str(self.rng.randrange(10**18, 9 * 10**18))

    def _experiment_id(self, created: float) -> str:
        """``tuning-experiment-YYYYMMDDhhmmssffffff`` from the creation time, unique."""
        micros = round(self.clock.wall(created) * 1_000_000)
        while True:
            seconds, fraction = divmod(micros, 1_000_000)
            candidate = "tuning-experiment-" + time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds)) + f"{fraction:06d}"
            if candidate not in self._experiments:
                self._experiments.add(candidate)
                return candidate
            micros += 1

    def tensorboard_of(self, project: str, location: str) -> str:
        """The id of a project's default TensorBoard in a location (made on first use)."""
        key = f"{project}/{location}"
        if key not in self.tensorboards:
            self.tensorboards[key] = self._number()
        return self.tensorboards[key]

    # -- lifecycle ---------------------------------------------------------------------------------

    def create(
        self, project: str, location: str, spec: TuningSpec, faults: JobFaults, list_lag: float
    ) -> TuningJobRecord:
        """Commit a new job (PENDING) and queue it for a quota slot."""
        now = self.clock.now()
        self.advance(project, now)
        self._seq += 1
        per_epoch = math.ceil(len(spec.training) / self.settings.vertex_batch_size)
        total = per_epoch * spec.epochs
        record = TuningJobRecord(
            job_id=self._number(),
            project=project,
            location=location,
            seq=self._seq,
            spec=spec,
            created=now,
            ready=now + self.settings.start_delay_seconds,
            visible_from=now + list_lag,
            seed=self.rng.getrandbits(64),
            steps_per_epoch=per_epoch,
            total_steps=total,
            step_seconds=self.settings.step_seconds,
            faults=faults,
            experiment_id=self._experiment_id(now),
            tensorboard_id=self.tensorboard_of(project, location),
            series_ids={},
            model_id=self._number(),
            endpoint_ids=tuple(self._number() for _ in range(spec.epochs)),
            stats=data_stats(spec.training, total),
        )
        record.series_ids = {metric: self._number() for metric in record.metrics}
        self.jobs[record.job_id] = record
        self.by_experiment[record.experiment_id] = record
        self._waiting[project].append(record)
        for key, value in spec.labels:
            self.creates_by_label[f"{key}={value}"] += 1
        self.creates_by_dataset[spec.training_uri] += 1
        self.advance(project, now)
        return record

    def get(self, project: str, location: str, job_id: str) -> TuningJobRecord:
        """The job, or 404."""
        record = self.jobs.get(job_id)
        if record is None or record.project != project or record.location != location:
            name = f"projects/{project}/locations/{location}/tuningJobs/{job_id}"
            raise ApiError("NOT_FOUND", f"TuningJob {name} not found.")
        self.advance(project, self.clock.now())
        return record

    def cancel(self, record: TuningJobRecord) -> None:
        """Best-effort cancel; 400 FAILED_PRECONDITION when the job has already ended ([low])."""
        now = self.clock.now()
        self.advance(record.project, now)
        state = record.view(now).state
        if state in TERMINAL:
            raise ApiError(
                "FAILED_PRECONDITION", f"Cannot cancel tuning job {record.name} because it is in state {state}."
            )
        if record.run is None:
            self._waiting[record.project].remove(record)
        record.cancel(now)  # the answer cache is keyed by state, so it needs no clearing
        self.advance(record.project, now)

    def advance(self, project: str, now: float) -> None:
        """Grant quota slots to waiting jobs, each at the instant one freed (see the module docstring)."""
        queue = self._waiting.get(project)
        if not queue:
            return  # the poll path: nothing waits, nothing to settle
        limit = self.settings.vertex_max_concurrent_jobs
        holders = self._holding[project]
        while queue:
            job = queue[0]
            at = max(job.ready, self._last_grant.get(project, -math.inf))
            if limit > 0:
                ends = sorted(end for end in (holder.slot_end() for holder in holders) if end > at)
                if len(ends) >= limit:
                    at = ends[len(ends) - limit]
            if at > now:
                break
            queue.popleft()
            job.grant(at)
            self._last_grant[project] = at
            if limit > 0:
                holders.append(job)
        # Holders that ended before any future grant could start no longer matter.
        horizon = now if not queue else self._last_grant.get(project, -math.inf)
        holders[:] = [holder for holder in holders if holder.slot_end() > horizon]

    def advance_all(self) -> None:
        """Settle every project (introspection reads)."""
        now = self.clock.now()
        for project in list(self._waiting):
            self.advance(project, now)

    # -- listing -----------------------------------------------------------------------------------

    def list_page(
        self, project: str, location: str, page_size: int, page_token: str, filter_text: str
    ) -> tuple[list[TuningJobRecord], str | None]:
        """One page, newest first; a token only when more jobs match (the SDK's pager needs that)."""
        if page_size < 0:
            raise ApiError.invalid("page_size must not be negative.", "page_size")
        terms = parse_filter(filter_text)
        now = self.clock.now()
        self.advance(project, now)
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        bound_to = query_hash(project, location, filter_text)
        before = decode_page_token(page_token, bound_to) if page_token else math.inf
        page: list[TuningJobRecord] = []
        for record in reversed(self.jobs.values()):
            if record.seq >= before or record.project != project or record.location != location:
                continue
            if record.visible_from > now or not _matches(record, terms, now):
                continue
            if len(page) == size:
                return page, encode_page_token(page[-1].seq, bound_to)
            page.append(record)
        return page, None

    # -- introspection -----------------------------------------------------------------------------

    def peaks(self) -> dict[str, int]:
        """Most jobs ever active at once (created, not yet ended) and running at once (holding a slot)."""
        now = self.clock.now()
        self.advance_all()
        active: list[tuple[float, float]] = []
        running: list[tuple[float, float]] = []
        for record in self.jobs.values():
            end = record.view(now).end_time
            active.append((record.created, end if end is not None else math.inf))
            if record.granted is not None:
                running.append((record.granted, record.slot_end()))
        return {"active": peak_overlap(active), "running": peak_overlap(running)}

    def active_count(self) -> int:
        """Jobs not yet in a terminal state."""
        now = self.clock.now()
        self.advance_all()
        return sum(1 for record in self.jobs.values() if record.view(now).state not in TERMINAL)


def _matches(record: TuningJobRecord, terms: list[Term], now: float) -> bool:
    labels = dict(record.spec.labels)
    for kind, key, value in terms:
        if kind == "state" and record.view(now).state != value:
            return False
        if kind == "label" and labels.get(key) != value:
            return False
    return True
