"""Sharing: the permissions sub-resource, its validation, and access by role (READER ⊂ WRITER ⊂ OWNER)."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.emulator.conftest import EmulatorFactory, call, tutorial_body

KEYS = ("alice-key=alice@example.com", "bob-key=bob@example.com", "carol-key=carol@example.com")


def as_(who: str) -> dict[str, str]:
    return {"x-goog-api-key": f"{who}-key"}


async def req(
    http: aiohttp.ClientSession, method: str, url: str, who: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with http.request(method, url, json=body, headers=as_(who)) as response:
        return response.status, await response.json()


async def test_permission_crud_and_validation(base_url: str, http: aiohttp.ClientSession) -> None:
    """Permissions: create, list with pages, get, patch the role, delete; EVERYONE grants carry no email."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=shared", tutorial_body())
    perms = f"{base_url}/v1beta/tunedModels/shared/permissions"

    status, grant = await call(
        http, "POST", perms, {"grantee_type": "USER", "email_address": "b@x.io", "role": "READER"}
    )
    assert status == 200
    assert re.fullmatch(r"tunedModels/shared/permissions/[a-z0-9]{12}", grant["name"])
    assert {k: grant[k] for k in ("granteeType", "emailAddress", "role")} == {
        "granteeType": "USER",
        "emailAddress": "b@x.io",
        "role": "READER",
    }
    everyone = (await call(http, "POST", perms, {"granteeType": "EVERYONE", "role": "READER"}))[1]
    assert "emailAddress" not in everyone
    assert (await call(http, "GET", perms))[1] == {"permissions": [grant, everyone]}
    page = (await call(http, "GET", f"{perms}?pageSize=1"))[1]
    assert page["permissions"] == [grant]
    assert (await call(http, "GET", f"{perms}?pageSize=1&pageToken={page['nextPageToken']}"))[1] == {
        "permissions": [everyone]
    }
    path = f"{base_url}/v1beta/{grant['name']}"
    assert (await call(http, "GET", path))[1] == grant
    status, patched = await call(http, "PATCH", f"{path}?updateMask=role", {"role": "WRITER"})
    assert (status, patched["role"]) == (200, "WRITER")
    assert await call(http, "DELETE", path) == (200, {})
    assert (await call(http, "GET", path))[0] == 404


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"role": "READER", "emailAddress": "a@b.c"}, 400),
        ({"granteeType": "USER", "role": "READER"}, 400),
        ({"granteeType": "EVERYONE", "emailAddress": "a@b.c", "role": "READER"}, 400),
        ({"granteeType": "USER", "emailAddress": "a@b.c", "role": "OWNER"}, 400),
        ({"granteeType": "USER", "emailAddress": "a@b.c"}, 400),
        ({"granteeType": "ROBOT", "emailAddress": "a@b.c", "role": "READER"}, 400),
        ({"granteeType": "USER", "emailAddress": "a@b.c", "role": "READER", "extra": 1}, 400),
        ({"granteeType": "GROUP", "emailAddress": "team@b.c", "role": 3}, 200),
    ],
)
async def test_permission_validation(
    base_url: str, http: aiohttp.ClientSession, body: dict[str, Any], status: int
) -> None:
    """A permission needs a grantee type, an email unless EVERYONE, and a grantable role (not OWNER)."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=v", tutorial_body())

    assert (await call(http, "POST", f"{base_url}/v1beta/tunedModels/v/permissions", body))[0] == status


async def test_duplicate_grant_is_409(base_url: str, http: aiohttp.ClientSession) -> None:
    """Granting the same grantee twice is a conflict."""
    await call(http, "POST", f"{base_url}/v1beta/tunedModels?tunedModelId=d", tutorial_body())
    body = {"granteeType": "USER", "emailAddress": "a@b.c", "role": "READER"}
    await call(http, "POST", f"{base_url}/v1beta/tunedModels/d/permissions", body)

    assert (await call(http, "POST", f"{base_url}/v1beta/tunedModels/d/permissions", body))[0] == 409


async def test_roles_decide_access(emulator_factory: EmulatorFactory, http: aiohttp.ClientSession) -> None:
    """READER may read and poll, WRITER may also update and share, only the OWNER may delete or transfer."""
    async with emulator_factory(api_keys=KEYS) as url:
        model = f"{url}/v1beta/tunedModels/m"
        _, op = await req(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=m", "alice", tutorial_body())
        assert (await req(http, "GET", model, "bob"))[0] == 403

        _, grant = await req(
            http,
            "POST",
            f"{model}/permissions",
            "alice",
            {"granteeType": "USER", "emailAddress": "bob@example.com", "role": "READER"},
        )
        assert (await req(http, "GET", model, "bob"))[0] == 200
        assert (await req(http, "GET", f"{url}/v1/{op['name']}", "bob"))[0] == 200
        assert (await req(http, "PATCH", model, "bob", {"description": "x"}))[0] == 403
        assert (await req(http, "POST", f"{url}/v1/{op['name']}:cancel", "bob"))[0] == 403
        _, shared = await req(http, "GET", f"{url}/v1beta/tunedModels?filter=readers:me", "bob")
        assert [m["name"] for m in shared["tunedModels"]] == ["tunedModels/m"]
        assert (await req(http, "GET", f"{url}/v1beta/tunedModels", "bob"))[1] == {}

        await req(http, "PATCH", f"{url}/v1beta/{grant['name']}?updateMask=role", "alice", {"role": "WRITER"})
        assert (await req(http, "PATCH", model, "bob", {"description": "x"}))[0] == 200
        assert (await req(http, "DELETE", model, "bob"))[0] == 403
        assert (await req(http, "POST", f"{model}:transferOwnership", "bob", {"emailAddress": "bob@example.com"}))[
            0
        ] == 403

        await req(http, "POST", f"{model}/permissions", "alice", {"granteeType": "EVERYONE", "role": "READER"})
        assert (await req(http, "GET", model, "carol"))[0] == 200
        _, public = await req(http, "GET", f"{url}/v1beta/tunedModels?filter=readers:everyone", "carol")
        assert [m["name"] for m in public["tunedModels"]] == ["tunedModels/m"]

        transfer = await req(http, "POST", f"{model}:transferOwnership", "alice", {"email_address": "bob@example.com"})
        assert transfer == (200, {})
        _, listed = await req(http, "GET", f"{model}/permissions", "bob")
        assert {(p.get("emailAddress"), p["role"]) for p in listed["permissions"]} == {
            ("alice@example.com", "WRITER"),
            (None, "READER"),
        }
        assert (await req(http, "DELETE", model, "alice"))[0] == 403
        assert (await req(http, "DELETE", model, "bob")) == (200, {})
