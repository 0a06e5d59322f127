"""A tuning service as the scheduler sees it: the lifecycle, not the service.

The scheduler drives every job through the same steps whatever service tunes it (DESIGN.md, "Two
tuning services, one lifecycle"): *prepare* what the submission needs (Vertex: upload the training
data once; Gemini: nothing), *submit* with the job's own identity, *find* an earlier submission
whose outcome was never seen, *poll* for progress and new loss points, *cancel*, and *discard* what a
cancelled job left behind. Each service is one package implementing :class:`TuningApi` (``gemini/``,
``vertex/``) that owns its HTTP, auth, wire format and error mapping, and answers in the values
below. What only one service knows (a Vertex sub-state, billable tokens, an endpoint) is a field of
:class:`RemoteFacts` that a service may fill and the store records as a column of the job.

Every method raises only :class:`~orchestrator.errors.ApiError` subclasses, classified alike for
every service: ``TransientError`` (and its ``RateLimited``) is retried later, ``Unauthenticated``
pauses the scheduler, any other error fails the job with the service's own words.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Protocol

from orchestrator.jobs import Job, Snapshot

__all__ = ["CANCELLED_CODE", "Outcome", "RemoteFacts", "RemoteStatus", "TuningApi", "Verdict"]

#: ``google.rpc.Code.CANCELLED``: the code of a remote job that ended because it was cancelled.
CANCELLED_CODE = 1


class Outcome(enum.Enum):
    """What one read of the remote job means for the job."""

    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome and, for failures, the service's own code and words."""

    outcome: Outcome
    code: int | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class RemoteFacts:
    """What a service learned about a job that the job records: each field is a ``jobs`` column.

    None means "not learned by this answer" (the column keeps its value); an empty string means "learned
    to be absent" (the column is cleared: a sub-state that ended). A service fills the fields it has;
    the store, the CLI and the views show whatever is filled.
    """

    #: Gemini: the create operation, ``tunedModels/{id}/operations/{op}``.
    operation_name: str | None = None
    #: Vertex: the tuning job, ``projects/{n}/locations/{l}/tuningJobs/{id}``.
    remote_job: str | None = None
    #: The service's own state word: Gemini ``TunedModel.state``, Vertex ``JOB_STATE_…``.
    remote_state: str | None = None
    #: What the remote job is doing or waiting for: Vertex ``TUNING_JOB_STATE_WAITING_FOR_QUOTA``, …
    remote_substate: str | None = None
    #: Training tokens billed for the whole tuning (the dataset's billable tokens x epochs).
    billable_tokens: int | None = None
    #: The tuned model: Gemini ``tunedModels/{id}``, Vertex ``projects/{n}/locations/{l}/models/{m}@{v}``.
    model_name: str | None = None
    #: Vertex: the endpoint serving the tuned model.
    endpoint: str | None = None
    #: Vertex: the ``gs://`` objects the training and validation data were uploaded to.
    training_data_uri: str | None = None
    validation_data_uri: str | None = None
    #: The training examples as the service counted them (Vertex ``tuningDatasetExampleCount``).
    dataset_example_count: int | None = None

    def columns(self) -> dict[str, Any]:
        """The filled fields, by column name (an empty string as None: clear the column)."""
        return {f.name: value if value != "" else None for f in fields(self)
                if (value := getattr(self, f.name)) is not None}


@dataclass(frozen=True, slots=True)
class RemoteStatus:
    """One read of a remote job, in the scheduler's terms."""

    verdict: Verdict
    facts: RemoteFacts = RemoteFacts()
    #: Steps in all, when the service knows them.
    total_steps: int | None = None
    #: Loss points of steps after the job's ``completed_steps`` (those already recorded), by step.
    snapshots: tuple[Snapshot, ...] = ()
    #: Steps done when the service counts them apart from loss points (None: the last point's step).
    completed_steps: int | None = None
    #: False when this read could not see progress at all (a Gemini model polled by its state
    #: alone): the stall detector must not take that silence for a stall.
    progress_visible: bool = True
    #: True while the service holds the job but has not begun the work (Vertex: QUEUED, or PENDING
    #: while it processes the dataset or waits for quota): the wait is neither a stall nor part of
    #: the time the steps take, so the step rate is measured from when the waiting ended.
    waiting: bool = False


class TuningApi(Protocol):
    """The calls the scheduler makes, each about one job, each raising only ``ApiError``s."""

    @property
    def settle_seconds(self) -> float:
        """How long after it was sent a submission can stay invisible to :meth:`find` (list lag).

        The scheduler does not submit a job again until this long after its last submission was
        sent: 0 for a service whose submit is itself idempotent (Gemini's fixed tuned-model id).
        """
        ...

    async def prepare(self, job: Job, body: Mapping[str, Any]) -> RemoteFacts:
        """Make the submission possible (Vertex: upload the training data, once per content).

        Repeatable: a crash half-way is finished by calling it again. The facts it returns (where
        the data went) are committed before :meth:`submit` is called.
        """
        ...

    async def submit(self, job: Job, body: Mapping[str, Any]) -> RemoteStatus:
        """Start the remote tuning, identified as this job's (Gemini: its tuned-model id, adopting
        the model a 409 reports; Vertex: the ``orchestrator-job`` label)."""
        ...

    async def find(self, job: Job) -> RemoteStatus | None:
        """The job's earlier submission, when one landed whose answer was never seen; else None.

        Called before submitting a job again after an unknown outcome (timeout, 5xx, dropped
        connection, crash while submitting), until :attr:`settle_seconds` after it was sent.
        """
        ...

    async def poll(self, job: Job) -> RemoteStatus:
        """The remote job's state, progress and the loss points after ``job.completed_steps``."""
        ...

    async def cancel(self, job: Job) -> None:
        """Ask the service to stop the job (best effort, asynchronous: polling tells how it ended)."""
        ...

    async def discard(self, job: Job) -> None:
        """Delete what a cancelled job left behind, where the service keeps something (Gemini: the
        tuned model, as its docs advise; ``[scheduler] delete_cancelled_models``)."""
        ...
