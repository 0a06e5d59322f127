"""Sharing tuned models: the permissions sub-resource and ``:transferOwnership`` (gemini-api.md §3.9).

A principal is what a credential maps to (``KEY=alice@example.com`` makes the key's holder
``alice@example.com``); a USER or GROUP permission names a principal by ``emailAddress``, EVERYONE
names all.  Roles nest (READER ⊂ WRITER ⊂ OWNER): readers may get and poll, writers may also update,
cancel and share, only the owner may delete or transfer ownership, after which the old owner is a
WRITER.  With no credentials configured there is one principal and it owns everything.
"""

from __future__ import annotations

import base64
from typing import Any, Final

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.records import Permission, TunedModelRecord
from orchestrator.emulator.routes import CRUD, Call, Emulator
from orchestrator.emulator.schema import PERMISSION, normalize
from orchestrator.emulator.wire import dumps, parse_json_body, snake_to_camel

GRANTABLE_ROLES: Final = ("WRITER", "READER")
MAX_PAGE_SIZE: Final = 1000
DEFAULT_PAGE_SIZE: Final = 10


def _validate(permission: dict[str, Any]) -> tuple[str, str, str]:
    """(granteeType, emailAddress, role) of a new permission, or 400."""
    grantee = permission.get("granteeType", "GRANTEE_TYPE_UNSPECIFIED")
    email = permission.get("emailAddress", "")
    role = permission.get("role", "ROLE_UNSPECIFIED")
    if grantee == "GRANTEE_TYPE_UNSPECIFIED":
        raise ApiError.invalid("grantee_type is required.", "permission.grantee_type")
    if grantee == "EVERYONE" and email:
        raise ApiError.invalid("email_address must not be set for grantee_type EVERYONE.", "permission.email_address")
    if grantee != "EVERYONE" and "@" not in email:
        raise ApiError.invalid("email_address must be a valid email address.", "permission.email_address")
    _check_role(role)
    return grantee, email, role


def _check_role(role: str) -> None:
    if role == "OWNER":
        raise ApiError.invalid("The OWNER role can only be given with transferOwnership.", "permission.role")
    if role not in GRANTABLE_ROLES:
        raise ApiError.invalid("role is required.", "permission.role")


def _permission(record: TunedModelRecord, call: Call) -> Permission:
    grant = record.permissions.get(call.params["perm"])
    if grant is None:
        raise ApiError("NOT_FOUND", f"Permission {record.name}/permissions/{call.params['perm']} does not exist.")
    return grant


async def create_permission(emu: Emulator, call: Call) -> bytes:
    """``POST /{v}/tunedModels/{id}/permissions`` → the Permission (writers may share)."""
    record = emu.authorize(call, call.params["id"], "WRITER")
    grantee, email, role = _validate(normalize(parse_json_body(await call.request.read()), PERMISSION, "permission"))
    for grant in record.permissions.values():
        if grant.grantee_type == grantee and grant.email_address.lower() == email.lower():
            raise ApiError("ALREADY_EXISTS", f"A permission for this grantee already exists on {record.name}.")
    grant = Permission(emu.registry.random_id(12), grantee, email, role)
    record.permissions[grant.permission_id] = grant
    return dumps(grant.to_json(record.name, int_enums=call.int_enums))


async def list_permissions(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/tunedModels/{id}/permissions?pageSize&pageToken``."""
    record = emu.authorize(call, call.params["id"])
    size = min(call.page_size() or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
    token = call.query("pageToken", "page_token")
    start = 0
    if token:
        try:
            bound, _, offset = base64.urlsafe_b64decode(token.encode() + b"==").decode().partition("\n")
            start = int(offset)
        except ValueError as exc:
            raise ApiError.invalid("Invalid page token.", "page_token") from exc
        if bound != record.name:
            raise ApiError.invalid("Invalid page token.", "page_token")
    grants = list(record.permissions.values())
    page = grants[start : start + size]
    out: dict[str, Any] = {}
    if page:
        out["permissions"] = [grant.to_json(record.name, int_enums=call.int_enums) for grant in page]
    if start + size < len(grants):
        out["nextPageToken"] = base64.urlsafe_b64encode(f"{record.name}\n{start + size}".encode()).decode()
    return dumps(out)


async def get_permission(emu: Emulator, call: Call) -> bytes:
    """``GET /{v}/tunedModels/{id}/permissions/{perm}``."""
    record = emu.authorize(call, call.params["id"])
    return dumps(_permission(record, call).to_json(record.name, int_enums=call.int_enums))


async def patch_permission(emu: Emulator, call: Call) -> bytes:
    """``PATCH …/permissions/{perm}?updateMask=role``: only the role can change."""
    record = emu.authorize(call, call.params["id"], "WRITER")
    grant = _permission(record, call)
    body = normalize(parse_json_body(await call.request.read()), PERMISSION, "permission")
    mask = [snake_to_camel(path.strip()) for path in call.query("updateMask", "update_mask").split(",") if path]
    if not mask:
        mask = ["role"] if "role" in body else []
    if mask != ["role"]:
        raise ApiError.invalid("update_mask must be exactly 'role'.", "update_mask")
    role = body.get("role", "ROLE_UNSPECIFIED")
    _check_role(role)
    grant.role = role
    return dumps(grant.to_json(record.name, int_enums=call.int_enums))


async def delete_permission(emu: Emulator, call: Call) -> bytes:
    """``DELETE …/permissions/{perm}`` → ``{}``."""
    record = emu.authorize(call, call.params["id"], "WRITER")
    del record.permissions[_permission(record, call).permission_id]
    return b"{}"


async def transfer_ownership(emu: Emulator, call: Call) -> bytes:
    """``POST /{v}/tunedModels/{id}:transferOwnership {emailAddress}`` → ``{}``; the old owner becomes WRITER."""
    record = emu.authorize(call, call.params["id"], "OWNER")
    body = parse_json_body(await call.request.read())
    unknown = set(body) - {"emailAddress", "email_address"}
    if unknown:
        name = sorted(unknown)[0]
        raise ApiError.invalid_json(
            f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.', "email_address"
        )
    email = body.get("emailAddress") or body.get("email_address") or ""
    if not isinstance(email, str) or "@" not in email:
        raise ApiError.invalid("email_address must be a valid email address.", "email_address")
    previous = record.owner
    record.owner = email
    for key, grant in list(record.permissions.items()):
        if grant.grantee_type != "EVERYONE" and grant.email_address.lower() == email.lower():
            del record.permissions[key]
    writer = Permission(emu.registry.random_id(12), "USER", previous, "WRITER")
    record.permissions[writer.permission_id] = writer
    emu.registry.owner_changed(record, previous)
    return b"{}"


def install_permissions(emu: Emulator) -> None:
    """The permission routes (v1beta, v1beta3, v1alpha)."""
    page = ("pageSize", "pageToken")
    emu.add("POST", "tunedModels/{id}/permissions", "create_permission", CRUD, create_permission)
    emu.add("GET", "tunedModels/{id}/permissions", "list_permissions", CRUD, list_permissions, page)
    emu.add("GET", "tunedModels/{id}/permissions/{perm}", "get_permission", CRUD, get_permission)
    emu.add("PATCH", "tunedModels/{id}/permissions/{perm}", "patch_permission", CRUD, patch_permission, ("updateMask",))
    emu.add("DELETE", "tunedModels/{id}/permissions/{perm}", "delete_permission", CRUD, delete_permission)
    emu.add("POST", "tunedModels/{id}:transferOwnership", "transfer_ownership", CRUD, transfer_ownership)
