"""All tuned models the emulator holds, with id generation, ownership, listing and bookkeeping.

Ids follow production (gemini-api.md §6): a chosen ``tunedModelId`` is used as is (409 when taken);
otherwise ``slug(displayName)-<12 [a-z0-9]>``; operation ids are 12 ``[a-z0-9]``.  Deleting a model
frees its id.  The registry also keeps the counts the introspection routes report.
"""

from __future__ import annotations

import math
import random
import re
import string
from collections import Counter, defaultdict
from typing import Final

from orchestrator.emulator.catalog import BaseModel
from orchestrator.emulator.concurrency import peak_overlap
from orchestrator.emulator.errors import ApiError, message_for_code, resource_exhausted
from orchestrator.emulator.paging import decode_page_token, encode_page_token, query_hash
from orchestrator.emulator.records import SimClock, TunedModelRecord
from orchestrator.emulator.settings import EmulatorSettings
from orchestrator.emulator.training import Run, total_steps
from orchestrator.emulator.validation import CreateSpec

_ALPHABET: Final = string.ascii_lowercase + string.digits
DEFAULT_PAGE_SIZE: Final = 10
MAX_PAGE_SIZE: Final = 1000


def slug(display_name: str) -> str:
    """Lowercase, spaces → hyphens, drop other characters (underscores vanish), collapse hyphens."""
    text = display_name.lower().replace(" ", "-")
    text = re.sub(r"[^a-z0-9-]", "", text)
    text = re.sub(r"-+", "-", text)
    text = text.lstrip("-0123456789").rstrip("-")
    return text[:40].rstrip("-")


