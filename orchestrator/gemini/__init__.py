"""The Gemini API backend: the values its client returns.

``client.HttpTuningApi`` speaks HTTP to ``tunedModels`` and its operations and returns these values;
``service.GeminiTuning`` answers the scheduler's :class:`~orchestrator.tuning.TuningApi` with them.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.jobs import Snapshot

__all__ = ["OperationError", "OperationStatus", "Snapshot", "TunedModelStatus"]


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
