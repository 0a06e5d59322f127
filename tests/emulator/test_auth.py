"""Credentials: the three ways to send them and the real error bodies for bad ones."""

from __future__ import annotations

import aiohttp

from tests.emulator.conftest import EmulatorFactory, ManualClock, tutorial_body

KEYS = ("alpha-key=proj-a", "beta-key=proj-b")
TOKENS = ("tok-a=proj-a",)


async def _req(
    http: aiohttp.ClientSession, method: str, url: str, headers: dict[str, str] | None = None, body: object = None
) -> tuple[int, dict[str, object]]:
    async with http.request(method, url, json=body, headers=headers or {}) as response:
        return response.status, await response.json()


async def test_without_configured_keys_anything_is_accepted(base_url: str, http: aiohttp.ClientSession) -> None:
    """Open mode (the demo and most tests): any credential, or none."""
    for headers in ({}, {"x-goog-api-key": "whatever"}, {"Authorization": "Bearer t"}):
        status, _ = await _req(http, "GET", f"{base_url}/v1beta/tunedModels", headers)
        assert status == 200
    status, _ = await _req(http, "GET", f"{base_url}/v1beta/tunedModels?key=anything")
    assert status == 200


async def test_missing_and_invalid_credentials(emulator_factory: EmulatorFactory, http: aiohttp.ClientSession) -> None:
    """Production's bodies: 401 CREDENTIALS_MISSING, 400 API_KEY_INVALID, 401 for an unknown token."""
    async with emulator_factory(api_keys=KEYS, tokens=TOKENS) as url:
        missing = await _req(http, "GET", f"{url}/v1beta/tunedModels")
        bad_key = await _req(http, "GET", f"{url}/v1beta/tunedModels?key=nope")
        bad_token = await _req(http, "GET", f"{url}/v1beta/tunedModels", {"Authorization": "Bearer nope"})
        by_query = await _req(http, "GET", f"{url}/v1beta/tunedModels?key=alpha-key")
        by_header = await _req(http, "GET", f"{url}/v1beta/tunedModels", {"x-goog-api-key": "beta-key"})
        by_token = await _req(http, "GET", f"{url}/v1beta/tunedModels", {"Authorization": "Bearer tok-a"})

    assert missing[0] == 401
    missing_error = missing[1]["error"]
    assert isinstance(missing_error, dict)
    assert missing_error["status"] == "UNAUTHENTICATED"
    assert missing_error["details"][0]["reason"] == "CREDENTIALS_MISSING"
    assert bad_key[0] == 400
    bad_key_error = bad_key[1]["error"]
    assert isinstance(bad_key_error, dict)
    assert bad_key_error["message"] == "API key not valid. Please pass a valid API key."
    assert bad_key_error["details"][0]["reason"] == "API_KEY_INVALID"
    assert bad_token[0] == 401
    assert [by_query[0], by_header[0], by_token[0]] == [200, 200, 200]


async def test_token_expires_after_its_lifetime(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """A configured token expires token_ttl_seconds after first use (401 ACCESS_TOKEN_EXPIRED)."""
    headers = {"Authorization": "Bearer tok-a"}
    async with emulator_factory(tokens=TOKENS, token_ttl_seconds=60.0) as url:
        fresh = await _req(http, "GET", f"{url}/v1beta/tunedModels", headers)
        clock.advance(61.0)
        expired = await _req(http, "GET", f"{url}/v1beta/tunedModels", headers)

    assert fresh[0] == 200
    assert expired[0] == 401
    error = expired[1]["error"]
    assert isinstance(error, dict)
    assert error["details"][0]["reason"] == "ACCESS_TOKEN_EXPIRED"


async def test_models_belong_to_the_creating_project(
    emulator_factory: EmulatorFactory, http: aiohttp.ClientSession
) -> None:
    """Another principal gets 403 on a model it does not own and does not see it listed; ids are global (409)."""
    a, b = {"x-goog-api-key": "alpha-key"}, {"x-goog-api-key": "beta-key"}
    async with emulator_factory(api_keys=KEYS, tokens=TOKENS) as url:
        created = await _req(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=mine", a, tutorial_body())
        same_project = await _req(http, "GET", f"{url}/v1beta/tunedModels/mine", {"Authorization": "Bearer tok-a"})
        other = await _req(http, "GET", f"{url}/v1beta/tunedModels/mine", b)
        other_delete = await _req(http, "DELETE", f"{url}/v1beta/tunedModels/mine", b)
        other_list = await _req(http, "GET", f"{url}/v1beta/tunedModels", b)
        reuse = await _req(http, "POST", f"{url}/v1beta/tunedModels?tunedModelId=mine", b, tutorial_body())

    assert (created[0], same_project[0]) == (200, 200)
    assert other[0] == other_delete[0] == 403
    error = other[1]["error"]
    assert isinstance(error, dict)
    assert error["message"] == "You do not have permission to access tuned model tunedModels/mine"
    assert other_list == (200, {})
    assert reuse[0] == 409


async def test_open_mode_tokens_expire_too(
    emulator_factory: EmulatorFactory, clock: ManualClock, http: aiohttp.ClientSession
) -> None:
    """Without configured tokens any bearer token works, until its lifetime ends; a new one works again."""
    async with emulator_factory(token_ttl_seconds=30.0) as url:
        first = await _req(http, "GET", f"{url}/v1beta/tunedModels", {"Authorization": "Bearer one"})
        clock.advance(31.0)
        expired = await _req(http, "GET", f"{url}/v1beta/tunedModels", {"Authorization": "Bearer one"})
        refreshed = await _req(http, "GET", f"{url}/v1beta/tunedModels", {"Authorization": "Bearer two"})
        keyed = await _req(http, "GET", f"{url}/v1beta/tunedModels?key=k")

    assert [first[0], expired[0], refreshed[0], keyed[0]] == [200, 401, 200, 200]
