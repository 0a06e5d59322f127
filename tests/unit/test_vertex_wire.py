"""Vertex AI JSON → the backend's values, and the terminal-state mapping the README documents. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import MalformedResponse
from orchestrator.tuning import Outcome
from orchestrator.vertex.service import judge_tuning_job
from orchestrator.vertex.wire import TuningJobStatus, loss_points, snapshots, tuning_job

NAME = "projects/646763706049/locations/us-central1/tuningJobs/123"


def job(**fields: Any) -> dict[str, Any]:
    """A TuningJob as Vertex answers it (proto3 JSON: int64 fields as strings)."""
    return {
        "name": NAME, "state": "JOB_STATE_RUNNING", "tuningJobState": "TUNING_JOB_STATE_TUNING",
        "labels": {"orchestrator-job": "abc"}, "createTime": "2026-11-30T10:00:00.000001Z",
        "experiment": "projects/646763706049/locations/us-central1/metadataStores/default/contexts/tuning-experiment-1",
        "supervisedTuningSpec": {"hyperParameters": {"epochCount": "3", "adapterSize": "ADAPTER_SIZE_FOUR"}},
        "tuningDataStats": {"supervisedTuningDataStats": {"tuningStepCount": "12", "totalBillableTokenCount": "900"}},
        "tuningJobMetadata": {"completedEpochCount": "1", "completedStepCount": "5"},
        **fields,
    }


def test_a_running_tuning_job_is_read_with_int64_strings() -> None:
    status = tuning_job(job())

    assert (status.name, status.state, status.sub_state) == (NAME, "JOB_STATE_RUNNING", "TUNING_JOB_STATE_TUNING")
    assert (status.epochs, status.total_steps, status.completed_steps, status.billable_tokens) == (3, 12, 5, 900)
    assert status.labels == {"orchestrator-job": "abc"} and not status.ended and status.model == ""


def test_a_field_of_the_wrong_type_is_named() -> None:
    with pytest.raises(MalformedResponse, match=r"supervisedTuningDataStats\.tuningStepCount: expected an integer"):
        tuning_job(job(tuningDataStats={"supervisedTuningDataStats": {"tuningStepCount": [1]}}))
    with pytest.raises(MalformedResponse, match=r"tuningJob\.name: missing"):
        tuning_job(job(name=None))


def test_loss_points_after_a_step_one_per_step_in_order() -> None:
    answer = {"timeSeriesData": {"values": [
        {"step": "3", "scalar": {"value": 0.5}, "wallTime": "t3"},
        {"step": "1", "scalar": {"value": 0.9}},
        {"step": "2", "scalar": {"value": 0.7}},
        {"step": "3", "scalar": {"value": 0.4}},
        {"step": "4", "scalar": {"value": "NaN"}},
    ]}}

    points = loss_points(answer, after_step=1)

    assert [(p.step, p.value) for p in points[:2]] == [(2, 0.7), (3, 0.4)]
    assert points[2].step == 4 and points[2].value != points[2].value  # NaN kept (the store writes 'NaN')
    with pytest.raises(MalformedResponse, match="scalar: missing"):
        loss_points({"timeSeriesData": {"values": [{"step": "9"}]}})


def test_a_steps_epoch_comes_from_the_step_count_and_the_epochs() -> None:
    points = loss_points({"timeSeriesData": {"values": [{"step": str(s), "scalar": {"value": 1.0}}
                                                        for s in (1, 4, 5, 12)]}})

    assert [s.epoch for s in snapshots(points, epochs=3, total_steps=12)] == [1, 1, 2, 3]
    assert [s.epoch for s in snapshots(points, epochs=None, total_steps=12)] == [0, 0, 0, 0]


@pytest.mark.parametrize(("fields", "outcome", "code"), [
    ({"state": "JOB_STATE_SUCCEEDED"}, Outcome.SUCCEEDED, None),
    ({"state": "JOB_STATE_PARTIALLY_SUCCEEDED"}, Outcome.SUCCEEDED, None),
    ({"state": "JOB_STATE_FAILED", "error": {"code": 13, "message": "Internal."}}, Outcome.FAILED, 13),
    ({"state": "JOB_STATE_EXPIRED"}, Outcome.FAILED, 4),
    ({"state": "JOB_STATE_CANCELLED", "error": {"code": 1, "message": "CANCELLED"}}, Outcome.CANCELLED, 1),
    ({"state": "JOB_STATE_PAUSED"}, Outcome.RUNNING, None),
    ({"state": "JOB_STATE_PENDING", "tuningJobState": "TUNING_JOB_STATE_WAITING_FOR_QUOTA"}, Outcome.RUNNING, None),
    ({"state": "JOB_STATE_SOMETHING_NEW"}, Outcome.RUNNING, None),
    ({"state": "JOB_STATE_SOMETHING_NEW", "endTime": "2026-11-30T11:00:00Z"}, Outcome.FAILED, 2),
])
def test_terminal_states_map_as_documented_and_an_ended_unknown_state_is_never_polled_for_ever(
    fields: dict[str, Any], outcome: Outcome, code: int | None
) -> None:
    verdict = judge_tuning_job(tuning_job(job(**fields)))

    assert (verdict.outcome, verdict.code) == (outcome, code)
    if outcome is Outcome.FAILED:
        assert verdict.message


def test_a_failure_keeps_googles_words() -> None:
    status: TuningJobStatus = tuning_job(job(state="JOB_STATE_FAILED",
                                             error={"code": 3, "message": "Dataset has 2 invalid lines."}))

    assert judge_tuning_job(status).message == "Dataset has 2 invalid lines."
