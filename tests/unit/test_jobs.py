"""The lifecycle table, as properties: terminal states absorb, every state can finish, the store enforces it."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.errors import StaleWrite
from orchestrator.jobs import (
    REMOTE_ACTIVE,
    TERMINAL,
    TRANSITIONS,
    TUNED_MODEL_ID_PATTERN,
    JobState,
    can_transition,
    derive_tuned_model_id,
    new_installation_id,
)
from orchestrator.store import migrate
from orchestrator.store.sql import SqlStore
from tests.reliability.conftest import add_job

STATES = st.sampled_from(list(JobState))
JOB_NUMBERS = itertools.count()


def reachable(start: JobState) -> set[JobState]:
    seen, todo = {start}, [start]
    while todo:
        for target in TRANSITIONS[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_terminal_states_have_no_way_out_and_every_state_can_finish() -> None:
    assert {JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED} == TERMINAL
    assert reachable(JobState.QUEUED) == set(JobState)
    for state in JobState:
        assert reachable(state) & TERMINAL, state
    assert REMOTE_ACTIVE.isdisjoint(TERMINAL) and JobState.QUEUED not in REMOTE_ACTIVE


def test_a_submitting_job_ends_cancelled_only_through_the_scheduler_rule() -> None:
    """Submitting runs, fails, or is cancelled; the last only when no create can have landed.

    The table allows it; the scheduler takes it only for a job whose every submission failed
    before it was sent (``tests/reliability/test_unreachable.py``).
    """
    assert TRANSITIONS[JobState.SUBMITTING] == {JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}


@given(STATES, STATES)
def test_can_transition_is_the_table(current: JobState, new: JobState) -> None:
    assert can_transition(current, new) == (new in TRANSITIONS[current])
    if current in TERMINAL:
        assert not can_transition(current, new)


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("jobs") / "orchestrator.db"
    migrate(path)
    return path


@settings(max_examples=40, deadline=None)
@given(walk=st.lists(STATES, min_size=1, max_size=8))
def test_the_store_applies_exactly_the_allowed_transitions(database: Path, walk: list[JobState]) -> None:
    """A random sequence of wanted moves: each allowed one is applied, every other changes nothing."""

    async def run() -> None:
        store = SqlStore(database, 5.0)
        try:
            job = await add_job(store, next(JOB_NUMBERS))
            now = datetime.now(UTC)
            [job] = [j for j in await store.claim_due("me", now, timedelta(seconds=60), 1000, 1000) if j.id == job.id]
            for wanted in walk:
                before = job
                if can_transition(job.state, wanted):
                    job = await store.commit_step(job, "me", now, to=wanted, release=False)
                    assert job.state is wanted
                else:
                    with pytest.raises(StaleWrite):
                        await store.commit_step(job, "me", now, to=wanted, release=False)
                    assert job == before
            if job.state in TERMINAL:
                assert job.finished_at is not None and job.next_check_at is None
        finally:
            await store.dispose()

    asyncio.run(run())


@given(key=st.text(min_size=1, max_size=200), name=st.one_of(st.none(), st.text(max_size=80)))
def test_derived_ids_are_valid_deterministic_and_per_installation(key: str, name: str | None) -> None:
    ours = derive_tuned_model_id(key, name, "iabcde")
    assert TUNED_MODEL_ID_PATTERN.fullmatch(ours) and len(ours) <= 40
    assert derive_tuned_model_id(key, name, "iabcde") == ours
    assert "-iabcde-" in ours
    assert derive_tuned_model_id(key, name, "izzzzz") != ours


def test_installation_ids_are_fresh_and_fit_the_id_pattern() -> None:
    tags = {new_installation_id() for _ in range(200)}
    assert len(tags) == 200 and all(TUNED_MODEL_ID_PATTERN.fullmatch(t) and len(t) == 6 for t in tags)
