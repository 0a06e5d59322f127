"""The API routes: one dispatcher that matches the path, applies faults and auth, and calls a handler.

A single catch-all aiohttp route keeps Google's ``resource:verb`` paths (``…/operations/x:cancel``),
the per-version availability of each method and the JSON 404 for unknown paths in one table, and keeps
the per-request path short (the emulator must serve thousands of polls a second).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Protocol

from aiohttp import web

from orchestrator.emulator.auth import Authenticator, permission_denied, token_expired
from orchestrator.emulator.errors import DEFAULT_MESSAGES, HTTP_TO_STATUS, ApiError, resource_exhausted
from orchestrator.emulator.faults import Decision, FaultEngine, FaultRule
from orchestrator.emulator.records import SimClock, TunedModelRecord
from orchestrator.emulator.registry import Registry
from orchestrator.emulator.settings import EmulatorSettings
from orchestrator.emulator.storage.objects import ObjectStore
from orchestrator.emulator.vertex.jobs import TuningJobs
from orchestrator.emulator.wire import camel_to_snake, dumps

LOG: Final = logging.getLogger("orchestrator.emulator")
_NO_QUERY: Final[Mapping[str, str]] = MappingProxyType({})
CRUD: Final = frozenset({"v1beta", "v1beta3", "v1alpha"})
OPERATIONS: Final = frozenset({"v1", "v1beta", "v1beta3", "v1alpha"})
GENERATE_CONTENT: Final = frozenset({"v1", "v1beta", "v1alpha"})
STREAM_SSE: Final = "text/event-stream"
GENERATE_TEXT: Final = frozenset({"v1beta3", "v1beta"})
ALL: Final = frozenset({"v1", "v1beta", "v1beta3", "v1alpha"})
#: Standard Google API system parameters, accepted on every method.
SYSTEM_PARAMETERS: Final = frozenset(
    {
        "key",
        "access_token",
        "oauth_token",
        "alt",
        "$alt",
        "fields",
        "$fields",
        "prettyPrint",
        "$prettyPrint",
        "quotaUser",
        "$quotaUser",
        "callback",
        "$callback",
        "uploadType",
        "upload_protocol",
        "$.xgafv",
        "userIp",
    }
)
JSON_TYPE: Final = "application/json"

#: route name → RPC method, for ErrorInfo metadata.
METHODS: Final = {
    "create": "ModelService.CreateTunedModel",
    "get_model": "ModelService.GetTunedModel",
    "list_models": "ModelService.ListTunedModels",
    "patch_model": "ModelService.UpdateTunedModel",
    "delete_model": "ModelService.DeleteTunedModel",
    "get_operation": "Operations.GetOperation",
    "list_operations": "Operations.ListOperations",
    "cancel_operation": "Operations.CancelOperation",
    "delete_operation": "Operations.DeleteOperation",
    "generate": "GenerativeService.GenerateContent",
    "get_base_model": "ModelService.GetModel",
    "list_base_models": "ModelService.ListModels",
    "create_permission": "PermissionService.CreatePermission",
    "list_permissions": "PermissionService.ListPermissions",
    "get_permission": "PermissionService.GetPermission",
    "patch_permission": "PermissionService.UpdatePermission",
    "delete_permission": "PermissionService.DeletePermission",
    "transfer_ownership": "PermissionService.TransferOwnership",
}


class Surface(Protocol):
    """One Google service the emulator serves (Gemini API, Vertex AI, Cloud Storage).

    Each authenticates in its own way and writes errors in its own envelope; the dispatcher asks the
    route's surface for both, so the fault machinery, counters and introspection stay shared.
    """

    def principal(
        self, route: str, params: Mapping[str, str], query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        """Who is calling (raises ``ApiError`` for a missing, refused or expired credential)."""

    def fault(self, rule: FaultRule, route: str, params: Mapping[str, str]) -> ApiError:
        """The error an injected ``http_error``/``rate_limit``/``token_expired`` fault answers with."""

    def render(self, error: ApiError) -> bytes:
        """The JSON body of an error response."""


@dataclass(slots=True)
class Call:
    """One matched API request, handed to a handler."""

    request: web.Request
    version: str
    params: dict[str, str]
    project: str
    int_enums: bool
    decision: Decision | None
    params_in_query: Mapping[str, str]

    def query(self, camel: str, snake: str) -> str:
        """A query parameter under either spelling (production accepts both)."""
        return self.params_in_query.get(camel) or self.params_in_query.get(snake) or ""

    def page_size(self) -> int:
        """``pageSize``/``page_size`` as an int (400 when not a number)."""
        raw = self.query("pageSize", "page_size")
        try:
            return int(raw) if raw else 0
        except ValueError as exc:
            raise ApiError.invalid(f"Invalid value for page_size: {raw}", "page_size") from exc


#: A handler returns the JSON body of a 200, or a ready response (e.g. a server-sent-event stream).
Handler = Callable[["Emulator", Call], Awaitable[bytes | web.Response]]


@dataclass(frozen=True, slots=True)
class Route:
    """A method + path pattern available on some API versions, belonging to one surface."""

    method: str
    pattern: re.Pattern[str]
    name: str
    versions: frozenset[str]
    handler: Handler
    #: Accepted query parameter names; None accepts any (Cloud Storage ignores unknown ones).
    query: frozenset[str] | None = frozenset()
    surface: str = "gemini"


class Emulator:
    """Everything one emulator instance holds: settings, clock, registry, faults, auth, routes."""

    def __init__(self, settings: EmulatorSettings, clock: SimClock, monotonic: Callable[[], float]) -> None:
        self.settings = settings
        self.clock = clock
        self.registry = Registry(settings, clock)
        self.faults = FaultEngine(settings.faults)
        self.auth = Authenticator(settings.api_keys, settings.tokens, settings.token_ttl_seconds, monotonic)
        self.routes: list[Route] = []
        self.surfaces: dict[str, Surface] = {"gemini": GeminiSurface(self.auth)}
        #: Cloud Storage and Vertex AI state, on the same simulated clock as the Gemini registry.
        self.storage = ObjectStore(lambda: clock.wall(clock.now()))
        self.vertex = TuningJobs(settings, clock)

    def add(
        self,
        method: str,
        path: str,
        name: str,
        versions: frozenset[str],
        handler: Handler,
        query: tuple[str, ...] = (),
    ) -> None:
        """Register ``path`` (``{id}`` segments, optional ``:verb``) under ``/{version}/``.

        ``query`` names the request's own query parameters (camelCase); their snake_case spellings and
        the system parameters are accepted too, anything else is a 400 as in production.
        """
        self.add_pattern(method, rf"/(?P<version>v\w+)/{path_regex(path)}", name, versions, handler, query)

    def add_pattern(
        self,
        method: str,
        regex: str,
        name: str,
        versions: frozenset[str],
        handler: Handler,
        query: tuple[str, ...] | None = (),
        surface: str = "gemini",
    ) -> None:
        """Register a full path regex (with a ``version`` group) on ``surface``; ``query=None`` accepts any."""
        allowed = (
            None if query is None else frozenset(SYSTEM_PARAMETERS | set(query) | {camel_to_snake(q) for q in query})
        )
        self.routes.append(Route(method, re.compile(regex), name, versions, handler, allowed, surface))

    def match(self, method: str, path: str) -> tuple[Route, str, dict[str, str]] | None:
        """The route, API version and path parameters for a request, or None (→ 404)."""
        for route in self.routes:
            if route.method != method:
                continue
            found = route.pattern.fullmatch(path)
            if found is None:
                continue
            params = found.groupdict()
            version = params.pop("version")
            if version in route.versions:
                return route, version, params
        return None

    def add_surface(self, name: str, surface: Surface) -> None:
        """Make a surface available to routes registered with ``surface=name``."""
        self.surfaces[name] = surface

    def authorize(self, call: Call, model_id: str, role: str = "READER") -> TunedModelRecord:
        """The tuned model, after the 404 check and the 403 check for ``role`` (owner or a permission)."""
        record = self.registry.get(model_id)
        if self.auth.enforced and not record.grants(call.project, role):
            raise permission_denied(record.name)
        return record

    # -- the aiohttp handler -------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Entry point for every API request."""
        matched = self.match(request.method, request.path)
        if matched is None:
            error = ApiError("NOT_FOUND", f"The requested URL {request.path} was not found on this server.")
            self.registry.requests["unknown"][str(error.http_status)] += 1
            return _error_response(None, error)
        route, version, params = matched
        surface = self.surfaces[route.surface]
        decision = self.faults.decide(route.name)
        counts = self.registry.requests[route.name]
        try:
            if decision is not None:
                await self._pre_faults(decision, route.name, params, surface)
            _check_query(request, route)
            # Parsing the query string costs a URL object; most polls have none.
            query: Mapping[str, str] = request.query if request.query_string else _NO_QUERY
            project = surface.principal(route.name, params, query, request.headers)
            int_enums = "enum-encoding=int" in query.get("$alt", "")
            call = Call(request, version, params, project, int_enums, decision, query)
            body = await route.handler(self, call)
        except _Dropped:
            counts["dropped"] += 1
            return _drop(request)
        except ApiError as error:
            if decision is not None and decision.lose_response:
                counts["lost"] += 1
                return _drop(request)
            counts[str(error.http_status)] += 1
            return _error_response(surface, error, self.settings.pretty)
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except Exception:  # a bug in the emulator: answer like production's 500, keep the traceback
            LOG.exception("emulator error on %s %s", request.method, request.path)
            counts["500"] += 1
            return _error_response(surface, ApiError("INTERNAL"))
        if decision is not None and decision.lose_response:
            counts["lost"] += 1
            return _drop(request)
        if isinstance(body, web.Response):
            counts[str(body.status)] += 1
            return body
        if decision is not None and decision.mangle is not None:
            counts[decision.mangle] += 1
            return await _mangled(request, body, decision.mangle)
        counts["200"] += 1
        if self.settings.pretty:
            body = json.dumps(json.loads(body), indent=2, ensure_ascii=False).encode()
        return web.Response(body=body, content_type=JSON_TYPE, charset="utf-8")

    async def _pre_faults(self, decision: Decision, route: str, params: Mapping[str, str], surface: Surface) -> None:
        if decision.latency > 0:
            await asyncio.sleep(decision.latency)
        rule = decision.error
        if rule is not None:
            if rule.kind == "drop_connection":
                raise _Dropped
            raise surface.fault(rule, route, params)


