"""The tuning API as the scheduler sees it: a protocol and the values it returns.

The scheduler depends on :class:`TuningApi` only; ``gemini.client.HttpTuningApi`` is the one
implementation that speaks HTTP. Keeping the surface this narrow is what lets a second backend
(Vertex ``tuningJobs``) be added without touching the scheduler.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from orchestrator.jobs import Snapshot

__all__ = ["OperationError", "OperationStatus", "Snapshot", "TunedModelStatus", "TuningApi"]

#: ``google.rpc.Code.CANCELLED``: the code of an operation that ended because it was cancelled.
CANCELLED_CODE = 1


@dataclass(frozen=True, slots=True)
class OperationError:
    """``Operation.error``: a ``google.rpc.Status`` (only the numeric code appears in operations)."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class TunedModelStatus:
    """What we keep of a ``TunedModel``: its name, its state and its loss history."""

    name: str
    state: str  # STATE_UNSPECIFIED | CREATING | ACTIVE | FAILED
    snapshots: tuple[Snapshot, ...] = ()


@dataclass(frozen=True, slots=True)
class OperationStatus:
    """A create-tuned-model long-running operation, read whole on every poll."""

    name: str
    tuned_model: str
    total_steps: int | None
    completed_steps: int
    completed_percent: float
    snapshots: tuple[Snapshot, ...]
    done: bool
    error: OperationError | None = None
    model: TunedModelStatus | None = None  # ``response`` when done without error


class TuningApi(Protocol):
    """The calls the scheduler makes. Every method raises only ``orchestrator.errors.ApiError``s."""

    async def create_tuned_model(self, tuned_model_id: str, body: Mapping[str, Any]) -> OperationStatus:
        """``POST /v1beta/tunedModels?tunedModelId=…``: start tuning; the id makes a retry safe."""
        ...

    async def get_operation(self, name: str, *, after_step: int = 0) -> OperationStatus:
        """``GET /v1/{name}``, falling back to ``/v1beta`` when v1 does not know it.

        Only the snapshots of steps after ``after_step`` (those already recorded) are decoded.
        """
        ...

    async def list_operations(self, tuned_model: str) -> list[OperationStatus]:
        """``GET /v1/{tuned_model}/operations`` (fallback ``/v1beta``): to adopt a create that landed."""
        ...

    async def get_tuned_model(self, name: str) -> TunedModelStatus:
        """``GET /v1beta/{name}``."""
        ...

    async def cancel_operation(self, name: str) -> None:
        """``POST /v1/{name}:cancel`` (fallback ``/v1beta``): best effort, asynchronous."""
        ...

    async def delete_tuned_model(self, name: str) -> None:
        """``DELETE /v1beta/{name}``."""
        ...
