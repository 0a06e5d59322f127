"""``EmulatorSettings``: every knob of the emulator in one frozen dataclass.

Each field's ``metadata["help"]`` is the documentation the CLI prints in ``--help``; the CLI derives a
``--flag`` and an ``ORCHESTRATOR_EMULATOR_<FIELD>`` environment variable from each field, so a new knob
is documented and settable everywhere by adding it here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.emulator.faults import FaultPlan


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True, slots=True)
class EmulatorSettings:
    """How the emulated service behaves.  Defaults mimic production where it is known."""

    step_seconds: float = field(default=2.0, metadata=_help("simulated seconds per training step (prod ~1.2-2.6)"))
    time_scale: float = field(
        default=1.0, metadata=_help("simulated seconds per real second; 20 with step_seconds=2 gives 0.1 s/step")
    )
    seed: int = field(default=0, metadata=_help("seed for ids, loss curves and step jitter (same seed, same run)"))
    metadata_refresh_seconds: float = field(
        default=0.0,
        metadata=_help(
            "granularity (simulated seconds) at which operation progress refreshes; production refreshes "
            "about every 60 s; 0 = always fresh"
        ),
    )
    start_delay_seconds: float = field(
        default=0.3, metadata=_help("simulated seconds from createTime to tuningTask.startTime (prod 0.08-0.64)")
    )
    min_examples: int = field(default=1, metadata=_help("fewest training examples a create accepts (prod took 15)"))
    max_examples: int = field(default=100_000, metadata=_help("most training examples a create accepts"))
    default_size_threshold: int = field(
        default=500,
        metadata=_help("datasets with fewer examples get the small default batch size / larger learning rate"),
    )
    allow_tuned_model_source: bool = field(
        default=False, metadata=_help("accept tunedModelSource (production answered 400: tune only once)")
    )
    api_keys: tuple[str, ...] = field(
        default=(),
        metadata=_help(
            "accepted API keys, comma separated, each KEY or KEY=PRINCIPAL (a project, or an email that "
            "permissions can name); empty = accept anything"
        ),
    )
    tokens: tuple[str, ...] = field(
        default=(),
        metadata=_help("accepted OAuth bearer tokens, comma separated, each TOKEN or TOKEN=PRINCIPAL"),
    )
    token_ttl_seconds: float = field(
        default=0.0,
        metadata=_help(
            "real seconds a bearer token stays valid after its first use (any token when none are configured); "
            "0 = forever"
        ),
    )
    max_active_jobs: int = field(
        default=0, metadata=_help("cap on CREATING tuned models per project (429 beyond it); 0 = no cap")
    )
    vertex_max_concurrent_jobs: int = field(
        default=1,
        metadata=_help(
            "Vertex AI concurrent tuning jobs per project (production's default quota can be 1); extra jobs "
            "wait PENDING with tuningJobState TUNING_JOB_STATE_WAITING_FOR_QUOTA; 0 = no cap"
        ),
    )
    vertex_batch_size: int = field(
        default=8,
        metadata=_help(
            "examples per Vertex AI training step (Vertex chooses its own; tuningStepCount = "
            "ceil(examples / this) x epochs)"
        ),
    )
    pretty: bool = field(
        default=False,
        metadata=_help(
            "indent JSON answers by 2 spaces as production does (for people reading curl output); "
            "off by default because compact JSON is cheaper"
        ),
    )
    faults: FaultPlan = field(
        default_factory=FaultPlan,
        metadata=_help("fault plan as JSON (or @path to a JSON file); see the module docs for the shape"),
    )

    def __post_init__(self) -> None:
        if self.step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        if self.time_scale <= 0:
            raise ValueError("time_scale must be positive")
        if self.metadata_refresh_seconds < 0:
            raise ValueError("metadata_refresh_seconds must not be negative")
        if self.min_examples < 1 or self.max_examples < self.min_examples:
            raise ValueError("need 1 <= min_examples <= max_examples")
        if self.vertex_max_concurrent_jobs < 0:
            raise ValueError("vertex_max_concurrent_jobs must not be negative")
        if self.vertex_batch_size < 1:
            raise ValueError("vertex_batch_size must be at least 1")
