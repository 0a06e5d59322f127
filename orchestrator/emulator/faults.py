"""Faults on demand: a plan of rules, each firing by exact call count or by seeded probability.

A rule matches requests to some routes (``create``, ``get_model``, ``list_models``, ``patch_model``,
``delete_model``, ``get_operation``, ``list_operations``, ``cancel_operation``, ``delete_operation``,
``generate``, ``get_base_model``, ``list_base_models``, ``create_permission``, ``list_permissions``,
``get_permission``, ``patch_permission``, ``delete_permission``, ``transfer_ownership``; Vertex AI:
``vertex_create``, ``vertex_get``, ``vertex_list``, ``vertex_cancel``, ``vertex_context``, ``vertex_runs``,
``vertex_time_series``, ``vertex_read``; Cloud Storage: ``storage_upload`` (media, multipart, resumable
start), ``storage_upload_chunk`` (a resumable ``PUT``), ``storage_get``, ``storage_download``,
``storage_list``, ``storage_delete``, ``storage_bucket``; and ``oauth_token``; none listed = every API
route).  Each rule counts
its own matching calls from 1, so ``{"routes": ["create"], "calls": [3, 5]}`` is "the 3rd and 5th
create".  Without ``calls`` it fires with ``probability`` (default 1.0) drawn from the plan's seeded RNG,
so a run is reproducible for a seed and the same request sequence.

Kinds: ``http_error`` (``status`` 500/503/504/...), ``rate_limit`` (429 with RetryInfo and QuotaFailure,
``retry_delay_seconds``), ``latency`` (``seconds`` of real delay, combinable with the others),
``drop_connection`` (close without a response), ``lost_response`` (run the handler, commit, then drop
the connection; the exactly-once case for ``create``), ``malformed_response`` (run the handler, then
answer 200 with half of the JSON), ``truncated_response`` (run the handler, announce the full
Content-Length, send half the body and close), ``token_expired`` (401 as for an expired OAuth
token), ``fail_job`` (the created job fails at ``step`` with operation error ``code``, default 13) and
``stall_job`` (the created job stops progressing after ``step`` steps; it ends only if cancelled or
deleted).  Vertex creates also take ``expire_job`` (JOB_STATE_EXPIRED at ``step``), ``pause_job``
(JOB_STATE_PAUSED after ``step`` steps), ``partially_succeed_job`` (JOB_STATE_PARTIALLY_SUCCEEDED instead
of SUCCEEDED) and ``list_lag`` (the created job stays out of list answers for ``seconds`` simulated
seconds, as an eventually consistent index would).  Job kinds only apply to creates (``create`` and
``vertex_create``), and a ``step`` beyond the job's total steps has no effect.
A rule with both ``calls`` and ``probability`` fires on exactly those calls.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

ROUTES: Final = frozenset(
    {
        "create",
        "get_model",
        "list_models",
        "patch_model",
        "delete_model",
        "get_operation",
        "list_operations",
        "cancel_operation",
        "delete_operation",
        "generate",
        "get_base_model",
        "list_base_models",
        "create_permission",
        "list_permissions",
        "get_permission",
        "patch_permission",
        "delete_permission",
        "transfer_ownership",
        "vertex_create",
        "vertex_get",
        "vertex_list",
        "vertex_cancel",
        "vertex_context",
        "vertex_runs",
        "vertex_time_series",
        "vertex_read",
        "storage_upload",
        "storage_upload_chunk",
        "storage_get",
        "storage_download",
        "storage_list",
        "storage_delete",
        "storage_bucket",
        "oauth_token",
    }
)
KINDS: Final = frozenset(
    {
        "http_error",
        "rate_limit",
        "latency",
        "drop_connection",
        "lost_response",
        "malformed_response",
        "truncated_response",
        "token_expired",
        "fail_job",
        "stall_job",
        "expire_job",
        "pause_job",
        "partially_succeed_job",
        "list_lag",
    }
)
CREATE_ROUTES: Final = frozenset({"create", "vertex_create"})
#: Job kinds → the create routes they may watch.
_JOB_KINDS: Final = {
    "fail_job": CREATE_ROUTES,
    "stall_job": CREATE_ROUTES,
    "expire_job": frozenset({"vertex_create"}),
    "pause_job": frozenset({"vertex_create"}),
    "partially_succeed_job": frozenset({"vertex_create"}),
    "list_lag": frozenset({"vertex_create"}),
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    """One fault: what happens, on which routes, on which calls."""

    kind: str
    routes: tuple[str, ...] = ()
    calls: tuple[int, ...] = ()
    probability: float = 1.0
    status: int = 503
    message: str | None = None
    retry_delay_seconds: float = 30.0
    seconds: float = 0.0
    step: int = 1
    code: int = 13

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(KINDS)}")
        unknown = set(self.routes) - ROUTES
        if unknown:
            raise ValueError(f"unknown route(s) {sorted(unknown)}; expected some of {sorted(ROUTES)}")
        if self.kind in _JOB_KINDS and set(self.routes) - _JOB_KINDS[self.kind]:
            raise ValueError(f"{self.kind} applies to {' and '.join(sorted(_JOB_KINDS[self.kind]))} only")
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        if any(call < 1 for call in self.calls):
            raise ValueError("calls are 1-based counts")
        if self.kind == "http_error" and not 400 <= self.status <= 599:
            raise ValueError("http_error status must be 4xx or 5xx")

    @property
    def effective_routes(self) -> frozenset[str]:
        """Routes this rule watches; job faults watch creates, an empty list means every route."""
        if self.kind in _JOB_KINDS:
            return frozenset(self.routes) if self.routes else _JOB_KINDS[self.kind]
        return frozenset(self.routes) if self.routes else ROUTES

    def to_json(self) -> dict[str, Any]:
        """The rule as the admin route shows it."""
        out: dict[str, Any] = {"kind": self.kind, "routes": list(self.routes), "calls": list(self.calls)}
        out["probability"] = self.probability
        extra = {
            "http_error": ("status", "message"),
            "rate_limit": ("retry_delay_seconds", "message"),
            "latency": ("seconds",),
            "fail_job": ("step", "code", "message"),
            "stall_job": ("step",),
            "expire_job": ("step",),
            "pause_job": ("step",),
            "list_lag": ("seconds",),
        }.get(self.kind, ())
        for name in extra:
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """An ordered set of rules and the seed of the RNG that draws probabilities."""

    rules: tuple[FaultRule, ...] = ()
    seed: int = 0

    @classmethod
    def from_json(cls, value: Any) -> FaultPlan:
        """``{"seed": 0, "rules": [{...}]}`` or a bare list of rules; raises ValueError when malformed."""
        if isinstance(value, list):
            value = {"rules": value}
        if not isinstance(value, dict):
            raise ValueError("a fault plan is an object {seed, rules} or a list of rules")
        unknown = set(value) - {"seed", "rules"}
        if unknown:
            raise ValueError(f"unknown fault plan key(s) {sorted(unknown)}")
        rules = []
        for raw in value.get("rules", []):
            if not isinstance(raw, dict):
                raise ValueError("each rule is an object")
            try:
                fields: dict[str, Any] = {
                    key: tuple(item) if key in ("routes", "calls") and isinstance(item, list) else item
                    for key, item in raw.items()
                }
                rule = FaultRule(**fields)
            except TypeError as exc:
                raise ValueError(f"bad fault rule {raw!r}: {exc}") from exc
            rules.append(rule)
        seed = value.get("seed", 0)
        if not isinstance(seed, int):
            raise ValueError("seed must be an integer")
        return cls(tuple(rules), seed)

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        """JSON text, or ``@path`` naming a JSON file (CLI and environment form)."""
        text = text.strip()
        if not text:
            return cls()
        if text.startswith("@"):
            text = Path(text[1:]).read_text(encoding="utf-8")
        try:
            return cls.from_json(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ValueError(f"fault plan is not valid JSON: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        """The plan as the admin route shows it."""
        return {"seed": self.seed, "rules": [rule.to_json() for rule in self.rules]}


@dataclass(slots=True)
class Decision:
    """What the fault plan says about one request."""

    latency: float = 0.0
    error: FaultRule | None = None  #: http_error / rate_limit / token_expired / drop_connection
    lose_response: bool = False
    #: After the handler ran: "malformed" (200 with half a JSON document) or "truncated" (the full
    #: Content-Length announced, half the body sent, connection closed).
    mangle: str | None = None
    fail_at: int | None = None
    fail_code: int = 13
    fail_message: str | None = None
    stall_at: int | None = None
    expire_at: int | None = None
    pause_at: int | None = None
    partial: bool = False
    list_lag: float = 0.0


@dataclass(slots=True)
class FaultEngine:
    """The live plan: per-rule call counters and the seeded RNG (replaced wholesale by ``set_plan``)."""

    plan: FaultPlan = field(default_factory=FaultPlan)
    counters: list[int] = field(default_factory=list)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.set_plan(self.plan)

    def set_plan(self, plan: FaultPlan) -> None:
        """Install a plan and restart its counters and RNG."""
        self.plan = plan
        self.counters = [0] * len(plan.rules)
        self.rng = random.Random(plan.seed)

    def decide(self, route: str) -> Decision | None:
        """Count this call against every matching rule and collect what fires (None: nothing does)."""
        if not self.plan.rules:
            return None
        decision: Decision | None = None
        for index, rule in enumerate(self.plan.rules):
            if route not in rule.effective_routes:
                continue
            self.counters[index] += 1
            fires = self.counters[index] in rule.calls if rule.calls else self.rng.random() < rule.probability
            if not fires:
                continue
            decision = decision or Decision()
            self._apply(rule, decision)
        return decision

    @staticmethod
    def _apply(rule: FaultRule, decision: Decision) -> None:
        if rule.kind == "latency":
            decision.latency += rule.seconds
        elif rule.kind == "lost_response":
            decision.lose_response = True
        elif rule.kind in ("malformed_response", "truncated_response"):
            decision.mangle = rule.kind.removesuffix("_response")
        elif rule.kind == "fail_job":
            decision.fail_at, decision.fail_code, decision.fail_message = rule.step, rule.code, rule.message
        elif rule.kind == "stall_job":
            decision.stall_at = rule.step
        elif rule.kind == "expire_job":
            decision.expire_at = rule.step
        elif rule.kind == "pause_job":
            decision.pause_at = rule.step
        elif rule.kind == "partially_succeed_job":
            decision.partial = True
        elif rule.kind == "list_lag":
            decision.list_lag = max(decision.list_lag, rule.seconds)
        elif decision.error is None:
            decision.error = rule
