"""Handlers for each API method; each returns the 200 body or raises ``ApiError``.

They are thin: parsing lives in ``schema``/``wire``, rules in ``validation``, state in ``registry`` and
rendering in ``records``.  The route table at the bottom says which method lives on which API version
(gemini-api.md §2).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from orchestrator.emulator import inference
from orchestrator.emulator.catalog import BASE_MODELS
from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.records import TunedModelRecord
from orchestrator.emulator.routes import (
    ALL,
    CRUD,
    GENERATE_CONTENT,
    GENERATE_TEXT,
    OPERATIONS,
    STREAM_SSE,
    Call,
    Emulator,
)
from orchestrator.emulator.schema import normalize, tuned_model_schema
from orchestrator.emulator.validation import build_create_spec, check_display_name, check_sampling, check_tuned_model_id
from orchestrator.emulator.wire import dumps, parse_json_body, snake_to_camel

EMPTY: Final = b"{}"
MUTABLE: Final = ("displayName", "description", "temperature", "topP", "topK", "readerProjectNumbers")


async def _body(call: Call) -> dict[str, Any]:
    return parse_json_body(await call.request.read())


async def create(emu: Emulator, call: Call) -> bytes:
    """``POST /{v}/tunedModels[?tunedModelId=]``: validate, commit, answer the not-done Operation."""
    model_id = call.query("tunedModelId", "tuned_model_id") or None
    if model_id is not None:
        check_tuned_model_id(model_id)
    model = normalize(await _body(call), tuned_model_schema(call.version))
    spec = build_create_spec(model, call.version, emu.settings, emu.registry.source_base)
    decision = call.decision
    job: dict[str, Any] = {}
    if decision is not None:
        job = {
            "fail_at": decision.fail_at,
            "fail_code": decision.fail_code,
            "fail_message": decision.fail_message,
            "stall_at": decision.stall_at,
        }
    record = emu.registry.create(spec, model_id, call.project, **job)
    return record.encode_operation(record.created, emu.clock, int_enums=call.int_enums, refresh=0.0)


async def get_model(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/tunedModels/{id}``."""
    record = emu.authorize(call, call.params["id"])
    return record.encode_model(emu.clock.now(), emu.clock, int_enums=call.int_enums)


