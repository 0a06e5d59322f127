"""Helpers for the Vertex AI and Cloud Storage tests: requests with a bearer token, datasets, paths."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from orchestrator.emulator.projects import project_number

PROJECT = "my-proj"
LOCATION = "us-central1"
NUMBER = project_number(PROJECT)
PARENT = f"projects/{PROJECT}/locations/{LOCATION}"
BUCKET = "tuning-data"
DATASET = f"gs://{BUCKET}/train.jsonl"


def example(n: int) -> dict[str, Any]:
    """One ``contents`` example: the tutorial's number → next number."""
    return {
        "contents": [
            {"role": "user", "parts": [{"text": str(n)}]},
            {"role": "model", "parts": [{"text": str(n + 1)}]},
        ]
    }


def jsonl(examples: list[dict[str, Any]]) -> bytes:
    """Examples as JSONL bytes."""
    return "".join(json.dumps(item) + "\n" for item in examples).encode()


async def vcall(
    http: aiohttp.ClientSession,
    method: str,
    url: str,
    body: Any = None,
    *,
    token: str | None = "test-token",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One JSON request with a bearer token; returns (status, parsed body or None when empty)."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = json.dumps(body) if body is not None else None
    async with http.request(method, url, data=data, headers=sent) as response:
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None


async def upload(http: aiohttp.ClientSession, base_url: str, name: str, data: bytes, bucket: str = BUCKET) -> Any:
    """A media upload; returns the object resource."""
    url = f"{base_url}/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}"
    async with http.post(url, data=data, headers={"Content-Type": "application/jsonl"}) as response:
        assert response.status == 200, await response.text()
        return await response.json()


def create_body(dataset: str = DATASET, **extra: Any) -> dict[str, Any]:
    """A minimal valid create body."""
    body: dict[str, Any] = {
        "baseModel": "gemini-2.5-flash",
        "supervisedTuningSpec": {"trainingDatasetUri": dataset, "hyperParameters": {"epochCount": 2}},
    }
    body.update(extra)
    return body
