"""The Cloud Storage JSON API over raw HTTP: the resumable protocol, preconditions, errors, lost uploads."""

from __future__ import annotations

import json

import aiohttp
import pytest

from tests.emulator.conftest import EmulatorFactory
from tests.emulator.vertex_support import BUCKET, upload

UPLOAD = f"/upload/storage/v1/b/{BUCKET}/o"


async def test_resumable_protocol_chunks_status_and_retry(base_url: str, http: aiohttp.ClientSession) -> None:
    """Start → Location; 308 with Range per chunk; a repeated chunk is skipped; the last one commits."""
    start = f"{base_url}{UPLOAD}?uploadType=resumable&ifGenerationMatch=0"
    async with http.post(
        start, data=json.dumps({"name": "dir/a.jsonl"}), headers={"X-Upload-Content-Type": "text/x"}
    ) as r:
        assert r.status == 200
        session = r.headers["Location"]
    assert session.startswith(f"{base_url}{UPLOAD}?uploadType=resumable&upload_id=")
    async with http.put(session, data=b"01234", headers={"Content-Range": "bytes 0-4/*"}) as r:
        assert (r.status, r.headers["Range"]) == (308, "bytes=0-4")
    async with http.put(session, data=b"01234", headers={"Content-Range": "bytes 0-4/*"}) as r:  # a retry
        assert (r.status, r.headers["Range"]) == (308, "bytes=0-4")
    async with http.put(session, headers={"Content-Range": "bytes */*"}) as r:  # status query
        assert (r.status, r.headers["Range"]) == (308, "bytes=0-4")
    async with http.put(session, data=b"56789", headers={"Content-Range": "bytes 5-9/10"}) as r:
        assert r.status == 200
        stored = await r.json()
    assert (stored["name"], stored["size"], stored["contentType"]) == ("dir/a.jsonl", "10", "text/x")
    async with http.put(session, headers={"Content-Range": "bytes */10"}) as r:  # finished: the object again
        assert (r.status, (await r.json())["generation"]) == (200, stored["generation"])
    async with http.get(f"{base_url}/storage/v1/b/{BUCKET}/o/dir%2Fa.jsonl?alt=media") as r:
        assert await r.read() == b"0123456789"
        assert r.headers["x-goog-generation"] == stored["generation"]
    async with http.get(f"{base_url}/_emulator/storage/uploads") as r:
        assert await r.json() == {f"gs://{BUCKET}/dir/a.jsonl": 1}


async def test_precondition_and_not_found_bodies(base_url: str, http: aiohttp.ClientSession) -> None:
    first = await upload(http, base_url, "a.txt", b"one")
    url = f"{base_url}{UPLOAD}?uploadType=media&name=a.txt&ifGenerationMatch=0"
    async with http.post(url, data=b"two") as r:
        assert r.status == 412
        error = (await r.json())["error"]
    assert error["errors"][0]["reason"] == "conditionNotMet" and error["code"] == 412
    url = f"{base_url}{UPLOAD}?uploadType=media&name=a.txt&ifGenerationMatch={first['generation']}"
    async with http.post(url, data=b"two") as r:
        assert r.status == 200 and int((await r.json())["generation"]) > int(first["generation"])
    async with http.get(f"{base_url}/storage/v1/b/{BUCKET}/o/missing") as r:
        assert r.status == 404
        assert (await r.json())["error"]["message"] == f"No such object: {BUCKET}/missing"
    async with http.get(f"{base_url}/storage/v1/b/no-such-bucket/o") as r:
        assert r.status == 404
    async with http.delete(f"{base_url}/storage/v1/b/{BUCKET}/o/a.txt") as r:
        assert r.status == 204
    async with http.delete(f"{base_url}/storage/v1/b/{BUCKET}/o/a.txt") as r:
        assert r.status == 404


async def test_multipart_checksum_is_verified(base_url: str, http: aiohttp.ClientSession) -> None:
    body = (
        b'--b\r\ncontent-type: application/json\r\n\r\n{"name": "c.txt", "crc32c": "AAAAAA=="}\r\n'
        b"--b\r\ncontent-type: text/plain\r\n\r\nhello\r\n--b--"
    )
    url = f"{base_url}{UPLOAD}?uploadType=multipart"
    async with http.post(url, data=body, headers={"Content-Type": 'multipart/related; boundary="b"'}) as r:
        assert r.status == 400
        assert "doesn't match calculated CRC32C" in (await r.json())["error"]["message"]


async def test_upload_landed_but_response_lost(base_url: str, http: aiohttp.ClientSession) -> None:
    rules = {"rules": [{"kind": "lost_response", "routes": ["storage_upload"], "calls": [1]}]}
    async with http.post(f"{base_url}/_emulator/faults", data=json.dumps(rules)) as r:
        assert r.status == 200
    with pytest.raises(aiohttp.ClientError):
        await upload(http, base_url, "d.jsonl", b"{}")
    url = f"{base_url}{UPLOAD}?uploadType=media&name=d.jsonl&ifGenerationMatch=0"
    async with http.post(url, data=b"{}") as r:
        assert r.status == 412  # the retry learns the first attempt landed
    async with http.get(f"{base_url}/_emulator/storage/uploads") as r:
        assert await r.json() == {f"gs://{BUCKET}/d.jsonl": 1}


async def test_anonymous_refused_when_tokens_are_enforced(
    emulator_factory: EmulatorFactory, http: aiohttp.ClientSession
) -> None:
    async with emulator_factory(tokens=("tok",)) as url:
        async with http.get(f"{url}/storage/v1/b/{BUCKET}/o") as r:
            assert r.status == 401
            assert (await r.json())["error"]["errors"][0]["reason"] == "required"
        async with http.get(f"{url}/storage/v1/b/{BUCKET}/o", headers={"Authorization": "Bearer bad"}) as r:
            assert (r.status, (await r.json())["error"]["message"]) == (401, "Invalid Credentials")
        async with http.post(
            f"{url}{UPLOAD}?uploadType=media&name=x", data=b"1", headers={"Authorization": "Bearer tok"}
        ) as r:
            assert r.status == 200


async def test_faults_speak_the_storage_envelope(base_url: str, http: aiohttp.ClientSession) -> None:
    rules = {
        "rules": [
            {"kind": "http_error", "status": 503, "routes": ["storage_list"], "calls": [1]},
            {"kind": "rate_limit", "routes": ["storage_list"], "calls": [2]},
        ]
    }
    async with http.post(f"{base_url}/_emulator/faults", data=json.dumps(rules)) as r:
        assert r.status == 200
    await upload(http, base_url, "a.txt", b"1")
    for expected, reason in ((503, "backendError"), (429, "rateLimitExceeded")):
        async with http.get(f"{base_url}/storage/v1/b/{BUCKET}/o") as r:
            error = (await r.json())["error"]
        assert (r.status, error["code"], error["errors"][0]["reason"]) == (expected, expected, reason)


async def test_an_upload_larger_than_the_json_limit_is_accepted(base_url: str, http: aiohttp.ClientSession) -> None:
    """The app's 64 MiB JSON limit does not apply to uploads (google-cloud-storage sends 100 MiB chunks)."""
    data = b"x" * (65 * 1024 * 1024)
    stored = await upload(http, base_url, "big.bin", data)
    assert stored["size"] == str(len(data))
