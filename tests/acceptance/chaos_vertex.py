"""The chaos run on the Vertex AI backend: what differs from the Gemini run (``chaos.py`` drives both).

The daemon runs with ``[api] backend = "vertex"`` and ``auth = "adc"``: a service-account key file (in
``GOOGLE_APPLICATION_CREDENTIALS``) whose ``token_uri`` is the emulator's ``POST /token``, the emulator
enforcing tokens, so every request carries a token the daemon got and refreshed itself. Its faults hit
the upload (lost answers: the repeat must meet 412), the create (lost answers, list lag, 500s), every
read (503, 429, dropped connections, expired tokens), and the jobs themselves (failed, expired, partly
succeeded). The invariants are the same: at most one tuning job per orchestrator job (the emulator's
creates by ``orchestrator-job`` label), every loss point of the TensorBoard series recorded once, every
terminal state as Vertex ended the job, and no token or private key in any output.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from orchestrator.vertex.jobfile import JOB_LABEL

PROJECT = "chaos-project"
STAGING_URI = f"gs://{PROJECT}/staging"
#: A token the checker reads the loss series with (the emulator accepts it for the project).
READER_TOKEN = "chaos-reader-8b2e61f0"
#: What the emulator's token route issues and the private key file's marker: neither may leak.
SECRET_MARKERS = (b"ya29.", b"PRIVATE KEY")
#: Vertex's ending of a tuning job → the state our job must end in (README, "Tuning on Vertex AI").
EXPECTED_STATE = {
    "JOB_STATE_SUCCEEDED": "succeeded", "JOB_STATE_PARTIALLY_SUCCEEDED": "succeeded", "JOB_STATE_FAILED": "failed",
    "JOB_STATE_EXPIRED": "failed", "JOB_STATE_CANCELLED": "cancelled",
}
#: Real seconds a lost create may take to be listed (``[vertex] list_settle_seconds`` of the run) and the
#: list lag the emulator injects, in simulated seconds (at the run's time scale, well under the window).
SETTLE_SECONDS = 6.0
LIST_LAG_SIMULATED = 60.0


def fault_plan(seed: int, rate: float) -> dict[str, Any]:
    """Faults on every Vertex and Cloud Storage route, at rates that fire each kind many times a run."""
    def p(value: float) -> float:
        return min(1.0, value * rate)

    return {
        "seed": seed,
        "rules": [
            {"kind": "lost_response", "routes": ["vertex_create"], "probability": p(0.35)},
            # One of each transient kind on a fixed call as well, so that a short run sees every kind
            # whatever the dice say (the assertions name them).
            {"kind": "http_error", "status": 503, "calls": [5]},
            {"kind": "rate_limit", "retry_delay_seconds": 0.3, "calls": [9]},
            {"kind": "drop_connection", "calls": [13]},
            {"kind": "list_lag", "seconds": LIST_LAG_SIMULATED, "routes": ["vertex_create"], "probability": p(0.5)},
            {"kind": "http_error", "status": 500, "routes": ["vertex_create"], "probability": p(0.1)},
            {"kind": "lost_response", "routes": ["storage_upload"], "probability": p(0.3)},
            {"kind": "http_error", "status": 503, "probability": p(0.06)},
            {"kind": "rate_limit", "retry_delay_seconds": 0.3, "probability": p(0.03)},
            {"kind": "drop_connection", "probability": p(0.04)},
            {"kind": "token_expired", "routes": ["vertex_get", "vertex_read", "vertex_list"], "probability": p(0.02)},
            {"kind": "fail_job", "step": 3, "code": 13, "routes": ["vertex_create"], "probability": 0.1},
            {"kind": "expire_job", "step": 2, "routes": ["vertex_create"], "probability": 0.05},
            {"kind": "partially_succeed_job", "routes": ["vertex_create"], "probability": 0.05},
        ],
    }


def daemon_env(root: Path, key_file: Path) -> dict[str, str]:
    """What the Vertex run sets on top of the common environment."""
    return {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "ORCHESTRATOR_API_BACKEND": "vertex",
        "ORCHESTRATOR_API_AUTH": "adc",
        "ORCHESTRATOR_VERTEX_PROJECT": PROJECT,
        "ORCHESTRATOR_VERTEX_STAGING_URI": STAGING_URI,
        "ORCHESTRATOR_VERTEX_BASE_MODEL": "gemini-2.5-flash",
        "ORCHESTRATOR_VERTEX_LIST_SETTLE_SECONDS": str(SETTLE_SECONDS),
    }


def job_file(seed: int, index: int, rng: random.Random) -> bytes:
    """A good job: mostly Vertex job files, every fourth the tutorial's form (converted by the daemon)."""
    pairs = [{"text_input": f"{index} {n}", "output": f"{n + 1}"} for n in range(rng.randint(8, 40))]
    epochs = rng.randint(3, 5)
    if index % 4 == 3:
        return json.dumps({
            "display_name": f"chaos {index}", "base_model": "models/gemini-1.5-flash-001-tuning",
            "tuning_task": {"hyperparameters": {"batch_size": 2, "learning_rate": 0.001, "epoch_count": epochs},
                            "training_data": {"examples": {"examples": pairs}}},
            "orchestrator": {"job_key": f"chaos-{seed}-{index}"},
        }).encode()
    return json.dumps({
        "base_model": "gemini-2.5-flash", "tuned_model_display_name": f"chaos {index}",
        "supervised_tuning_spec": {"hyper_parameters": {"epoch_count": epochs}},
        "orchestrator": {"job_key": f"chaos-{seed}-{index}", "training_examples": pairs},
    }).encode()


