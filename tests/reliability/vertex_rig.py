"""The Vertex backend in the reliability rig: jobs recorded as a Vertex daemon's intake records them, and
the real ``VertexTuning`` over HTTP against the emulator's Vertex AI and Cloud Storage routes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from orchestrator.clock import SystemClock
from orchestrator.config import ApiSettings, VertexSettings
from orchestrator.gemini.auth import Auth
from orchestrator.intake import new_job
from orchestrator.jobs import Job
from orchestrator.store.sql import SqlStore
from orchestrator.vertex.client import open_vertex_client
from orchestrator.vertex.jobfile import parse_vertex_job
from orchestrator.vertex.service import VertexTuning
from tests.reliability.conftest import INSTALLATION

PROJECT = "orchestrator-test"
STAGING = f"gs://{PROJECT}/staging"
#: Real seconds the rig waits for a lost create to be listed (the emulator's list lag is in simulated
#: seconds: ``seconds / TEST_TIME_SCALE`` real ones).
SETTLE = 2.0


def vertex_file(index: int = 0, *, examples: int = 16, epochs: int = 2, **top: Any) -> bytes:
    """A Vertex job file with inline pairs (small: a few training steps on the emulator)."""
    document: dict[str, Any] = {
        "base_model": "gemini-2.5-flash",
        "tuned_model_display_name": f"vertex job {index}",
        "supervised_tuning_spec": {"hyper_parameters": {"epoch_count": epochs}},
        "orchestrator": {
            "job_key": f"vertex-{index}",
            "training_examples": [{"text_input": f"{index}:{i}", "output": str(i + 1)} for i in range(examples)],
        },
    }
    document.update(top)
    return json.dumps(document).encode()


async def add_vertex_job(store: SqlStore, index: int = 0, *, data: bytes | None = None, **file: Any) -> Job:
    """Record a queued Vertex job as a Vertex daemon's intake would."""
    data = data or vertex_file(index, **file)
    spec = parse_vertex_job(data, source=f"vertex-{index}.json")
    new = new_job(spec, hashlib.sha256(data).hexdigest(), len(data), source=f"vertex-{index}.json",
                  intake_id=f"vertex-intake-{index}", installation_id=INSTALLATION)
    return await store.add_job(new, SystemClock().now())


@asynccontextmanager
async def vertex_for(
    url: str, *, credentials: Auth | None = None, settle: float = SETTLE, project: str = PROJECT, **api: Any
) -> AsyncIterator[VertexTuning]:
    """The Vertex service against the emulator at ``url`` (its API and its Cloud Storage).

    ``api`` are ``[api]`` settings (``auth="adc"``); ``credentials`` replaces what they describe.
    """
    api_settings = ApiSettings(**{"backend": "vertex", "timeout": 2.0, **api})
    vertex = VertexSettings(project=project, staging_uri=STAGING, list_settle_seconds=settle)
    async with open_vertex_client(api_settings, vertex, url, storage_url=url, auth=credentials) as client:
        yield VertexTuning(client, STAGING, settle)
