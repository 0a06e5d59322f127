"""Vertex AI and Cloud Storage JSON → the values the Vertex backend consumes. Pure: no I/O, no clock.

Shapes follow vertex-api.md and the contract in HELPERS.md: a ``TuningJob`` (proto3 JSON: int64 fields
such as ``epochCount`` and the step counts as strings, absent fields at their default), the list answer
``{tuningJobs, nextPageToken}``, the TensorBoard chain of a job's loss (experiment context → runs → time
series → ``timeSeriesData``) and a Cloud Storage object resource. Unknown fields are ignored; a field of
the wrong type is a :class:`~orchestrator.errors.MalformedResponse` that names it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from orchestrator.errors import MalformedResponse
from orchestrator.jobs import Snapshot
from orchestrator.protojson import get, integer, items, json_object, number, optional_int, text

__all__ = [
    "LossPoint", "StoredObject", "TuningJobStatus", "backing_tensorboard", "loss_points", "run_names",
    "series_name", "snapshots", "stored_object", "tuning_job", "tuning_jobs_page",
]

#: The TensorBoard time series of the training loss, one point per step (vertex-api.md §4).
TRAIN_LOSS: Final = "/train_total_loss"


@dataclass(frozen=True, slots=True)
class TuningJobStatus:
    """What the backend keeps of a ``TuningJob``."""

    name: str
    state: str  #: ``JOB_STATE_…``; a name we do not know is passed on, not rejected
    sub_state: str  #: ``tuningJobState``, e.g. ``TUNING_JOB_STATE_WAITING_FOR_QUOTA``; "" when absent
    labels: dict[str, str]
    create_time: str
    ended: bool  #: ``endTime`` is set: the service says the job is over, whatever its state's name
    experiment: str
    epochs: int | None
    total_steps: int | None  #: ``tuningDataStats.supervisedTuningDataStats.tuningStepCount``
    completed_steps: int | None  #: ``tuningJobMetadata.completedStepCount``
    billable_tokens: int | None  #: ``totalBillableTokenCount``: the dataset's tokens, one pass
    example_count: int | None  #: ``tuningDatasetExampleCount``: the training examples Vertex counted
    error_code: int | None
    error_message: str
    model: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class LossPoint:
    """One point of a scalar time series."""

    step: int
    value: float
    wall_time: str


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A Cloud Storage object's metadata: what an upload that found it already there compares."""

    name: str
    size: int
    md5_hash: str  #: base64 of the content's MD5, as the JSON API writes it; "" when absent


def tuning_job(data: object, path: str = "tuningJob") -> TuningJobStatus:
    """A ``TuningJob`` as create, get and list answer it."""
    job = json_object(data, path)
    spec_path = f"{path}.supervisedTuningSpec"
    spec = json_object(get(job, "supervisedTuningSpec", {}), spec_path)
    hyper = json_object(get(spec, "hyperParameters", {}), f"{spec_path}.hyperParameters")
    stats_path = f"{path}.tuningDataStats.supervisedTuningDataStats"
    stats = json_object(get(json_object(get(job, "tuningDataStats", {}), f"{path}.tuningDataStats"),
                            "supervisedTuningDataStats", {}), stats_path)
    metadata = json_object(get(job, "tuningJobMetadata", {}), f"{path}.tuningJobMetadata")
    error = json_object(get(job, "error", {}), f"{path}.error")
    tuned = json_object(get(job, "tunedModel", {}), f"{path}.tunedModel")
    raw_labels = json_object(get(job, "labels", {}), f"{path}.labels")
    labels = {str(key): value for key, value in raw_labels.items() if isinstance(value, str)}
    return TuningJobStatus(
        name=text(job, "name", path, None),
        state=text(job, "state", path, "JOB_STATE_UNSPECIFIED"),
        sub_state=text(job, "tuningJobState", path, ""),
        labels=labels,
        create_time=text(job, "createTime", path, ""),
        ended=bool(text(job, "endTime", path, "")),
        experiment=text(job, "experiment", path, ""),
        epochs=optional_int(hyper, "epochCount", f"{spec_path}.hyperParameters"),
        total_steps=optional_int(stats, "tuningStepCount", stats_path),
        completed_steps=optional_int(metadata, "completedStepCount", f"{path}.tuningJobMetadata"),
        billable_tokens=optional_int(stats, "totalBillableTokenCount", stats_path),
        example_count=optional_int(stats, "tuningDatasetExampleCount", stats_path),
        error_code=optional_int(error, "code", f"{path}.error"),
        error_message=text(error, "message", f"{path}.error", ""),
        model=text(tuned, "model", f"{path}.tunedModel", ""),
        endpoint=text(tuned, "endpoint", f"{path}.tunedModel", ""),
    )