def path_regex(path: str) -> str:
    """``a/{id}/b:verb`` → a regex whose ``{id}`` groups match one path segment (no ``/`` or ``:``)."""
    return re.sub(r"\{(\w+)\}", r"(?P<\1>[^/:]+)", re.escape(path).replace(r"\{", "{").replace(r"\}", "}"))


class GeminiSurface:
    """The Gemini API: API keys or bearer tokens (``Authenticator``), Google's JSON error envelope."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def principal(
        self, route: str, params: Mapping[str, str], query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        """The calling project (``default`` when credentials are not checked)."""
        return self.auth.project(query, headers, METHODS[route])

    def fault(self, rule: FaultRule, route: str, params: Mapping[str, str]) -> ApiError:
        """Gemini-flavoured fault errors."""
        return fault_error(rule, METHODS[route])

    def render(self, error: ApiError) -> bytes:
        """``{"error": {code, message, status, details}}``."""
        return dumps(error.body())


def _check_query(request: web.Request, route: Route) -> None:
    """400 for a query parameter the method does not define (ESF cannot bind it)."""
    if not request.query_string or route.query is None:
        return
    for name in request.query:
        if name not in route.query:
            raise ApiError.invalid(
                f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
                f"Field '{name}' could not be found in request message.",
                "",
            )


class _Dropped(Exception):
    """Internal: the request is to end without a response."""


def fault_error(rule: FaultRule, method: str) -> ApiError:
    """The error body an injected fault answers with."""
    if rule.kind == "rate_limit":
        return resource_exhausted(retry_delay=rule.retry_delay_seconds, message=rule.message)
    if rule.kind == "token_expired":
        return token_expired(method)
    status = HTTP_TO_STATUS.get(rule.status, "UNKNOWN")
    error = ApiError(status, rule.message or DEFAULT_MESSAGES.get(status))
    error.http_status = rule.status
    return error


def _error_response(surface: Surface | None, error: ApiError, pretty: bool = False) -> web.Response:
    body = surface.render(error) if surface is not None else dumps(error.body())
    if pretty:
        body = json.dumps(json.loads(body), indent=2, ensure_ascii=False).encode()
    return web.Response(status=error.http_status, body=body, content_type=JSON_TYPE, charset="utf-8")


async def _mangled(request: web.Request, body: bytes, how: str) -> web.StreamResponse:
    """A 200 whose body is cut in half: as a complete (malformed) document, or truncated in transit."""
    half = body[: max(1, len(body) // 2)]
    if how == "malformed":
        return web.Response(body=half, content_type=JSON_TYPE, charset="utf-8")
    response = web.StreamResponse(status=200)
    response.content_type, response.charset = JSON_TYPE, "utf-8"
    response.content_length = len(body)
    await response.prepare(request)
    await response.write(half)
    return _drop(request)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without writing a response (what a client sees as a reset)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise web.HTTPException(reason="dropped")
