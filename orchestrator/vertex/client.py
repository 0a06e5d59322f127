"""``VertexClient``: Vertex AI ``tuningJobs``, the TensorBoard reads of their loss, and Cloud Storage uploads.

One method per HTTP call, through the shared :class:`~orchestrator.transport.ApiTransport` (auth,
throttle, error classification, no redirects, no retries), shared by the Vertex API and Cloud Storage
calls, so the ``[api]`` rate limits count both and a 429 from either pauses every call. Resource names
that go into URL paths are checked against their documented shapes first, so a name from a response
can never address some other resource. ``service.VertexTuning`` turns these calls into the
scheduler's lifecycle.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, Final, TypeVar
from urllib.parse import quote, urlsplit

import aiohttp

from orchestrator.config import EMBEDDED_EMULATOR, ApiSettings, VertexSettings
from orchestrator.errors import ConfigError, MalformedResponse, PermanentError
from orchestrator.gemini.auth import Auth, auth_from_settings
from orchestrator.gemini.throttle import Throttle
from orchestrator.transport import ApiTransport, ignore_body, unreported
from orchestrator.vertex.wire import (
    LossPoint,
    StoredObject,
    TuningJobStatus,
    backing_tensorboard,
    loss_points,
    run_names,
    series_name,
    stored_object,
    tuning_job,
    tuning_jobs_page,
)

__all__ = ["VERTEX_SCOPES", "AnonymousBearer", "StorageObject", "VertexClient", "open_vertex_client"]

#: Vertex AI and Cloud Storage both take the cloud-platform scope.
VERTEX_SCOPES: Final = ("https://www.googleapis.com/auth/cloud-platform",)
#: The bearer ``[api] auth = "none"`` sends (see :class:`AnonymousBearer`).
ANONYMOUS_TOKEN: Final = "anonymous"  # noqa: S105 - names no one, a placeholder by design
#: Google's Cloud Storage JSON API.
GOOGLE_STORAGE: Final = "https://storage.googleapis.com"
#: Most list pages read while looking for one job's earlier submission (a loop guard, 100 jobs a page).
MAX_LIST_PAGES: Final = 1000

_SEGMENT: Final = r"[A-Za-z0-9][A-Za-z0-9_.-]*"
_PARENT: Final = rf"projects/{_SEGMENT}/locations/{_SEGMENT}"
_TUNING_JOB: Final = re.compile(rf"{_PARENT}/tuningJobs/{_SEGMENT}")
_EXPERIMENT: Final = re.compile(rf"{_PARENT}/metadataStores/{_SEGMENT}/contexts/{_SEGMENT}")
_TENSORBOARD: Final = re.compile(rf"{_PARENT}/tensorboards/{_SEGMENT}")
_RUN: Final = re.compile(rf"{_PARENT}/tensorboards/{_SEGMENT}/experiments/{_SEGMENT}/runs/{_SEGMENT}")
_SERIES: Final = re.compile(rf"{_RUN.pattern}/timeSeries/{_SEGMENT}")
_BUCKET: Final = re.compile(r"[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]")
_EMPTY_OBJECT: Final = b"{}"
#: The version of the Vertex API the backend speaks.
VERSION: Final = "v1"
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StorageObject:
    """A ``gs://bucket/name`` object."""

    bucket: str
    name: str

    @classmethod
    def from_uri(cls, uri: str) -> StorageObject:
        """``gs://bucket/some/name`` → its bucket and object name."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or not _BUCKET.fullmatch(bucket) or not name:
            raise PermanentError(f"not a gs://BUCKET/OBJECT URI: {uri!r}")
        return cls(bucket, name)

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


class VertexClient:
    """The calls of the Vertex backend; build it with :func:`open_vertex_client`."""

    def __init__(self, http: ApiTransport, api_url: str, storage_url: str, parent: str) -> None:
        self._http = http
        self._api_url = api_url.rstrip("/")
        self._storage_url = storage_url.rstrip("/")
        self.parent = parent

    # -- tuning jobs --------------------------------------------------------------------------

    async def create_tuning_job(self, body: Mapping[str, Any]) -> TuningJobStatus:
        """``POST /v1/{parent}/tuningJobs``: not idempotent (no request id): the caller labels it."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        return await self._vertex("POST", "vertex_create", f"{self.parent}/tuningJobs", tuning_job, body=payload)

    async def get_tuning_job(self, name: str) -> TuningJobStatus:
        """``GET /v1/{name}``."""
        return await self._vertex("GET", "vertex_get", _checked(name, _TUNING_JOB), tuning_job)

    async def list_tuning_jobs(self, filter_text: str) -> list[TuningJobStatus]:
        """Every job ``filter`` matches, following ``nextPageToken`` (bounded, and never in a circle)."""
        found: list[TuningJobStatus] = []
        token, seen = "", set()
        for _page in range(MAX_LIST_PAGES):
            params = {"filter": filter_text, "pageSize": "100"}
            if token:
                params["pageToken"] = token
            jobs, token = await self._vertex("GET", "vertex_list", f"{self.parent}/tuningJobs", tuning_jobs_page,
                                             params=params)
            found.extend(jobs)
            if not token:
                return found
            if token in seen:
                raise MalformedResponse("list tuning jobs: nextPageToken repeats a page already read")
            seen.add(token)
        raise MalformedResponse(f"list tuning jobs: more than {MAX_LIST_PAGES} pages")

    async def cancel_tuning_job(self, name: str) -> None:
        """``POST /v1/{name}:cancel`` with ``{}``: best effort, the job ends at the service's pace."""
        path = f"{_checked(name, _TUNING_JOB)}:cancel"
        await self._vertex("POST", "vertex_cancel", path, ignore_body, body=_EMPTY_OBJECT)

    # -- the loss of a job: experiment → TensorBoard run → time series → points ----------------

    async def tensorboard_of(self, experiment: str) -> str:
        """The TensorBoard backing a job's experiment ("" while it has none)."""
        return await self._vertex("GET", "vertex_context", _checked(experiment, _EXPERIMENT), backing_tensorboard)

    async def runs(self, tensorboard: str, experiment_id: str) -> list[str]:
        """The TensorBoard runs of the experiment."""
        path = f"{_checked(tensorboard, _TENSORBOARD)}/experiments/{_checked(experiment_id, re.compile(_SEGMENT))}/runs"
        return await self._vertex("GET", "vertex_runs", path, run_names)

    async def loss_series(self, run: str) -> str:
        """The run's training-loss time series ("" while it has none)."""
        return await self._vertex("GET", "vertex_time_series", f"{_checked(run, _RUN)}/timeSeries", series_name)

    async def read_loss(self, series: str, *, max_points: int, after_step: int) -> list[LossPoint]:
        """``GET /v1/{series}:read?maxDataPoints=``: the points after ``after_step``, by step."""
        return await self._vertex("GET", "vertex_read", f"{_checked(series, _SERIES)}:read",
                                  partial(loss_points, after_step=after_step),
                                  params={"maxDataPoints": str(max_points)})

    # -- Cloud Storage ------------------------------------------------------------------------

    async def upload_new(self, target: StorageObject, data: bytes, content_type: str) -> StoredObject:
        """Upload ``data`` only if no object has the name (``ifGenerationMatch=0``): 412 when one does."""
        params = {"uploadType": "media", "name": target.name, "ifGenerationMatch": "0"}
        url = f"{self._storage_url}/upload/storage/v1/b/{target.bucket}/o"
        return await self._http.call("POST", "storage_upload", url, stored_object, params=params, body=data,
                                         content_type=content_type)

    async def object_metadata(self, target: StorageObject) -> StoredObject:
        """``GET /storage/v1/b/{bucket}/o/{object}``: the object's metadata (404 when there is none)."""
        url = f"{self._storage_url}/storage/v1/b/{target.bucket}/o/{quote(target.name, safe='')}"
        return await self._http.call("GET", "storage_get", url, stored_object)

    async def _vertex(
        self, method: str, route: str, path: str, parse: Callable[[Any], T], *,
        params: Mapping[str, str] | None = None, body: bytes | None = None,
    ) -> T:
        url = f"{self._api_url}/{VERSION}/{path}"
        return await self._http.call(method, route, url, parse, params=params, body=body)