class Registry:
    """The emulator's in-memory state.  Single-threaded: only the event loop touches it."""

    def __init__(self, settings: EmulatorSettings, clock: SimClock) -> None:
        self.settings = settings
        self.clock = clock
        self.models: dict[str, TunedModelRecord] = {}
        self.rng = random.Random(settings.seed)
        self._seq = 0
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.creates: Counter[str] = Counter()
        #: [created, ended) of models deleted while known, so the peak survives deletes.
        self._deleted_spans: list[tuple[float, float]] = []
        #: Ids that may still be CREATING, per owner; pruned lazily so counting stays cheap at 10k jobs.
        self._running: defaultdict[str, set[str]] = defaultdict(set)

    # -- ids ---------------------------------------------------------------------------------------

    def random_id(self, length: int) -> str:
        """``length`` characters of ``[a-z0-9]`` from the seeded RNG (operation and permission ids)."""
        return self._random(length)

    def _random(self, length: int) -> str:
        return "".join(self.rng.choice(_ALPHABET) for _ in range(length))

    def new_model_id(self, display_name: str) -> str:
        """``slug-xxxxxxxxxxxx``, or a random id starting with a letter when there is no usable name."""
        while True:
            base = slug(display_name)
            if base:
                candidate = f"{base}-{self._random(12)}"
            else:
                candidate = self.rng.choice(string.ascii_lowercase) + self._random(11)
            if candidate not in self.models:
                return candidate

    # -- lifecycle ---------------------------------------------------------------------------------

    def get(self, model_id: str) -> TunedModelRecord:
        """The record, or 404 with production's message."""
        record = self.models.get(model_id)
        if record is None:
            raise ApiError.model_not_found(f"tunedModels/{model_id}")
        return record

    def owner_changed(self, record: TunedModelRecord, previous: str) -> None:
        """Keep the active-job index right after ``:transferOwnership``."""
        self._running[previous].discard(record.model_id)
        self._running[record.owner].add(record.model_id)

    def create(
        self,
        spec: CreateSpec,
        model_id: str | None,
        owner: str,
        *,
        fail_at: int | None = None,
        fail_code: int = 13,
        fail_message: str | None = None,
        stall_at: int | None = None,
    ) -> TunedModelRecord:
        """Commit a new tuned model and start its simulated run."""
        if model_id is not None and model_id in self.models:
            raise ApiError("ALREADY_EXISTS", f"Tuned model tunedModels/{model_id} already exists.")
        if self.settings.max_active_jobs and self.active_jobs(owner) >= self.settings.max_active_jobs:
            raise resource_exhausted(
                retry_delay=60.0,
                quota_id="ConcurrentTuningJobsPerProject",
                metric="generativelanguage.googleapis.com/concurrent_tuning_jobs",
                limit=self.settings.max_active_jobs,
            )
        now = self.clock.now()
        model_id = model_id or self.new_model_id(spec.display_name)
        self._seq += 1
        run = Run(
            start=now + self.settings.start_delay_seconds,
            step_seconds=self.settings.step_seconds,
            total=total_steps(len(spec.examples), spec.epochs, spec.batch_size),
            seed=self.rng.getrandbits(64),
            fail_at=fail_at,
            stall_at=stall_at,
        )
        record = TunedModelRecord(
            model_id=model_id,
            operation_id=self._random(12),
            owner=owner,
            seq=self._seq,
            spec=spec,
            created=now,
            run=run,
            display_name=spec.display_name,
            description=spec.description,
            temperature=spec.temperature,
            top_p=spec.top_p,
            top_k=spec.top_k,
            reader_project_numbers=spec.reader_project_numbers,
            fail_code=fail_code,
        )
        record.fail_message = fail_message or message_for_code(fail_code)
        self.models[model_id] = record
        self._running[owner].add(model_id)
        self.creates[record.name] += 1
        return record

    def reset(self) -> None:
        """Forget every model and counter (ids and sequence numbers keep advancing)."""
        self.models.clear()
        self._running.clear()
        self.requests.clear()
        self.creates.clear()
        self._deleted_spans.clear()

    def source_base(self, name: str) -> BaseModel:
        """The base model behind ``tunedModels/{id}`` (for ``tunedModelSource``), or 404."""
        return self.get(name.removeprefix("tunedModels/")).spec.base

    def delete(self, model_id: str) -> None:
        """Remove the model and its operation; its run stops with it and the id becomes free."""
        record = self.get(model_id)
        end = record.run.progress(self.clock.now()).end_time
        self._deleted_spans.append((record.created, end if end is not None else self.clock.now()))
        del self.models[model_id]

    def peak_active_jobs(self) -> int:
        """Most tuned models ever CREATING at once (all owners), deleted ones included."""
        now = self.clock.now()
        spans = list(self._deleted_spans)
        for record in self.models.values():
            end = record.run.progress(now).end_time
            spans.append((record.created, end if end is not None else math.inf))
        return peak_overlap(spans)

    def active_jobs(self, owner: str | None = None) -> int:
        """Tuned models still CREATING (all owners, or one); finished ones are dropped from the index."""
        now = self.clock.now()
        owners = list(self._running) if owner is None else [owner]
        count = 0
        for name in owners:
            ids = self._running[name]
            for model_id in list(ids):
                record = self.models.get(model_id)
                if record is None or record.owner != name or record.run.progress(now).ending is not None:
                    ids.discard(model_id)
            count += len(ids)
        return count

    # -- listing -----------------------------------------------------------------------------------

    def list_page(
        self, owner: str | None, page_size: int, page_token: str, filter_text: str
    ) -> tuple[list[TunedModelRecord], str | None]:
        """One page in creation order; the token is bound to the query and survives deletions."""
        if page_size < 0:
            raise ApiError.invalid("page_size must not be negative.", "page_size")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        bound_to = query_hash(str(owner), filter_text)
        after = 0
        if page_token:
            after = decode_page_token(page_token, bound_to)
        terms = filter_text.lower().split()
        scopes = {term for term in terms if ":" in term}
        matches = [
            record
            for record in self.models.values()
            if record.seq > after and _visible(record, owner, scopes) and _matches(record, terms)
        ]
        page = matches[:size]
        token = encode_page_token(page[-1].seq, bound_to) if len(matches) > size else None
        return page, token


def _visible(record: TunedModelRecord, caller: str | None, scopes: set[str]) -> bool:
    """Which models a listing covers (``caller`` None: credentials are not checked, so every model).

    By default the caller's own models; ``readers:me`` / ``writers:me`` select models others shared
    with the caller with at least that role, ``readers:everyone`` models shared with everyone.
    """
    if "readers:everyone" in scopes:
        return record.shared_with_everyone()
    for scope, role in (("writers:me", "WRITER"), ("readers:me", "READER")):
        if scope in scopes:
            return caller is not None and record.owner != caller and record.grants(caller, role)
    return caller is None or record.owner == caller


def _matches(record: TunedModelRecord, terms: list[str]) -> bool:
    """Free-text terms (those without ``:``) must all appear in displayName or description."""
    text = f"{record.display_name}\n{record.description}".lower()
    return all(term in text for term in terms if ":" not in term)
