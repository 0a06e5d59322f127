"""The job lifecycle as data: states, the allowed transitions, and the value objects of a job.

Pure: nothing here does I/O. The store enforces the same table with guarded UPDATEs, so a
terminal state can never be left (promise 4) even if two code paths race.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


class JobState(enum.StrEnum):
    """Where a job stands. The values are what the status database stores."""

    QUEUED = "queued"  #: recorded, waiting for a free slot to submit
    SUBMITTING = "submitting"  #: the job's identity committed; create in progress or unclear
    RUNNING = "running"  #: the service accepted the create; its name for the job is recorded
    CANCELLING = "cancelling"  #: cancel sent (or to be sent) to the API; polling to its real end
    SUCCEEDED = "succeeded"  #: the operation ended with a tuned model (ACTIVE)
    FAILED = "failed"  #: the API refused or the tuning failed; the API's words are recorded
    CANCELLED = "cancelled"  #: cancelled before submission, or the operation ended CANCELLED


TRANSITIONS: Mapping[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTING, JobState.CANCELLED}),
    # submitting -> cancelled: a user's cancel, when no submission can have reached the service.
    JobState.SUBMITTING: frozenset({JobState.RUNNING, JobState.FAILED, JobState.CANCELLED}),
    # running -> cancelled: the operation was cancelled by someone else (AI Studio, another client).
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLING, JobState.CANCELLED}),
    JobState.CANCELLING: frozenset({JobState.CANCELLED, JobState.SUCCEEDED, JobState.FAILED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}

TERMINAL: frozenset[JobState] = frozenset(s for s, targets in TRANSITIONS.items() if not targets)
#: States in which a remote tuning job may exist and counts against the active-job cap.
REMOTE_ACTIVE: frozenset[JobState] = frozenset({JobState.SUBMITTING, JobState.RUNNING, JobState.CANCELLING})


def can_transition(current: JobState, new: JobState) -> bool:
    """Whether the lifecycle allows moving from ``current`` to ``new``."""
    return new in TRANSITIONS[current]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One training step as the API reports it (``TuningSnapshot``)."""

    step: int
    epoch: int
    mean_loss: float
    compute_time: str | None = None


@dataclass(frozen=True, slots=True)
class Job:
    """A job row, one attribute per column of the ``jobs`` table (documented in store/schema.py)."""

    id: str
    job_key: str
    state: JobState
    priority: int
    display_name: str | None
    base_model: str
    tuned_model_id: str
    labels: str
    source_file: str
    intake_id: str
    operation_name: str | None
    remote_state: str | None
    total_steps: int | None
    completed_steps: int
    last_loss: float | None
    attempts: int
    next_check_at: datetime | None
    last_error: str | None
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    cancel_reason: str | None
    cancel_sent_at: datetime | None
    max_run_time: float | None
    stall_timeout: float | None
    error_code: int | None
    error_status: str | None
    error_message: str | None
    created_at: datetime
    updated_at: datetime
    submitted_at: datetime | None
    started_at: datetime | None
    last_progress_at: datetime | None
    finished_at: datetime | None
    retry_of: str | None = None  #: the failed or cancelled job this one is a new attempt of
    # What a tuning service learned and may fill (orchestrator.tuning.RemoteFacts), and when the
    # latest submission was sent.
    remote_job: str | None = None
    remote_substate: str | None = None
    billable_tokens: int | None = None
    model_name: str | None = None
    endpoint: str | None = None
    training_data_uri: str | None = None
    validation_data_uri: str | None = None
    submit_sent_at: datetime | None = None
    #: When the service was first seen working on the job, past any queue or quota wait (None while it
    #: waits): the origin of the step rate that paces polls and the ETA.
    working_since: datetime | None = None
    #: The training examples as the service counted them (Vertex ``tuningDatasetExampleCount``): the
    #: only count of a ``gs://`` dataset, which the job file does not hold.
    dataset_example_count: int | None = None

    @property
    def tuned_model_name(self) -> str:
        """The API resource name of the job's tuned model."""
        return f"tunedModels/{self.tuned_model_id}"


#: The API's pattern for a tuned-model id (at most 40 characters).
TUNED_MODEL_ID_PATTERN = re.compile(r"[a-z]([a-z0-9-]{0,38}[a-z0-9])?")


def new_installation_id() -> str:
    """A random 6-character tag (letter first) that sets this installation's tuned-model ids apart."""
    return "i" + base64.b32encode(secrets.token_bytes(5)).decode().lower()[:5]


def derive_tuned_model_id(job_key: str, display_name: str | None, installation_id: str) -> str:
    """The tuned-model id of a job that did not choose one: deterministic and collision-resistant.

    Tuned-model ids are (probably) one global namespace across all users, so the id mixes the
    installation's tag with a hash of the job key: the same job always maps to the same id (which
    is what makes a repeated create safe), and no other installation derives it. A readable prefix
    from the display name helps people find the model in AI Studio.
    """
    digest = hashlib.sha256(f"{installation_id}\0{job_key}".encode()).digest()
    tail = base64.b32encode(digest).decode().lower()[:12]
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", (display_name or "").lower())).strip("-")[:18].strip("-")
    if not slug or not slug[0].isalpha():
        slug = f"job-{slug}".strip("-")[:18].strip("-")
    return f"{slug}-{installation_id}-{tail}"


#: How a retry's job key marks its attempt: ``<key>~retry<N>``.
_RETRY_SUFFIX = re.compile(r"~retry(\d+)$")


def retry_attempt(job: Job) -> int:
    """Which attempt a job is: 0 for the first, ``N`` for the one its key marks ``~retryN``."""
    match = _RETRY_SUFFIX.search(job.job_key)
    return int(match.group(1)) if match else 0


def retry_identity(original: Job, attempt: int, installation_id: str) -> tuple[str, str]:
    """The job key and tuned-model id of a retry of ``original``: a new remote identity.

    The one place that decides how a new attempt is told apart from the job it retries (the key
    gets ``~retryN``; the tuned-model id is derived from that key as the intake derives one), so the
    exactly-once create of the new attempt can never adopt the failed remote job. (A Vertex job is
    told apart by its job id, which a retry, being a new row, always has anew.)
    """
    base = _RETRY_SUFFIX.sub("", original.job_key)
    job_key = f"{base}~retry{attempt}"
    return job_key, derive_tuned_model_id(job_key, original.display_name, installation_id)