@asynccontextmanager
async def open_vertex_client(
    api: ApiSettings,
    vertex: VertexSettings,
    api_url: str | None = None,
    *,
    storage_url: str | None = None,
    auth: Auth | None = None,
    throttle: Throttle | None = None,
    on_response: Callable[[str, int | None], None] = unreported,
) -> AsyncIterator[VertexClient]:
    """The client and its session for the lifetime of the block.

    ``api_url`` overrides ``[api] base_url`` (the daemon passes the embedded emulator's URL), and
    ``storage_url`` ``[vertex] storage_url``. An empty storage URL is Google's when the API is Google's
    (a ``*.googleapis.com`` host), else the API's own: an emulator serves Cloud Storage on its port, and
    training data meant for it must never go to Google by default.
    ``throttle`` defaults to one for the ``[api]`` limits (the daemon passes its own, shared with its peers).
    """
    url = api_url or api.base_url
    if url == EMBEDDED_EMULATOR or not url.startswith(("http://", "https://")):
        raise ConfigError("api", "base_url", f"needs an http(s) URL here, not {url!r}")
    storage = storage_url or vertex.storage_url or (GOOGLE_STORAGE if _is_google(url) else url)
    credentials = auth if auth is not None else await _auth(api)
    timeout = aiohttp.ClientTimeout(total=api.timeout or None)
    connector = aiohttp.TCPConnector(limit=api.max_in_flight)
    # One throttle for both: ``[api]`` limits count every request, and a 429 (from either) pauses all.
    throttle = throttle if throttle is not None else Throttle.from_settings(api)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector, raise_for_status=False) as session:
        transport = ApiTransport(session, credentials, throttle, api.timeout, on_response)
        yield VertexClient(transport, url, storage, f"projects/{vertex.project}/locations/{vertex.location}")


class AnonymousBearer:
    """``[api] auth = "none"`` on Vertex: a bearer that names no one, for an emulator that checks none.

    Vertex AI refuses a request without a bearer token outright (the emulator does too, even when it
    checks no tokens); this placeholder carries no credential of anyone's, so Google answers it 401.
    """

    async def headers(self) -> dict[str, str]:
        """The placeholder bearer."""
        return {"authorization": f"Bearer {ANONYMOUS_TOKEN}"}

    async def refresh(self) -> None:
        """Nothing to refresh: a 401 surfaces as ``Unauthenticated``."""

    def __repr__(self) -> str:
        return "AnonymousBearer()"


async def _auth(api: ApiSettings) -> Auth:
    """``[api] auth``: ADC with the cloud-platform scope, or the anonymous placeholder for an emulator."""
    if api.auth == "none":
        return AnonymousBearer()
    return await auth_from_settings(api, scopes=VERTEX_SCOPES)


def _is_google(url: str) -> bool:
    """Whether ``url`` is one of Google's API hosts (``https://…googleapis.com``)."""
    host = urlsplit(url).hostname or ""
    return host == "googleapis.com" or host.endswith(".googleapis.com")


def _checked(name: str, pattern: re.Pattern[str]) -> str:
    if not pattern.fullmatch(name) or ".." in name:
        raise PermanentError(f"not a resource name this call accepts: {name!r}")
    return name
