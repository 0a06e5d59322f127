"""``VertexTuning``: Vertex AI ``tuningJobs`` behind the scheduler's :class:`~orchestrator.tuning.TuningApi`.

The guarantees, in Vertex's terms (issue #11, vertex-api.md):

- **Upload exactly once.** Inline examples become deterministic JSONL (``jobfile.jsonl``) uploaded to
  ``{staging_uri}/{sha256}.jsonl`` with ``ifGenerationMatch=0``: a repeat after a crash or a lost
  answer gets ``412``, and the existing object's MD5 is compared with ours before going on. The URI is
  returned by :meth:`prepare`, so the scheduler records it before the create.
- **Create exactly once without a client-chosen id.** Every create carries the label
  ``orchestrator-job=<job id>``, fixed by the job row committed before it. After an unknown outcome the
  scheduler calls :meth:`find`, which lists by that label (and checks the label itself: the filter
  grammar is not documented), and it creates again only after :attr:`settle_seconds` without a match.
- **Every loss point once.** Points of ``/train_total_loss`` are read from the TensorBoard chain
  (experiment → run → time series, the names kept per job in memory: they never change, and a
  restart only walks the chain again) after the job's ``completed_steps``; the store keeps one per step.
- **Terminal states as Vertex says** (README, "Tuning on Vertex AI"): SUCCEEDED and PARTIALLY_SUCCEEDED
  (a tuned model exists; ``remote_state`` keeps which) → succeeded; FAILED → failed; CANCELLED →
  cancelled; EXPIRED → failed with ``DEADLINE_EXCEEDED``; any state with an ``endTime`` that we do not
  know → failed, never polled for ever. ``error.code``/``message`` are recorded as Vertex gives them.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Final

import structlog

from orchestrator.errors import NotFound, PermanentError
from orchestrator.jobs import Job, Snapshot
from orchestrator.tuning import CANCELLED_CODE, Outcome, RemoteFacts, RemoteStatus, Verdict
from orchestrator.vertex.client import StorageObject, VertexClient
from orchestrator.vertex.jobfile import JOB_LABEL, jsonl
from orchestrator.vertex.wire import TuningJobStatus, snapshots

__all__ = ["VertexTuning", "judge_tuning_job"]

log = structlog.get_logger(__name__)

#: ``google.rpc.Code.DEADLINE_EXCEEDED``: what an EXPIRED job without an error code is recorded as.
DEADLINE_EXCEEDED: Final = 4
#: ``google.rpc.Code.UNKNOWN``: an ended job in a state this version does not know.
UNKNOWN: Final = 2
JSONL_TYPE: Final = "application/jsonl"
#: States of a job that has not started training: no loss to look for yet.
NOT_STARTED: Final = frozenset({"JOB_STATE_QUEUED", "JOB_STATE_PENDING"})
#: The loss chain's names are read once per job and process; at most this many jobs are remembered.
MAX_REMEMBERED_SERIES: Final = 100_000


def judge_tuning_job(job: TuningJobStatus) -> Verdict:
    """What a TuningJob's state means for the orchestrator job (the mapping the README documents)."""
    state = job.state.removeprefix("JOB_STATE_")
    code, message = job.error_code, job.error_message or None
    if state in ("SUCCEEDED", "PARTIALLY_SUCCEEDED"):
        return Verdict(Outcome.SUCCEEDED)
    if state == "CANCELLED":
        return Verdict(Outcome.CANCELLED, code if code is not None else CANCELLED_CODE, message or "CANCELLED")
    if state == "FAILED":
        return Verdict(Outcome.FAILED, code, message or "the tuning job failed without an error message")
    if state == "EXPIRED":
        return Verdict(Outcome.FAILED, code if code is not None else DEADLINE_EXCEEDED,
                       f"the tuning job expired (JOB_STATE_EXPIRED){': ' + message if message else ''}")
    if job.ended:
        return Verdict(Outcome.FAILED, code if code is not None else UNKNOWN,
                       f"the tuning job ended in a state this version does not know: {job.state}"
                       f"{': ' + message if message else ''}")
    return Verdict(Outcome.RUNNING)  # QUEUED, PENDING, RUNNING, CANCELLING, PAUSED, UPDATING


