"""The resources a tuning job's loss is read through: Experiment context → TensorBoard run → time series.

The chain is the contract's (vertex-api.md §4, [med]): the job's ``experiment`` context carries
``metadata.backing_tensorboard_resource``; the TensorBoard experiment has the context's id and one run
whose id is the tuning job's id ([low]); the run lists one SCALAR time series per metric; ``:read``
answers ``timeSeriesData`` with one point per completed step (``step`` an int64, so a string), points
appearing while the job runs.  Evaluation series (with a validation dataset) get a point at the end
of each epoch.  ``maxDataPoints`` (default 1,000, as production) keeps an evenly spaced sample that
always includes the newest point ([low]: production samples, its choice of points is not documented).
"""

from __future__ import annotations

import math
from typing import Any, Final

from orchestrator.emulator.records import SimClock
from orchestrator.emulator.vertex.records import TuningJobRecord
from orchestrator.emulator.wire import timestamp

DEFAULT_MAX_POINTS: Final = 1000


def context_json(record: TuningJobRecord, clock: SimClock) -> dict[str, Any]:
    """The Vertex AI Experiment (a metadata Context, ``schemaTitle: system.Experiment``)."""
    made = timestamp(clock.wall(record.created), 6)
    return {
        "name": record.experiment,
        "displayName": record.experiment_id,
        "etag": str(record.seq),
        "createTime": made,
        "updateTime": made,
        "schemaTitle": "system.Experiment",
        "schemaVersion": "0.0.1",
        "metadata": {"experiment_deleted": False, "backing_tensorboard_resource": record.tensorboard},
    }


def run_json(record: TuningJobRecord, clock: SimClock) -> dict[str, Any]:
    """The TensorBoard run of a job."""
    made = timestamp(clock.wall(record.created), 6)
    return {
        "name": record.tensorboard_run,
        "displayName": record.job_id,
        "createTime": made,
        "updateTime": made,
        "etag": str(record.seq),
    }


def _points(record: TuningJobRecord, metric: str, steps: int) -> list[int]:
    """The steps at which ``metric`` has a value once ``steps`` steps are done."""
    if metric.startswith("/eval_"):
        return [step for step in range(record.steps_per_epoch, steps + 1, record.steps_per_epoch)]
    return list(range(1, steps + 1))


def _value(record: TuningJobRecord, metric: str, step: int) -> float:
    """A metric's value at a step, all derived from the run's loss curve (deterministic for the seed)."""
    loss = record.loss(step)
    if metric.endswith("total_loss"):
        return loss * (1.08 if metric.startswith("/eval_") else 1.0)
    if metric.endswith("fraction_of_correct_next_step_preds"):
        return max(0.0, min(1.0, 1.0 - loss / 20.0))
    return float(record.spec.training.examples[0].output_tokens * 8 + step % 7)


def series_list_json(record: TuningJobRecord, clock: SimClock, steps: int) -> list[dict[str, Any]]:
    """The run's time series resources."""
    made = timestamp(clock.wall(record.created), 6)
    out = []
    for metric in record.metrics:
        entry: dict[str, Any] = {
            "name": f"{record.tensorboard_run}/timeSeries/{record.series_ids[metric]}",
            "displayName": metric,
            "valueType": "SCALAR",
            "createTime": made,
            "updateTime": made,
            "etag": str(record.seq),
            "pluginName": "scalars",
        }
        points = _points(record, metric, steps) if record.run is not None else []
        if points:
            run = record.run
            assert run is not None
            entry["metadata"] = {
                "maxStep": str(points[-1]),
                "maxWallTime": timestamp(clock.wall(run.step_time(points[-1])), 6),
            }
        out.append(entry)
    return out


def read_json(record: TuningJobRecord, metric: str, clock: SimClock, steps: int, max_points: int) -> dict[str, Any]:
    """``:read`` of one series: ``{"timeSeriesData": {tensorboardTimeSeriesId, valueType, values}}``."""
    points = _points(record, metric, steps) if record.run is not None else []
    limit = max_points if max_points > 0 else DEFAULT_MAX_POINTS
    if len(points) > limit:
        stride = len(points) / limit
        picked = sorted({points[min(len(points) - 1, math.floor(index * stride))] for index in range(limit - 1)})
        points = [*picked, points[-1]] if picked[-1] != points[-1] else picked
    run = record.run
    values = []
    for step in points:
        assert run is not None
        values.append(
            {
                "wallTime": timestamp(clock.wall(run.step_time(step)), 6),
                "step": str(step),
                "scalar": {"value": _value(record, metric, step)},
            }
        )
    data: dict[str, Any] = {"tensorboardTimeSeriesId": record.series_ids[metric], "valueType": "SCALAR"}
    if values:
        data["values"] = values
    return {"timeSeriesData": data}