async def list_models(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/tunedModels?pageSize&pageToken&filter``."""
    owner = call.project if emu.auth.enforced else None
    page, token = emu.registry.list_page(
        owner, call.page_size(), call.query("pageToken", "page_token"), call.query("filter", "filter")
    )
    now = emu.clock.now()
    parts = [record.encode_model(now, emu.clock, int_enums=call.int_enums) for record in page]
    body = b'{"tunedModels":[' + b",".join(parts) + b"]" if parts else b"{"
    if token:
        body += (b"," if parts else b"") + b'"nextPageToken":' + dumps(token)
    return body + b"}"


async def patch_model(emu: Emulator, call: Call) -> bytes:
    """``PATCH /{v}/tunedModels/{id}?updateMask=``: only mutable fields; mask derived when absent."""
    record = emu.authorize(call, call.params["id"], "WRITER")
    model = normalize(await _body(call), tuned_model_schema(call.version))
    mask_text = call.query("updateMask", "update_mask")
    if mask_text:
        paths = [snake_to_camel(path.strip()) for path in mask_text.split(",") if path.strip()]
    else:
        paths = [name for name in MUTABLE if name in model]
    for path in paths:
        if path not in MUTABLE or (path == "readerProjectNumbers" and call.version == "v1beta3"):
            raise ApiError.invalid(f"Invalid update mask path '{path}': the field cannot be updated.", "update_mask")
    check_display_name(model.get("displayName", ""))
    check_sampling(model)
    base = record.spec.base
    for path in paths:
        if path == "displayName":
            record.display_name = model.get("displayName", "")
        elif path == "description":
            record.description = model.get("description", "")
        elif path == "temperature":
            record.temperature = model.get("temperature", base.temperature)
        elif path == "topP":
            record.top_p = model.get("topP", base.top_p)
        elif path == "topK":
            record.top_k = model.get("topK", base.top_k)
        else:
            record.reader_project_numbers = tuple(model.get("readerProjectNumbers", ()))
    now = emu.clock.now()
    record.patched = now
    record.revision += 1
    return record.encode_model(now, emu.clock, int_enums=call.int_enums)


async def delete_model(emu: Emulator, call: Call) -> bytes:
    """``DELETE /{v}/tunedModels/{id}`` → ``{}``; training stops and the id is free again."""
    emu.authorize(call, call.params["id"], "OWNER")
    emu.registry.delete(call.params["id"])
    return EMPTY


def _operation(emu: Emulator, call: Call, role: str = "READER") -> TunedModelRecord:
    record = emu.authorize(call, call.params["id"], role)
    if record.operation_id != call.params["op"]:
        raise ApiError.operation_not_found(f"{record.name}/operations/{call.params['op']}")
    return record


async def get_operation(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/tunedModels/{id}/operations/{op}`` — the hot path of every poller."""
    record = _operation(emu, call)
    return record.encode_operation(
        emu.clock.now(), emu.clock, int_enums=call.int_enums, refresh=emu.settings.metadata_refresh_seconds
    )


async def list_operations(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/tunedModels/{id}/operations`` → ``{operations: [the creation op]}``."""
    record = emu.authorize(call, call.params["id"])
    call.page_size()
    op = record.encode_operation(
        emu.clock.now(), emu.clock, int_enums=call.int_enums, refresh=emu.settings.metadata_refresh_seconds
    )
    return b'{"operations":[' + op + b"]}"


async def cancel_operation(emu: Emulator, call: Call) -> bytes:
    """``POST …/operations/{op}:cancel`` → ``{}``; takes effect at the next step boundary."""
    record = _operation(emu, call, "WRITER")
    await call.request.read()
    record.run.request_cancel(emu.clock.now())
    record.revision += 1
    return EMPTY


async def delete_operation(emu: Emulator, call: Call) -> bytes:
    """``DELETE …/operations/{op}`` is not implemented for tuning operations (501, as production)."""
    _operation(emu, call)
    raise ApiError("UNIMPLEMENTED", "Operation is not implemented, or supported, or enabled.")


async def generate(emu: Emulator, call: Call) -> bytes | web.Response:
    """``:generateContent`` / ``:streamGenerateContent`` / ``:generateText`` on a tuned model (the stub)."""
    record = emu.authorize(call, call.params["id"])
    verb = call.request.path.rsplit(":", 1)[1]
    method = "generateText" if verb == "generateText" else "generateContent"
    if record.spec.base.generation_method != method:
        raise ApiError(
            "NOT_FOUND",
            f"{record.name} is not found for API version {call.version}, or is not supported for {verb}. "
            "Call ListModels to see the list of available models and their supported methods.",
        )
    inference.check_ready(record, record.state(emu.clock.now()))
    body = await _body(call)
    if verb == "generateText":
        return dumps(inference.generate_text(record, body))
    answer = dumps(inference.generate_content(record, body))
    if verb == "generateContent":
        return answer
    if call.params_in_query.get("alt") == "sse":
        # Server-sent events, one chunk (the whole answer), as the SDKs request with ?alt=sse.
        return web.Response(body=b"data: " + answer + b"\r\n\r\n", content_type=STREAM_SSE)
    return b"[" + answer + b"]"


async def get_base_model(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/models/{model}``."""
    base = BASE_MODELS.get(f"models/{call.params['model']}")
    if base is None:
        raise ApiError(
            "NOT_FOUND",
            f"models/{call.params['model']} is not found for API version {call.version}, or is not supported "
            "for getModel. Call ListModels to see the list of available models and their supported methods.",
        )
    return dumps(base.to_json())


async def list_base_models(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/models``."""
    return dumps({"models": [base.to_json() for base in BASE_MODELS.values()]})


def install(emu: Emulator) -> None:
    """The route table (the polling route first: it is the hot path)."""
    emu.add("GET", "tunedModels/{id}/operations/{op}", "get_operation", OPERATIONS, get_operation)
    emu.add("POST", "tunedModels", "create", CRUD, create, ("tunedModelId",))
    emu.add("GET", "tunedModels", "list_models", CRUD, list_models, ("pageSize", "pageToken", "filter"))
    emu.add("GET", "tunedModels/{id}", "get_model", CRUD, get_model)
    emu.add("PATCH", "tunedModels/{id}", "patch_model", CRUD, patch_model, ("updateMask",))
    emu.add("DELETE", "tunedModels/{id}", "delete_model", CRUD, delete_model)
    emu.add(
        "GET",
        "tunedModels/{id}/operations",
        "list_operations",
        OPERATIONS,
        list_operations,
        ("pageSize", "pageToken", "filter"),
    )
    emu.add("POST", "tunedModels/{id}/operations/{op}:cancel", "cancel_operation", OPERATIONS, cancel_operation)
    emu.add("DELETE", "tunedModels/{id}/operations/{op}", "delete_operation", OPERATIONS, delete_operation)
    emu.add("POST", "tunedModels/{id}:generateContent", "generate", GENERATE_CONTENT, generate)
    emu.add("POST", "tunedModels/{id}:streamGenerateContent", "generate", GENERATE_CONTENT, generate)
    emu.add("POST", "tunedModels/{id}:generateText", "generate", GENERATE_TEXT, generate)
    emu.add("GET", "models", "list_base_models", ALL, list_base_models, ("pageSize", "pageToken"))
    emu.add("GET", "models/{model}", "get_base_model", ALL, get_base_model)