def write_key_file(path: Path, token_uri: str, project: str = PROJECT) -> Path:
    """A service-account key file of ``project`` (a fresh RSA key: only its shape matters offline) whose
    tokens come from ``token_uri``, readable by its owner only."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": project, "private_key_id": "chaos", "private_key": pem,
        "client_email": f"chaos@{project}.iam.gserviceaccount.com", "client_id": "1", "token_uri": token_uri,
    }))
    path.chmod(0o600)
    return path


def creates_per_job(creates: Mapping[str, Any]) -> dict[str, int]:
    """Committed creates per orchestrator job id, from ``/_emulator/vertex/creates``."""
    prefix = f"{JOB_LABEL}="
    return {label.removeprefix(prefix): n for label, n in creates.get("by_label", {}).items()
            if label.startswith(prefix)}


def remote_by_job(jobs: list[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The emulator's tuning jobs by the orchestrator job id of their label (the first, when several)."""
    found: dict[str, Mapping[str, Any]] = {}
    for job in jobs:
        owner = job.get("labels", {}).get(JOB_LABEL)
        if owner and owner not in found:
            found[owner] = job
    return found


async def reported_steps(read: Any, job: Mapping[str, Any]) -> set[int]:
    """Every step of the job's ``/train_total_loss`` series, read through the public API (``read(path)``)."""
    remote = await read(f"/v1/{job['name']}")
    experiment = remote.get("experiment")
    if not experiment:
        return set()
    context = await read(f"/v1/{experiment}")
    tensorboard = context.get("metadata", {}).get("backing_tensorboard_resource")
    if not tensorboard:
        return set()
    runs = await read(f"/v1/{tensorboard}/experiments/{experiment.rsplit('/', 1)[-1]}/runs")
    steps: set[int] = set()
    for run in runs.get("tensorboardRuns", []):
        series = await read(f"/v1/{run['name']}/timeSeries")
        for entry in series.get("tensorboardTimeSeries", []):
            if entry.get("displayName") == "/train_total_loss":
                points = await read(f"/v1/{entry['name']}:read?maxDataPoints=100000")
                steps |= {int(v["step"]) for v in points.get("timeSeriesData", {}).get("values", [])}
    return steps
