"""The Vertex AI routes: ``tuningJobs`` create/get/list/cancel and the TensorBoard chain of a job's loss.

Paths are those of ``genai_tuning_service.proto`` on ``/v1`` and ``/v1beta1`` ([high]); a request may name
its project by id or number, answers always carry the number.
"""

from __future__ import annotations

from typing import Final

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.projects import project_number
from orchestrator.emulator.routes import Call, Emulator, Handler, path_regex
from orchestrator.emulator.vertex.jobs import TuningJobs
from orchestrator.emulator.vertex.records import JobFaults, TuningJobRecord
from orchestrator.emulator.vertex.surface import VertexSurface
from orchestrator.emulator.vertex.tensorboard import context_json, read_json, run_json, series_list_json
from orchestrator.emulator.vertex.validation import build_tuning_spec
from orchestrator.emulator.wire import dumps, parse_json_body

VERSIONS: Final = frozenset({"v1", "v1beta1"})
EMPTY: Final = b"{}"
PARENT: Final = "projects/{project}/locations/{location}"
LIST_QUERY: Final = ("pageSize", "pageToken", "filter", "readMask", "orderBy")


def _jobs(emu: Emulator) -> TuningJobs:
    return emu.vertex


def _job(emu: Emulator, call: Call) -> TuningJobRecord:
    params = call.params
    return _jobs(emu).get(project_number(params["project"]), params["location"], params["job"])


async def create(emu: Emulator, call: Call) -> bytes:
    """``POST /{v}/projects/{p}/locations/{l}/tuningJobs``: validate, commit, answer the PENDING TuningJob."""
    spec = build_tuning_spec(parse_json_body(await call.request.read()), emu.storage)
    decision = call.decision
    faults, lag = JobFaults(), 0.0
    if decision is not None:
        faults = JobFaults(
            fail_at=decision.fail_at,
            fail_code=decision.fail_code,
            fail_message=decision.fail_message,
            stall_at=decision.stall_at,
            expire_at=decision.expire_at,
            pause_at=decision.pause_at,
            partial=decision.partial,
        )
        lag = decision.list_lag
    record = _jobs(emu).create(project_number(call.params["project"]), call.params["location"], spec, faults, lag)
    return record.encode(emu.clock.now(), emu.clock)