@dataclass(frozen=True, slots=True)
class _LossSource:
    """Where a job's loss points are read: its training-loss time series."""

    series: str


class VertexTuning:
    """The scheduler's questions answered with Vertex AI and Cloud Storage calls."""

    def __init__(self, client: VertexClient, staging_uri: str, settle_seconds: float) -> None:
        self._client = client
        self._staging = staging_uri.rstrip("/")
        self._settle = settle_seconds
        self._loss_sources: dict[str, _LossSource] = {}

    @property
    def settle_seconds(self) -> float:
        """``[vertex] list_settle_seconds``: how long a lost create may take to be listed."""
        return self._settle

    async def prepare(self, job: Job, body: Mapping[str, Any]) -> RemoteFacts:
        """Upload the inline training (and validation) examples, once per content; a gs:// URI needs nothing."""
        training = await self._staged(job, body.get("trainingExamples"), job.training_data_uri)
        validation = await self._staged(job, body.get("validationExamples"), job.validation_data_uri)
        return RemoteFacts(training_data_uri=training, validation_data_uri=validation)

    async def submit(self, job: Job, body: Mapping[str, Any]) -> RemoteStatus:
        """``tuningJobs.create`` with the job's label and the uploaded data's URIs."""
        created = await self._client.create_tuning_job(self._create_body(job, body))
        log.info("vertex_tuning_job_created", job_id=job.id, remote_job=created.name)
        return self._status(created, None)

    async def find(self, job: Job) -> RemoteStatus | None:
        """The tuning job labelled with this job's id, if a create landed whose answer was lost."""
        listed = await self._client.list_tuning_jobs(f"labels.{JOB_LABEL}={job.id}")
        mine = sorted((j for j in listed if j.labels.get(JOB_LABEL) == job.id), key=lambda j: (j.create_time, j.name))
        if not mine:
            return None
        if len(mine) > 1:  # the promise is broken already: say so, and follow the first
            log.error("vertex_duplicate_tuning_jobs", job_id=job.id, remote_jobs=[j.name for j in mine])
        log.info("vertex_tuning_job_adopted", job_id=job.id, remote_job=mine[0].name)
        return self._status(mine[0], None)

    async def poll(self, job: Job) -> RemoteStatus:
        """The tuning job's state and sub-state, and the loss points after ``job.completed_steps``."""
        if job.remote_job is None:  # running always has one; a row edited by hand gets a clear failure
            raise PermanentError("the job has no Vertex tuning job recorded (remote_job is empty)")
        try:
            remote = await self._client.get_tuning_job(job.remote_job)
        except NotFound as exc:
            raise PermanentError(
                f"the tuning job {job.remote_job} no longer exists at the service (404 NOT_FOUND): it was deleted, "
                f"or it was created on an emulator that has restarted since; the embedded emulator ([api] base_url = "
                f'"emulator") keeps its jobs in memory only, so a daemon restart fails the jobs it had in flight',
                http_status=404, status="NOT_FOUND") from exc
        return self._status(remote, await self._loss(job, remote))

    async def cancel(self, job: Job) -> None:
        """``:cancel`` the tuning job; one that ended meanwhile (400 FAILED_PRECONDITION) ends as Vertex says."""
        if job.remote_job is None:
            return
        try:
            await self._client.cancel_tuning_job(job.remote_job)
        except NotFound:
            pass  # the poll that follows says how it ended
        except PermanentError as exc:
            log.warning("cancel_refused", job_id=job.id, http_status=exc.http_status, status=exc.status,
                        message=exc.api_message)

    async def discard(self, job: Job) -> None:
        """Nothing to delete: a cancelled Vertex tuning job leaves no model (and has no delete)."""

    # -- helpers ------------------------------------------------------------------------------

    async def _staged(self, job: Job, examples: object, recorded: str | None) -> str | None:
        """The gs:// URI of ``examples`` as JSONL, uploaded unless this job recorded it already."""
        if not isinstance(examples, list):
            return None
        data = jsonl(examples)
        target = StorageObject.from_uri(f"{self._staging}/{hashlib.sha256(data).hexdigest()}.jsonl")
        if recorded == target.uri:
            return recorded
        md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
        try:
            await self._client.upload_new(target, data, JSONL_TYPE)
        except PermanentError as exc:
            if exc.http_status != 412:
                raise
            existing = await self._client.object_metadata(target)
            if existing.md5_hash and existing.md5_hash != md5:
                raise PermanentError(f"{target.uri} exists with other content than this job's data (its MD5 "
                                     f"differs); the staging folder is shared with something else",
                                     http_status=412, status="FAILED_PRECONDITION") from None
            log.info("vertex_data_already_uploaded", job_id=job.id, uri=target.uri)
        else:
            log.info("vertex_data_uploaded", job_id=job.id, uri=target.uri, bytes=len(data))
        return target.uri

    def _create_body(self, job: Job, body: Mapping[str, Any]) -> dict[str, Any]:
        """The stored ``tuningJob`` with the uploaded data's URIs and the job's own label."""
        tuning_job: dict[str, Any] = deepcopy(dict(body.get("tuningJob", {})))
        spec = tuning_job.setdefault("supervisedTuningSpec", {})
        if job.training_data_uri:
            spec["trainingDatasetUri"] = job.training_data_uri
        if job.validation_data_uri:
            spec["validationDatasetUri"] = job.validation_data_uri
        tuning_job["labels"] = {**tuning_job.get("labels", {}), JOB_LABEL: job.id}
        return tuning_job

    def _status(self, remote: TuningJobStatus, loss: tuple[Snapshot, ...] | None) -> RemoteStatus:
        """A TuningJob (and its new loss points, None for a job without an experiment) in the scheduler's terms."""
        billable = remote.billable_tokens * remote.epochs if remote.billable_tokens and remote.epochs else None
        facts = RemoteFacts(
            # Every read is the whole TuningJob: a sub-state it no longer carries is over ("" clears it).
            remote_job=remote.name, remote_state=remote.state, remote_substate=remote.sub_state,
            billable_tokens=billable, model_name=remote.model or None, endpoint=remote.endpoint or None,
            dataset_example_count=remote.example_count,
        )
        points = loss or ()
        # Progress counts loss points when the job has an experiment: a step count ahead of them would
        # skip points still to come. Without one, the job's own step count is all there is.
        completed = remote.completed_steps if loss is None else None
        # A job still queued or pending (waiting for quota or capacity, processing its dataset) makes
        # no progress by design: that is not a stall, and its wait is not time its steps took.
        return RemoteStatus(judge_tuning_job(remote), facts, remote.total_steps, points, completed,
                            waiting=remote.state in NOT_STARTED)

    async def _loss(self, job: Job, remote: TuningJobStatus) -> tuple[Snapshot, ...] | None:
        """The training-loss points after ``job.completed_steps``: none yet while the chain is incomplete
        (or the job is still waiting to start), None for a job without an experiment at all."""
        if not remote.experiment:
            return None
        if remote.state in NOT_STARTED:
            return ()
        source = self._loss_sources.get(job.id) or await self._find_loss_source(remote)
        if source is None:
            return ()
        if len(self._loss_sources) >= MAX_REMEMBERED_SERIES:
            self._loss_sources.clear()
        self._loss_sources[job.id] = source
        total = remote.total_steps or 0
        points = await self._client.read_loss(source.series, max_points=max(1000, total + 1),
                                              after_step=job.completed_steps)
        return snapshots(points, remote.epochs, remote.total_steps)

    async def _find_loss_source(self, remote: TuningJobStatus) -> _LossSource | None:
        """Walk the chain: experiment context → its TensorBoard → the experiment's run → the loss series."""
        try:
            tensorboard = await self._client.tensorboard_of(remote.experiment)
            if not tensorboard:
                return None
            experiment_id = remote.experiment.rsplit("/", 1)[-1]
            runs = await self._client.runs(tensorboard, experiment_id)
            for run in runs:
                series = await self._client.loss_series(run)
                if series:
                    return _LossSource(series)
        except NotFound:  # not created yet (a job still pending): no loss to read
            return None
        return None