def tuning_jobs_page(data: object) -> tuple[list[TuningJobStatus], str]:
    """A ``ListTuningJobsResponse``: the page's jobs and the next page token (``""`` on the last)."""
    page = json_object(data, "response")
    jobs = [tuning_job(item, f"tuningJobs[{i}]") for i, item in enumerate(items(page, "tuningJobs", ""))]
    return jobs, text(page, "nextPageToken", "", "")


def backing_tensorboard(data: object) -> str:
    """The experiment context's ``metadata.backing_tensorboard_resource`` ("" when it has none yet)."""
    context = json_object(data, "context")
    metadata = json_object(get(context, "metadata", {}), "context.metadata")
    return text(metadata, "backing_tensorboard_resource", "context.metadata", "")


def run_names(data: object) -> list[str]:
    """The names of a TensorBoard experiment's runs."""
    page = json_object(data, "response")
    return [text(json_object(run, f"tensorboardRuns[{i}]"), "name", f"tensorboardRuns[{i}]", None)
            for i, run in enumerate(items(page, "tensorboardRuns", ""))]


def series_name(data: object, display_name: str = TRAIN_LOSS) -> str:
    """The name of the run's time series called ``display_name`` ("" when the run has none yet)."""
    page = json_object(data, "response")
    for i, series in enumerate(items(page, "tensorboardTimeSeries", "")):
        where = f"tensorboardTimeSeries[{i}]"
        entry = json_object(series, where)
        if text(entry, "displayName", where, "") == display_name:
            return text(entry, "name", where, None)
    return ""


def loss_points(data: object, after_step: int = 0) -> list[LossPoint]:
    """The points of a ``:read`` answer after ``after_step``, by step (one per step: the last wins)."""
    answer = json_object(data, "response")
    series = json_object(get(answer, "timeSeriesData", {}), "timeSeriesData")
    by_step: dict[int, LossPoint] = {}
    for i, raw in enumerate(items(series, "values", "timeSeriesData")):
        where = f"timeSeriesData.values[{i}]"
        value = json_object(raw, where)
        step = integer(value, "step", where, 0)
        if step <= after_step:
            continue
        scalar = json_object(get(value, "scalar", None), f"{where}.scalar") if "scalar" in value else None
        if scalar is None:
            raise MalformedResponse(f"{where}.scalar: missing")
        by_step[step] = LossPoint(step, number(scalar, "value", f"{where}.scalar", 0.0),
                                  text(value, "wallTime", where, ""))
    return [by_step[step] for step in sorted(by_step)]


def snapshots(points: list[LossPoint], epochs: int | None, total_steps: int | None) -> tuple[Snapshot, ...]:
    """Loss points as snapshots; a step's epoch is ``ceil(step x epochs / total steps)`` (the contract's rule)."""
    def epoch(step: int) -> int:
        if not epochs or not total_steps:
            return 0
        return max(1, min(epochs, math.ceil(step * epochs / total_steps)))

    return tuple(Snapshot(p.step, epoch(p.step), p.value, p.wall_time or None) for p in points)


def stored_object(data: object) -> StoredObject:
    """A Cloud Storage object resource (``GET /storage/v1/b/{bucket}/o/{object}``, or an upload's answer)."""
    resource = json_object(data, "object")
    return StoredObject(
        name=text(resource, "name", "object", None),
        size=integer(resource, "size", "object", 0),
        md5_hash=text(resource, "md5Hash", "object", ""),
    )