async def get(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/projects/{p}/locations/{l}/tuningJobs/{id}`` — the poller's hot path."""
    return _job(emu, call).encode(emu.clock.now(), emu.clock)


async def list_jobs(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/projects/{p}/locations/{l}/tuningJobs?pageSize&pageToken&filter``."""
    page, token = _jobs(emu).list_page(
        project_number(call.params["project"]),
        call.params["location"],
        call.page_size(),
        call.query("pageToken", "page_token"),
        call.query("filter", "filter"),
    )
    now = emu.clock.now()
    parts = [record.encode(now, emu.clock) for record in page]
    body = b'{"tuningJobs":[' + b",".join(parts) + b"]" if parts else b"{"
    if token:
        body += (b"," if parts else b"") + b'"nextPageToken":' + dumps(token)
    return body + b"}"


async def cancel(emu: Emulator, call: Call) -> bytes:
    """``POST …/tuningJobs/{id}:cancel`` → ``{}``."""
    record = _job(emu, call)
    await call.request.read()
    _jobs(emu).cancel(record)
    return EMPTY


def _experiment(emu: Emulator, call: Call) -> TuningJobRecord:
    """The job behind an experiment id in this project and location, or 404."""
    params = call.params
    record = _jobs(emu).by_experiment.get(params["experiment"])
    if record is None or record.project != project_number(params["project"]) or record.location != params["location"]:
        context = f"{PARENT.format_map(params)}/metadataStores/default/contexts/{params['experiment']}"
        raise ApiError("NOT_FOUND", f"Context {context} not found.")
    return record


async def get_context(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/projects/{p}/locations/{l}/metadataStores/{store}/contexts/{experiment}``."""
    if call.params["store"] != "default":
        raise ApiError("NOT_FOUND", f"MetadataStore {call.params['store']} not found.")
    return dumps(context_json(_experiment(emu, call), emu.clock))


def _tensorboard_experiment(emu: Emulator, call: Call) -> TuningJobRecord:
    record = _experiment(emu, call)
    if record.tensorboard_id != call.params["tensorboard"]:
        raise ApiError("NOT_FOUND", f"Tensorboard {call.params['tensorboard']} not found.")
    return record


async def list_runs(emu: Emulator, call: Call) -> bytes:
    """``GET …/tensorboards/{tb}/experiments/{experiment}/runs`` → ``{"tensorboardRuns": [...]}``."""
    call.page_size()
    record = _tensorboard_experiment(emu, call)
    return dumps({"tensorboardRuns": [run_json(record, emu.clock)]})


def _run(emu: Emulator, call: Call) -> TuningJobRecord:
    record = _tensorboard_experiment(emu, call)
    if record.job_id != call.params["run"]:
        raise ApiError("NOT_FOUND", f"TensorboardRun {call.params['run']} not found.")
    _jobs(emu).advance(record.project, emu.clock.now())
    return record


async def list_time_series(emu: Emulator, call: Call) -> bytes:
    """``GET …/runs/{run}/timeSeries`` → ``{"tensorboardTimeSeries": [...]}``."""
    call.page_size()
    record = _run(emu, call)
    steps = record.view(emu.clock.now()).steps
    return dumps({"tensorboardTimeSeries": series_list_json(record, emu.clock, steps)})


async def read_time_series(emu: Emulator, call: Call) -> bytes:
    """``GET …/timeSeries/{ts}:read?maxDataPoints=`` → ``{"timeSeriesData": {...}}``."""
    record = _run(emu, call)
    metric = next((name for name, ts in record.series_ids.items() if ts == call.params["series"]), None)
    if metric is None:
        raise ApiError("NOT_FOUND", f"TensorboardTimeSeries {call.params['series']} not found.")
    raw = call.query("maxDataPoints", "max_data_points")
    try:
        max_points = int(raw) if raw else 0
    except ValueError as exc:
        raise ApiError.invalid(f"Invalid value for max_data_points: {raw}", "max_data_points") from exc
    if max_points < 0:
        raise ApiError.invalid("max_data_points must not be negative.", "max_data_points")
    steps = record.view(emu.clock.now()).steps
    return dumps(read_json(record, metric, emu.clock, steps, max_points))


def install_vertex(emu: Emulator) -> None:
    """The Vertex AI route table (the poll route first: it is the hot path)."""
    emu.add_surface("vertex", VertexSurface(emu.auth))

    def add(method: str, path: str, name: str, handler: Handler, query: tuple[str, ...] = ()) -> None:
        emu.add_pattern(
            method, rf"/(?P<version>v1|v1beta1)/{path_regex(path)}", name, VERSIONS, handler, query, "vertex"
        )

    jobs = f"{PARENT}/tuningJobs"
    tensorboard = f"{PARENT}/tensorboards/{{tensorboard}}/experiments/{{experiment}}/runs"
    add("GET", f"{jobs}/{{job}}", "vertex_get", get)
    add("POST", jobs, "vertex_create", create)
    add("GET", jobs, "vertex_list", list_jobs, LIST_QUERY)
    add("POST", f"{jobs}/{{job}}:cancel", "vertex_cancel", cancel)
    add("GET", f"{PARENT}/metadataStores/{{store}}/contexts/{{experiment}}", "vertex_context", get_context)
    add("GET", tensorboard, "vertex_runs", list_runs, LIST_QUERY)
    add("GET", f"{tensorboard}/{{run}}/timeSeries", "vertex_time_series", list_time_series, LIST_QUERY)
    add(
        "GET",
        f"{tensorboard}/{{run}}/timeSeries/{{series}}:read",
        "vertex_read",
        read_time_series,
        ("maxDataPoints", "filter"),
    )
