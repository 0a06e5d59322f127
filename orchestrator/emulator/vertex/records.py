"""One Vertex AI tuning job: its simulated life and how it looks on the wire at a given instant.

A job is created PENDING (``TUNING_JOB_STATE_PROCESSING_DATASET`` for ``start_delay_seconds``), then
waits PENDING (``…_WAITING_FOR_QUOTA``) until the project's concurrent-jobs quota has a free slot, then
runs (``JOB_STATE_RUNNING``, ``…_TUNING``) one step every ``step_seconds`` on the shared ``Run`` engine,
post-processes for one more step's time (``…_POST_PROCESSING``) and ends SUCCEEDED with a
``tunedModel``.  Faults end it FAILED (``error.code`` 13 unless set), EXPIRED, PARTIALLY_SUCCEEDED, stop
it (stall: RUNNING for ever) or pause it (PAUSED).  A cancel is CANCELLING until the next step
boundary, then CANCELLED with ``error.code`` 1; a job cancelled before it runs is CANCELLED at once.
Everything is arithmetic on the simulated clock, so a job costs nothing between polls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator.emulator.errors import message_for_code
from orchestrator.emulator.records import SimClock
from orchestrator.emulator.training import Ending, Run
from orchestrator.emulator.vertex.validation import TuningSpec
from orchestrator.emulator.wire import dumps, f32, timestamp

TERMINAL: Final = frozenset(
    {
        "JOB_STATE_SUCCEEDED",
        "JOB_STATE_FAILED",
        "JOB_STATE_CANCELLED",
        "JOB_STATE_EXPIRED",
        "JOB_STATE_PARTIALLY_SUCCEEDED",
    }
)
CANCELLED_MESSAGE: Final = "CANCELLED"
EXPIRED_MESSAGE: Final = "The tuning job expired before it could finish."
#: Metrics of the TensorBoard run, in the order they are listed; the eval ones only with validation data.
TRAIN_METRICS: Final = ("/train_total_loss", "/train_fraction_of_correct_next_step_preds", "/train_num_predictions")
EVAL_METRICS: Final = ("/eval_total_loss", "/eval_fraction_of_correct_next_step_preds", "/eval_num_predictions")


@dataclass(frozen=True, slots=True)
class JobFaults:
    """How a fault plan bent this job at create time."""

    fail_at: int | None = None
    fail_code: int = 13
    fail_message: str | None = None
    stall_at: int | None = None
    expire_at: int | None = None
    pause_at: int | None = None
    partial: bool = False


@dataclass(frozen=True, slots=True)
class View:
    """What is true of a job at one instant."""

    state: str
    sub_state: str
    steps: int
    end_time: float | None  #: simulated time of the terminal state
    update_time: float


@dataclass(slots=True)
class TuningJobRecord:
    """A tuning job and its resources (experiment context, TensorBoard run and time series)."""

    job_id: str
    project: str  #: the project number
    location: str
    seq: int
    spec: TuningSpec
    created: float  #: simulated
    ready: float  #: dataset processed; may start from here
    visible_from: float  #: list answers include it from here (list-lag fault)
    seed: int
    steps_per_epoch: int
    total_steps: int
    step_seconds: float
    faults: JobFaults
    experiment_id: str
    tensorboard_id: str
    series_ids: dict[str, str]
    model_id: str
    endpoint_ids: tuple[str, ...]  #: one per epoch; the last is the tuned model's own endpoint
    stats: dict[str, Any]  #: ``tuningDataStats``, computed once from the dataset
    run: Run | None = None
    granted: float | None = None
    cancelled_early: float | None = None  #: cancelled before it ran
    _cache: dict[tuple[Any, ...], bytes] = field(default_factory=dict)

    # -- names -------------------------------------------------------------------------------------

    @property
    def parent(self) -> str:
        """``projects/{number}/locations/{location}``."""
        return f"projects/{self.project}/locations/{self.location}"

    @property
    def name(self) -> str:
        """``projects/{number}/locations/{location}/tuningJobs/{id}``."""
        return f"{self.parent}/tuningJobs/{self.job_id}"

    @property
    def experiment(self) -> str:
        """The Vertex AI Experiment context the job's metrics hang from."""
        return f"{self.parent}/metadataStores/default/contexts/{self.experiment_id}"

    @property
    def tensorboard(self) -> str:
        """The backing TensorBoard."""
        return f"{self.parent}/tensorboards/{self.tensorboard_id}"

    @property
    def tensorboard_run(self) -> str:
        """The job's TensorBoard run (its id is the job id)."""
        return f"{self.tensorboard}/experiments/{self.experiment_id}/runs/{self.job_id}"

    @property
    def metrics(self) -> tuple[str, ...]:
        """The time series this job writes."""
        return TRAIN_METRICS + (EVAL_METRICS if self.spec.validation is not None else ())

    # -- life --------------------------------------------------------------------------------------

    def grant(self, at: float) -> None:
        """A quota slot is free from ``at``: training starts then."""
        faults = self.faults
        fail_points = [step for step in (faults.fail_at, faults.expire_at) if step is not None]
        stop_points = [step for step in (faults.stall_at, faults.pause_at) if step is not None]
        self.granted = at
        self.run = Run(
            start=at,
            step_seconds=self.step_seconds,
            total=self.total_steps,
            seed=self.seed,
            fail_at=min(fail_points) if fail_points else None,
            stall_at=min(stop_points) if stop_points else None,
        )

    @property
    def _expires(self) -> bool:
        faults = self.faults
        return faults.expire_at is not None and (faults.fail_at is None or faults.expire_at < faults.fail_at)

    @property
    def _pauses(self) -> bool:
        faults = self.faults
        return faults.pause_at is not None and (faults.stall_at is None or faults.pause_at < faults.stall_at)

    def slot_end(self) -> float:
        """Simulated time at which this job stops holding a quota slot (``inf``: not planned)."""
        run = self.run
        if run is None:
            return math.inf
        planned = run.planned_end
        if planned is None:
            if self._pauses and run.stall_at is not None:
                return run.step_time(run.stall_at)
            return math.inf
        end, ending = planned
        return end + self.step_seconds if ending is Ending.SUCCEEDED else end

    def cancel(self, now: float) -> None:
        """Best-effort cancel: at once before training, else at the next step boundary."""
        if self.run is None:
            self.cancelled_early = now
            return
        if self.view(now).state == "JOB_STATE_PAUSED":
            self.cancelled_early = now
            return
        self.run.request_cancel(now)

    def view(self, now: float) -> View:
        """State, sub-state, completed steps and times at ``now``."""
        if self.cancelled_early is not None and now >= self.cancelled_early:
            steps = 0 if self.run is None else self.run.progress(self.cancelled_early).completed_steps
            return View("JOB_STATE_CANCELLED", "", steps, self.cancelled_early, self.cancelled_early)
        run = self.run
        if run is None:
            sub = "TUNING_JOB_STATE_PROCESSING_DATASET" if now < self.ready else "TUNING_JOB_STATE_WAITING_FOR_QUOTA"
            updated = self.created if now < self.ready else self.ready
            return View("JOB_STATE_PENDING", sub, 0, None, updated)
        progress = run.progress(now)
        steps = progress.completed_steps
        if progress.ending is None:
            if self._pauses and run.stall_at is not None and steps >= run.stall_at:
                return View("JOB_STATE_PAUSED", "", steps, None, run.step_time(run.stall_at))
            updated = run.step_time(steps) if steps else run.start
            if run.cancel_requested is not None:
                return View("JOB_STATE_CANCELLING", "TUNING_JOB_STATE_TUNING", steps, None, run.cancel_requested)
            return View("JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING", steps, None, updated)
        end = progress.end_time if progress.end_time is not None else now
        if progress.ending is Ending.CANCELLED:
            return View("JOB_STATE_CANCELLED", "", steps, end, end)
        if progress.ending is Ending.FAILED:
            state = "JOB_STATE_EXPIRED" if self._expires else "JOB_STATE_FAILED"
            return View(state, "", steps, end, end)
        finished = end + self.step_seconds
        if now < finished:
            return View("JOB_STATE_RUNNING", "TUNING_JOB_STATE_POST_PROCESSING", steps, None, end)
        state = "JOB_STATE_PARTIALLY_SUCCEEDED" if self.faults.partial else "JOB_STATE_SUCCEEDED"
        return View(state, "", steps, finished, finished)

    def epoch_of(self, step: int) -> int:
        """The epoch (1-based) a step belongs to."""
        return max(1, math.ceil(step / self.steps_per_epoch))

    def loss(self, step: int) -> float:
        """The training loss at ``step`` (the shared engine's curve)."""
        run = self.run
        assert run is not None, "loss is only asked of a job that has run"
        return run.snapshot(step)[1]

    # -- the TuningJob resource --------------------------------------------------------------------

    def encode(self, now: float, clock: SimClock) -> bytes:
        """The TuningJob JSON at ``now`` (cached per observable state: polls of an idle job cost a lookup)."""
        view = self.view(now)
        key = (view.state, view.sub_state, view.steps)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) > 8:
                self._cache.clear()
            cached = self._cache[key] = dumps(self.to_json(view, clock))
        return cached

    def to_json(self, view: View, clock: SimClock) -> dict[str, Any]:
        """Proto3 JSON of the TuningJob, fields in proto field-number order, int64 as strings."""
        spec = self.spec
        out: dict[str, Any] = {"name": self.name}
        if spec.display_name:
            out["tunedModelDisplayName"] = spec.display_name
        if spec.description:
            out["description"] = spec.description
        out["baseModel"] = spec.base_model
        tuning: dict[str, Any] = {"trainingDatasetUri": spec.training_uri}
        if spec.validation_uri:
            tuning["validationDatasetUri"] = spec.validation_uri
        tuning["hyperParameters"] = {
            "epochCount": str(spec.epochs),
            "learningRateMultiplier": f32(spec.learning_rate_multiplier),
            "adapterSize": spec.adapter_size,
        }
        if spec.export_last_checkpoint_only:
            tuning["exportLastCheckpointOnly"] = True
        out["supervisedTuningSpec"] = tuning
        out["state"] = view.state
        out["createTime"] = timestamp(clock.wall(self.created), 6)
        if self.run is not None:
            out["startTime"] = timestamp(clock.wall(self.run.start), 6)
        if view.end_time is not None:
            out["endTime"] = timestamp(clock.wall(view.end_time), 6)
        out["updateTime"] = timestamp(clock.wall(view.update_time), 6)
        error = self._error(view.state)
        if error is not None:
            out["error"] = error
        if spec.labels:
            out["labels"] = dict(spec.labels)
        out["experiment"] = self.experiment
        if view.state in ("JOB_STATE_SUCCEEDED", "JOB_STATE_PARTIALLY_SUCCEEDED"):
            out["tunedModel"] = self._tuned_model()
        out["tuningDataStats"] = self.stats
        if spec.kms_key_name:
            out["encryptionSpec"] = {"kmsKeyName": spec.kms_key_name}
        if spec.service_account:
            out["serviceAccount"] = spec.service_account
        if view.sub_state:
            out["tuningJobState"] = view.sub_state
        if view.steps:
            out["tuningJobMetadata"] = {
                "completedEpochCount": str(view.steps // self.steps_per_epoch),
                "completedStepCount": str(view.steps),
            }
        return out

    def _error(self, state: str) -> dict[str, Any] | None:
        if state == "JOB_STATE_CANCELLED":
            return {"code": 1, "message": CANCELLED_MESSAGE}
        if state == "JOB_STATE_EXPIRED":
            return {"code": 4, "message": EXPIRED_MESSAGE}
        if state == "JOB_STATE_FAILED":
            code = self.faults.fail_code
            return {"code": code, "message": self.faults.fail_message or message_for_code(code)}
        return None

    def _tuned_model(self) -> dict[str, Any]:
        """``tunedModel``: the model version, its endpoint and one checkpoint per epoch (or the last)."""
        endpoint = f"{self.parent}/endpoints/{self.endpoint_ids[-1]}"
        epochs = [self.spec.epochs] if self.spec.export_last_checkpoint_only else list(range(1, self.spec.epochs + 1))
        checkpoints = []
        for epoch in epochs:
            checkpoints.append(
                {
                    "checkpointId": str(epoch),
                    "epoch": str(epoch),
                    "step": str(min(self.total_steps, epoch * self.steps_per_epoch)),
                    "endpoint": f"{self.parent}/endpoints/{self.endpoint_ids[epoch - 1]}",
                }
            )
        return {"model": f"{self.parent}/models/{self.model_id}@1", "endpoint": endpoint, "checkpoints": checkpoints}
