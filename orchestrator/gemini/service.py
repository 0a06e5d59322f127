"""``GeminiTuning``: the Gemini API's ``tunedModels`` behind the scheduler's :class:`~orchestrator.tuning.TuningApi`.

The lifecycle in Gemini's terms (DESIGN.md, "Exactly-once submission"): the tuned-model id is fixed
before the first create, so a repeated create is safe and ``409 ALREADY_EXISTS`` means an earlier
attempt landed: the model is adopted, its operation found on ``/v1`` (then ``/v1beta``), and when no
version lists it the model is polled by its ``state``. Cancelling an operation nobody lists is done by
deleting its model, the one way left to stop the tuning (and its bill).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any, Final

import structlog

from orchestrator.errors import AlreadyExists, ApiError, MalformedResponse, NotFound, PermanentError, TransientError
from orchestrator.gemini import OperationStatus
from orchestrator.gemini.client import HttpTuningApi
from orchestrator.jobs import Job, JobState
from orchestrator.tuning import CANCELLED_CODE, Outcome, RemoteFacts, RemoteStatus, Verdict

__all__ = ["GeminiTuning", "judge_model_state", "judge_operation"]

log = structlog.get_logger(__name__)

#: ``TunedModel.state`` of a model whose tuning is under way.
CREATING: Final = "CREATING"
FAILED: Final = "FAILED"


def judge_operation(operation: OperationStatus) -> Verdict:
    """Read an operation: ``done`` with ``error.code == 1`` is cancelled, other errors are failures,
    a response is success unless the model it names is FAILED."""
    if not operation.done:
        return Verdict(Outcome.RUNNING)
    if operation.error is not None:
        if operation.error.code == CANCELLED_CODE:
            return Verdict(Outcome.CANCELLED, operation.error.code, operation.error.message)
        return Verdict(Outcome.FAILED, operation.error.code, operation.error.message)
    if operation.model is not None and operation.model.state == "FAILED":
        return Verdict(Outcome.FAILED, None, "the operation finished but the tuned model is FAILED")
    return Verdict(Outcome.SUCCEEDED)


def judge_model_state(state: str) -> Verdict:
    """Read a tuned model's state when its operation cannot be found (the last fallback)."""
    if state == "ACTIVE":
        return Verdict(Outcome.SUCCEEDED)
    if state == "FAILED":
        return Verdict(Outcome.FAILED, None, "the tuned model is FAILED (its operation could not be read)")
    return Verdict(Outcome.RUNNING)


