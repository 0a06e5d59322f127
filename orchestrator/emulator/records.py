"""One tuned model and its operation, and how both look on the wire at a given instant.

Rendering follows proto3 JSON as production writes it: field-number order, defaults omitted, float32
values, 6-digit timestamps for create/update/complete times and 9-digit ones for start/compute times,
and nothing the real messages lack (the legacy SDK parses operations strictly, gemini-api.md §9.1).

Snapshots are serialised once per step into a per-record buffer; a response is the cached small JSON
around them, so a poll costs a dictionary lookup and a join, not a re-encoding of hundreds of snapshots.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from orchestrator.emulator.schema import ENUMS
from orchestrator.emulator.training import Ending, Run, epoch_of
from orchestrator.emulator.validation import CreateSpec
from orchestrator.emulator.wire import dumps, f32, timestamp

_API: Final = "type.googleapis.com/google.ai.generativelanguage"
#: Stands where the encoded snapshot array goes; random so that no user string can ever equal it.
_SNAPS: Final = f"\x00snapshots-{secrets.token_hex(8)}\x00"
_SNAPS_BYTES: Final = dumps(_SNAPS)
_STATE_NUMBERS: Final = {"STATE_UNSPECIFIED": 0, "CREATING": 1, "ACTIVE": 2, "FAILED": 3}
CANCELLED_MESSAGE: Final = "Operation cancelled."
FAILED_MESSAGE: Final = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)


@dataclass(slots=True)
class SimClock:
    """Simulated time: ``time_scale`` simulated seconds per real second, starting at a wall-clock instant."""

    monotonic: Callable[[], float]  #: real seconds, monotonic
    time_scale: float
    wall_start: float
    mono_start: float = 0.0

    def __post_init__(self) -> None:
        self.mono_start = self.monotonic()

    def now(self) -> float:
        """Simulated seconds since the emulator started."""
        return (self.monotonic() - self.mono_start) * self.time_scale

    def wall(self, sim: float) -> float:
        """Unix time at which a simulated instant happens (what timestamps show).

        Timestamps are real times, never in the future: a client comparing ``computeTime`` or
        ``updateTime`` with its own clock sees consistent values whatever the time scale (durations
        between them are therefore ``step_seconds / time_scale`` apart, not ``step_seconds``).
        """
        return self.wall_start + sim / self.time_scale


#: Role strength; a role includes every weaker one (READER ⊂ WRITER ⊂ OWNER).
ROLE_RANK: Final = {"READER": 1, "WRITER": 2, "OWNER": 3}


@dataclass(slots=True)
class Permission:
    """A grant on a tuned model: to a user or group (by email) or to everyone."""

    permission_id: str
    grantee_type: str
    email_address: str
    role: str

    def to_json(self, model_name: str, *, int_enums: bool) -> dict[str, Any]:
        """The Permission resource (``emailAddress`` absent for EVERYONE)."""
        out: dict[str, Any] = {"name": f"{model_name}/permissions/{self.permission_id}"}
        out["granteeType"] = ENUMS["grantee"].index(self.grantee_type) if int_enums else self.grantee_type
        if self.email_address:
            out["emailAddress"] = self.email_address
        out["role"] = ENUMS["role"].index(self.role) if int_enums else self.role
        return out


@dataclass(slots=True)
class TunedModelRecord:
    """A tuned model, its operation and its simulated run."""

    model_id: str
    operation_id: str
    owner: str
    seq: int
    spec: CreateSpec
    created: float
    run: Run
    display_name: str
    description: str
    temperature: float
    top_p: float
    top_k: int
    reader_project_numbers: tuple[int, ...]
    fail_code: int = 13
    fail_message: str = FAILED_MESSAGE
    patched: float | None = None
    revision: int = 0
    permissions: dict[str, Permission] = field(default_factory=dict)
    _snaps: bytearray = field(default_factory=bytearray)
    _offsets: list[int] = field(default_factory=lambda: [0])
    _op_cache: tuple[tuple[Any, ...], list[bytes]] | None = None
    _array_cache: tuple[int, bytes] = (-1, b"")

    @property
    def name(self) -> str:
        """``tunedModels/{id}``."""
        return f"tunedModels/{self.model_id}"

    @property
    def operation_name(self) -> str:
        """``tunedModels/{id}/operations/{op}``."""
        return f"{self.name}/operations/{self.operation_id}"

    def grants(self, principal: str, role: str) -> bool:
        """Whether ``principal`` (a credential's project or email) holds at least ``role`` here."""
        if principal == self.owner:
            return True
        need = ROLE_RANK[role]
        return any(
            ROLE_RANK[grant.role] >= need
            and (grant.grantee_type == "EVERYONE" or grant.email_address.lower() == principal.lower())
            for grant in self.permissions.values()
        )

    def shared_with_everyone(self) -> bool:
        """Whether some permission grants this model to everyone."""
        return any(grant.grantee_type == "EVERYONE" for grant in self.permissions.values())

    def state(self, now: float) -> str:
        """CREATING while the run goes on, ACTIVE after success, FAILED after a failure or cancel."""
        ending = self.run.progress(now).ending
        if ending is None:
            return "CREATING"
        return "ACTIVE" if ending is Ending.SUCCEEDED else "FAILED"

    # -- snapshots -------------------------------------------------------------------------------

    def _snapshots(self, steps: int, clock: SimClock, *, final: bool) -> bytes:
        """The JSON array of the first ``steps`` snapshots, extending the cached encoding as needed.

        Once the run has ended the array cannot change, so the growing buffer is released and only the
        finished array is kept (one copy per job; a fleet of 10,000 finished jobs stays affordable).
        """
        if self._array_cache[0] == steps:
            return self._array_cache[1]
        built = len(self._offsets) - 1
        if steps > built:
            self._encode_snapshots(built + 1, steps, clock)
        array = b"[" + bytes(memoryview(self._snaps)[: self._offsets[steps]]) + b"]"
        self._array_cache = (steps, array)
        if final:
            self._snaps, self._offsets = bytearray(), [0]
        return array

    def _encode_snapshots(self, first: int, last: int, clock: SimClock) -> None:
        """Append snapshots ``first..last`` to the buffer: each step is encoded once in a record's life."""
        run, batch, examples = self.run, self.spec.batch_size, len(self.spec.examples)
        snaps, offsets, wall = self._snaps, self._offsets, clock.wall
        for step in range(first, last + 1):
            epoch = epoch_of(step, batch, examples)
            epoch_text = f',"epoch":{epoch}' if epoch else ""
            finished, mean_loss = run.snapshot(step)
            compute = timestamp(wall(finished), 9)
            loss = f"{mean_loss:.8g}"  # float32 has ~7.2 significant digits; production prints 7-9
            comma = "," if step > 1 else ""
            snaps += f'{comma}{{"step":{step}{epoch_text},"meanLoss":{loss},"computeTime":"{compute}"}}'.encode()
            offsets.append(len(snaps))

    # -- the TunedModel resource -------------------------------------------------------------------

    def model_json(self, now: float, clock: SimClock, *, int_enums: bool, with_type: bool = False) -> dict[str, Any]:
        """The TunedModel as a dict; ``snapshots`` is a placeholder that ``encode`` fills in."""
        progress = self.run.progress(now)
        state = self.state(now)
        created = timestamp(clock.wall(self.created), 6)
        out: dict[str, Any] = {}
        if with_type:
            out["@type"] = f"{_API}.{self.spec.version}.TunedModel"
        out["name"] = self.name
        if self.spec.source_model:
            out["tunedModelSource"] = {"tunedModel": self.spec.source_model, "baseModel": self.spec.base.name}
        else:
            out["baseModel"] = self.spec.base.name
        if self.display_name:
            out["displayName"] = self.display_name
        if self.description:
            out["description"] = self.description
        out["state"] = _STATE_NUMBERS[state] if int_enums else state
        out["createTime"] = created
        updated = self.created if progress.end_time is None else progress.end_time
        if self.patched is not None:
            updated = max(updated, self.patched)
        out["updateTime"] = timestamp(clock.wall(updated), 6)
        task: dict[str, Any] = {}
        task["startTime"] = timestamp(clock.wall(self.run.start), 9)
        if progress.ending is Ending.SUCCEEDED and progress.end_time is not None:
            task["completeTime"] = timestamp(clock.wall(progress.end_time), 6)
        if progress.ending is not None and progress.completed_steps:
            task["snapshots"] = _SNAPS
        task["hyperparameters"] = self._hyperparameters()
        out["tuningTask"] = task
        out["temperature"] = f32(self.temperature)
        out["topP"] = f32(self.top_p)
        if self.top_k:
            out["topK"] = self.top_k
        if self.reader_project_numbers and self.spec.version != "v1beta3":
            out["readerProjectNumbers"] = [str(number) for number in self.reader_project_numbers]
        return out

    def _hyperparameters(self) -> dict[str, Any]:
        """Field-number order, as production prints it: epochCount, batchSize, learningRate(Multiplier)."""
        spec = self.spec
        out: dict[str, Any] = {"epochCount": spec.epochs, "batchSize": spec.batch_size}
        if spec.learning_rate_multiplier is not None:
            out["learningRateMultiplier"] = f32(spec.learning_rate_multiplier)
        elif spec.learning_rate is not None:
            out["learningRate"] = f32(spec.learning_rate)
        return out

    def encode_model(self, now: float, clock: SimClock, *, int_enums: bool) -> bytes:
        """``GET tunedModels/{id}`` body."""
        progress = self.run.progress(now)
        chunks = dumps(self.model_json(now, clock, int_enums=int_enums)).split(_SNAPS_BYTES)
        if len(chunks) == 1:  # no snapshots in this state
            return chunks[0]
        return self._snapshots(progress.completed_steps, clock, final=progress.ending is not None).join(chunks)

    # -- the Operation -----------------------------------------------------------------------------

    def encode_operation(self, now: float, clock: SimClock, *, int_enums: bool, refresh: float) -> bytes:
        """``GET …/operations/{op}`` body; metadata progress is quantised to ``refresh`` seconds."""
        progress = self.run.progress(now)
        if progress.ending is None and refresh > 0:
            steps = self.run.progress(now - now % refresh).completed_steps
        else:
            steps = progress.completed_steps
        key = (steps, progress.ending, int_enums, self.revision)
        cached = self._op_cache
        if cached is None or cached[0] != key:
            chunks = dumps(self._operation_json(now, clock, steps, progress.ending, int_enums)).split(_SNAPS_BYTES)
            cached = self._op_cache = (key, chunks)
        if len(cached[1]) == 1:
            return cached[1][0]
        return self._snapshots(steps, clock, final=progress.ending is not None).join(cached[1])

    def _operation_json(
        self, now: float, clock: SimClock, steps: int, ending: Ending | None, int_enums: bool
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "@type": f"{_API}.{self.spec.version}.CreateTunedModelMetadata",
            "totalSteps": self.run.total,
        }
        if steps:
            metadata["completedSteps"] = steps
            metadata["completedPercent"] = f32(100.0 * steps / self.run.total)
            metadata["snapshots"] = _SNAPS
        metadata["tunedModel"] = self.name
        out: dict[str, Any] = {"name": self.operation_name, "metadata": metadata}
        if ending is None:
            return out
        out["done"] = True
        if ending is Ending.SUCCEEDED:
            out["response"] = self.model_json(now, clock, int_enums=int_enums, with_type=True)
        elif ending is Ending.CANCELLED:
            out["error"] = {"code": 1, "message": CANCELLED_MESSAGE}
        else:
            out["error"] = {"code": self.fail_code, "message": self.fail_message}
        return out