class GeminiTuning:
    """The scheduler's questions answered with Gemini API calls (through :class:`HttpTuningApi`)."""

    #: A create with the fixed tuned-model id finds an earlier one itself (409): no list to wait for.
    settle_seconds: Final = 0.0

    def __init__(self, client: HttpTuningApi) -> None:
        self._client = client

    async def prepare(self, job: Job, body: Mapping[str, Any]) -> RemoteFacts:
        """Nothing to prepare: the training examples travel inline in the create request."""
        return RemoteFacts()

    async def submit(self, job: Job, body: Mapping[str, Any]) -> RemoteStatus:
        """``tunedModels.create`` with the job's fixed id; a 409 means an earlier attempt landed: adopt it."""
        try:
            operation: OperationStatus | None = await self._client.create_tuned_model(job.tuned_model_id, body)
        except AlreadyExists:
            log.info("create_already_exists_adopting", job_id=job.id, tuned_model=job.tuned_model_name)
            operation = await self._adopt(job)
        return self._started(job, operation)

    async def find(self, job: Job) -> RemoteStatus | None:
        """Nothing to look up before submitting again: the repeated create answers 409 if one landed.

        So None here does not prove that no earlier create landed. The scheduler clears a job's
        submission mark after a None only when :meth:`prepare` then fails, and Gemini's prepare cannot
        fail; a Gemini prepare that can (or a settle window above 0) must make this method really look
        (``GET`` the model by its fixed id), or a cancel could end a job whose tuning is running.
        """
        return None

    async def poll(self, job: Job) -> RemoteStatus:
        """Read the operation on /v1 (the client falls back to /v1beta); then the model's state.

        The model is also the fallback for an operation we cannot read (``done`` without an
        outcome, wrong types): its ``state`` and snapshots tell the same story in another shape.
        """
        operation: OperationStatus | None = None
        try:
            if job.operation_name:
                operation = await self._client.get_operation(job.operation_name, after_step=job.completed_steps)
            else:  # adopted without one: it may be listed by now, and only it carries the progress
                operation = await self._find_operation(job)
        except NotFound:
            pass
        except MalformedResponse as exc:
            log.warning("operation_unreadable_reading_model", job_id=job.id, error=str(exc))
        if operation is not None:
            # A done operation without a response ended in error, which leaves its model FAILED.
            model_state = operation.model.state if operation.model else (FAILED if operation.done else CREATING)
            return RemoteStatus(judge_operation(operation), RemoteFacts(operation_name=operation.name,
                                                                        remote_state=model_state),
                                operation.total_steps, operation.snapshots)
        return await self._poll_model(job)

    async def cancel(self, job: Job) -> None:
        """``:cancel`` the operation; a job adopted without one looks for it first.

        A tuning whose operation no API version lists cannot be cancelled; deleting its tuned model
        is the one way left to stop it (and its bill), and the poll that follows records the end.
        """
        name = job.operation_name
        if name is None:
            operation = await self._find_operation(job)
            name = operation.name if operation else None
        if name is None:
            log.warning("cancel_without_operation_deleting_model", job_id=job.id)
            with contextlib.suppress(NotFound):
                await self._client.delete_tuned_model(job.tuned_model_name)
            return
        try:
            await self._client.cancel_operation(name)
        except NotFound:
            pass  # gone already: the poll that follows says how it ended
        except PermanentError as exc:
            # e.g. FAILED_PRECONDITION for an operation that ended meanwhile: the job ends as the API
            # says (the poll that follows reads it), never "failed" because a cancel was refused.
            log.warning("cancel_refused", job_id=job.id, http_status=exc.http_status, status=exc.status,
                        message=exc.api_message)

    async def discard(self, job: Job) -> None:
        """Delete the tuned model of a cancelled job, as the API's docs advise."""
        await self._client.delete_tuned_model(job.tuned_model_name)

    # -- helpers ------------------------------------------------------------------------------

    def _started(self, job: Job, operation: OperationStatus | None) -> RemoteStatus:
        facts = RemoteFacts(operation_name=operation.name if operation else None, remote_state=CREATING,
                            model_name=job.tuned_model_name)
        verdict = judge_operation(operation) if operation else Verdict(Outcome.RUNNING)
        return RemoteStatus(verdict, facts, operation.total_steps if operation else None)

    async def _adopt(self, job: Job) -> OperationStatus | None:
        """Find the operation of a tuned model we created earlier (whose response we never saw).

        The operation list comes first (the client asks ``/v1``, then ``/v1beta``); when neither
        version lists it, the model itself is read and polled by its ``state`` (None). A model that
        is gone again was deleted in between: that is transient, and the next try creates it anew.
        """
        operation = await self._find_operation(job)
        if operation is not None:
            return operation
        try:
            await self._client.get_tuned_model(job.tuned_model_name)
        except NotFound:
            raise TransientError("the tuned model reported as existing was not found; creating again") from None
        return None

    async def _find_operation(self, job: Job) -> OperationStatus | None:
        """The model's creation operation from its operation list, or None when no version lists it."""
        try:
            operations = await self._client.list_operations(job.tuned_model_name)
        except NotFound:
            return None
        prefix = f"{job.tuned_model_name}/operations/"
        return next((op for op in operations if op.name.startswith(prefix)), None)

    async def _poll_model(self, job: Job) -> RemoteStatus:
        """The job read from its tuned model's ``state`` when no operation can be read."""
        try:
            model = await self._client.get_tuned_model(job.tuned_model_name)
        except NotFound:
            if job.state is JobState.CANCELLING:  # we deleted it to stop a tuning we could not cancel
                verdict = Verdict(Outcome.CANCELLED, CANCELLED_CODE, "the tuned model was deleted to stop it")
            else:
                gone = "the tuned model no longer exists (deleted outside the orchestrator)"
                verdict = Verdict(Outcome.FAILED, 5, gone)
            return RemoteStatus(verdict, progress_visible=job.operation_name is not None)
        verdict = judge_model_state(model.state)
        if verdict.outcome is Outcome.FAILED and job.operation_name is None:
            verdict = await self._failure_words(job, verdict)
        if job.state is JobState.CANCELLING and verdict.outcome is Outcome.FAILED and verdict.code is None:
            # A cancelled tuning leaves its model FAILED; without the operation that is all we see.
            verdict = Verdict(Outcome.CANCELLED, CANCELLED_CODE, "the tuned model is FAILED after our cancel")
        # Progress is read from the operation: a job adopted without one shows none, and the stall
        # detector must not call that a stall and cancel a healthy tuning.
        return RemoteStatus(verdict, RemoteFacts(remote_state=model.state), None, model.snapshots,
                            progress_visible=job.operation_name is not None)

    async def _failure_words(self, job: Job, fallback: Verdict) -> Verdict:
        """The API's own code and message for a FAILED model, from its operation when one is listed now."""
        try:
            operation = await self._find_operation(job)
        except ApiError:
            return fallback
        if operation is None or not operation.done:
            return fallback
        verdict = judge_operation(operation)
        return verdict if verdict.outcome is not Outcome.SUCCEEDED else fallback
