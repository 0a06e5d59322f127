"""The Cloud Storage JSON API routes: uploads (media, multipart, resumable), reads, listing, deletes.

Thin handlers over ``ObjectStore``; the wire details (multipart bodies, ``Content-Range``, the
``Location`` of a resumable session, ``x-goog-hash``) live here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from orchestrator.emulator.auth import DEFAULT_PROJECT
from orchestrator.emulator.projects import project_number
from orchestrator.emulator.routes import Call, Emulator
from orchestrator.emulator.storage.objects import (
    DEFAULT_CONTENT_TYPE,
    Preconditions,
    StorageError,
    StoredObject,
    invalid,
)
from orchestrator.emulator.storage.surface import StorageSurface
from orchestrator.emulator.wire import dumps

V1: Final = frozenset({"v1"})
JSON_TYPE: Final = "application/json"
#: Largest upload body read in one request: a Vertex AI dataset may be 1 GB, and google-cloud-storage
#: sends up to 100 MiB per resumable chunk (the app-wide 64 MiB limit is for the JSON APIs).
MAX_UPLOAD_BYTES: Final = (1 << 30) + (1 << 20)
_CONTENT_RANGE: Final = re.compile(r"bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)")
_RANGE: Final = re.compile(r"bytes=(\d*)-(\d*)")
_BOUNDARY: Final = re.compile(r'boundary="?([^";]+)"?')


async def read_upload(request: web.Request, limit: int = MAX_UPLOAD_BYTES) -> bytes:
    """The request body, streamed past the app's JSON size limit up to ``limit`` (413 beyond it)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise StorageError(413, f"The upload of {declared} bytes exceeds the emulator's {limit}.", "uploadTooLarge")
    body = bytearray()
    async for block in request.content.iter_chunked(1 << 20):
        body += block
        if len(body) > limit:
            raise StorageError(413, f"The upload exceeds the emulator's {limit} bytes.", "uploadTooLarge")
    return bytes(body)


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _int_param(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise invalid(f"Invalid value for {name}: {raw}") from exc


def _preconditions(query: Mapping[str, str]) -> Preconditions:
    return Preconditions(
        _int_param(query, "ifGenerationMatch"),
        _int_param(query, "ifGenerationNotMatch"),
        _int_param(query, "ifMetagenerationMatch"),
    )


def _json_answer(value: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=dumps(value), content_type=JSON_TYPE, charset="utf-8", headers=headers)


def _metadata_fields(meta: Mapping[str, Any]) -> tuple[str, str, tuple[tuple[str, str], ...], str | None, str | None]:
    """(name, contentType, metadata, crc32c, md5Hash) of an object-resource JSON a client sent."""
    if not isinstance(meta, dict):
        raise invalid("The object metadata is not a JSON object.")
    name = meta.get("name", "")
    content_type = meta.get("contentType", "")
    user = meta.get("metadata") or {}
    if not isinstance(name, str) or not isinstance(content_type, str) or not isinstance(user, dict):
        raise invalid("Invalid object metadata.")
    pairs = tuple(sorted((str(key), str(value)) for key, value in user.items()))
    crc, md5 = meta.get("crc32c"), meta.get("md5Hash")
    return name, content_type, pairs, crc if isinstance(crc, str) else None, md5 if isinstance(md5, str) else None


def parse_multipart(body: bytes, content_type: str) -> tuple[dict[str, Any], bytes, str]:
    """(metadata JSON, media bytes, media content type) of a ``multipart/related`` upload body."""
    found = _BOUNDARY.search(content_type)
    if found is None or not content_type.lower().startswith("multipart/related"):
        raise invalid("A multipart upload needs a multipart/related Content-Type with a boundary.")
    delimiter = b"--" + found.group(1).encode()
    parts = body.split(delimiter)
    # parts[0] is the preamble, parts[-1] the "--" epilogue after the closing delimiter.
    payloads = [part for part in parts[1:] if not part.startswith(b"--")]
    if len(payloads) != 2:
        raise invalid(f"A multipart upload has exactly two parts (metadata, media); this one has {len(payloads)}.")
    sections = []
    for part in payloads:
        part = part.removeprefix(b"\r\n")
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep:
            raise invalid("A multipart part lacks the blank line after its headers.")
        sections.append((head.decode("latin-1"), content.removesuffix(b"\r\n")))
    try:
        metadata = json.loads(sections[0][1] or b"{}")
    except json.JSONDecodeError as exc:
        raise invalid(f"The metadata part is not JSON: {exc.msg}.") from exc
    media_type = DEFAULT_CONTENT_TYPE
    for line in sections[1][0].split("\r\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() == "content-type":
            media_type = value.strip()
    return metadata, sections[1][1], media_type


async def upload(emu: Emulator, call: Call) -> web.Response:
    """``POST /upload/storage/v1/b/{bucket}/o?uploadType=media|multipart|resumable``."""
    query, request, bucket = call.params_in_query, call.request, call.params["bucket"]
    upload_type = query.get("uploadType", "")
    preconditions = _preconditions(query)
    store = emu.storage
    if upload_type == "media":
        name = query.get("name", "")
        if not name:
            raise invalid("Required parameter: name")
        stored = store.put(
            bucket,
            name,
            await read_upload(request),
            content_type=request.headers.get("Content-Type", DEFAULT_CONTENT_TYPE),
            preconditions=preconditions,
        )
        return _json_answer(stored.resource(_base_url(request)))
    if upload_type == "multipart":
        body = await read_upload(request)
        metadata, data, media_type = parse_multipart(body, request.headers.get("Content-Type", ""))
        name, content_type, user, crc, md5 = _metadata_fields(metadata)
        name = name or query.get("name", "")
        if not name:
            raise invalid("Required parameter: name")
        stored = store.put(
            bucket,
            name,
            data,
            content_type=content_type or media_type,
            metadata=user,
            preconditions=preconditions,
            expected_crc32c=crc,
            expected_md5=md5,
        )
        return _json_answer(stored.resource(_base_url(request)))
    if upload_type == "resumable":
        raw = await request.read()
        try:
            metadata = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as exc:
            raise invalid(f"The metadata is not JSON: {exc.msg}.") from exc
        name, content_type, user, crc, md5 = _metadata_fields(metadata)
        name = name or query.get("name", "")
        if not name:
            raise invalid("Required parameter: name")
        session = store.start_session(
            bucket,
            name,
            content_type=content_type or request.headers.get("X-Upload-Content-Type", DEFAULT_CONTENT_TYPE),
            metadata=user,
            preconditions=preconditions,
            expected_crc32c=crc,
            expected_md5=md5,
        )
        location = (
            f"{_base_url(request)}/upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id={session.upload_id}"
        )
        return web.Response(status=200, headers={"Location": location, "X-GUploader-UploadID": session.upload_id})
    raise invalid(f"Invalid upload type: '{upload_type}'. Use media, multipart or resumable.")


async def upload_chunk(emu: Emulator, call: Call) -> web.Response:
    """``PUT /upload/storage/v1/b/{bucket}/o?uploadType=resumable&upload_id=``: a chunk, or a status query."""
    request = call.request
    session = emu.storage.session(call.params_in_query.get("upload_id", ""))
    if session.bucket != call.params["bucket"]:
        raise invalid("The upload id belongs to another bucket.")
    chunk = await read_upload(request)
    header = request.headers.get("Content-Range", "")
    start: int | None = None
    total: int | None = None
    if header:
        found = _CONTENT_RANGE.fullmatch(header.strip())
        if found is None:
            raise invalid(f"Invalid Content-Range: {header}")
        first, last, size = found.groups()
        if first is not None:
            start = int(first)
            if int(last) - start + 1 != len(chunk):
                raise invalid(f"Content-Range {header} does not match the {len(chunk)} bytes sent.")
        elif chunk:
            raise invalid("A Content-Range of bytes */N carries no data.")
        total = None if size == "*" else int(size)
    else:  # a single PUT of the whole object
        start, total = 0, len(chunk)
    emu.storage.append(session, start, chunk, total)
    if session.result is not None:
        return _json_answer(session.result.resource(_base_url(request)))
    held = len(session.received)
    headers = {"Range": f"bytes=0-{held - 1}"} if held else {}
    return web.Response(status=308, headers=headers)


def _media(stored: StoredObject, request: web.Request) -> web.Response:
    """The object's bytes with the headers the Cloud Storage clients read (generation, hashes)."""
    headers = {
        "x-goog-generation": str(stored.generation),
        "x-goog-metageneration": str(stored.metageneration),
        "x-goog-hash": f"crc32c={stored.crc32c},md5={stored.md5}",
        "x-goog-stored-content-length": str(len(stored.data)),
        "x-goog-stored-content-encoding": "identity",
        "ETag": stored.etag,
    }
    data, status = stored.data, 200
    wanted = request.headers.get("Range", "")
    found = _RANGE.fullmatch(wanted.strip()) if wanted else None
    if found is not None and (found.group(1) or found.group(2)) and data:
        first_text, last_text = found.groups()
        if first_text:
            first = int(first_text)
            last = min(int(last_text), len(data) - 1) if last_text else len(data) - 1
        else:
            first, last = max(0, len(data) - int(last_text)), len(data) - 1
        if first >= len(data) or first > last:
            return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
        headers["Content-Range"] = f"bytes {first}-{last}/{len(data)}"
        data, status = data[first : last + 1], 206
    return web.Response(status=status, body=data, content_type=stored.content_type.split(";")[0], headers=headers)


def _generation(call: Call) -> int | None:
    return _int_param(call.params_in_query, "generation")


async def get_object(emu: Emulator, call: Call) -> web.Response:
    """``GET /storage/v1/b/{bucket}/o/{object}``: metadata, or the bytes with ``alt=media``."""
    stored = emu.storage.get(call.params["bucket"], call.params["object"], _generation(call))
    _preconditions(call.params_in_query).check(stored)
    if call.params_in_query.get("alt") == "media":
        return _media(stored, call.request)
    return _json_answer(stored.resource(_base_url(call.request)))


async def download(emu: Emulator, call: Call) -> web.Response:
    """``GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`` (the clients' media path)."""
    stored = emu.storage.get(call.params["bucket"], call.params["object"], _generation(call))
    _preconditions(call.params_in_query).check(stored)
    return _media(stored, call.request)


async def list_objects(emu: Emulator, call: Call) -> web.Response:
    """``GET /storage/v1/b/{bucket}/o?prefix&delimiter&maxResults&pageToken``."""
    query = call.params_in_query
    items, prefixes, token = emu.storage.list(
        call.params["bucket"],
        prefix=query.get("prefix", ""),
        delimiter=query.get("delimiter", ""),
        max_results=_int_param(query, "maxResults") or 0,
        page_token=query.get("pageToken", ""),
    )
    base = _base_url(call.request)
    out: dict[str, Any] = {"kind": "storage#objects"}
    if token:
        out["nextPageToken"] = token
    if prefixes:
        out["prefixes"] = prefixes
    if items:
        out["items"] = [item.resource(base) for item in items]
    return _json_answer(out)


async def delete_object(emu: Emulator, call: Call) -> web.Response:
    """``DELETE /storage/v1/b/{bucket}/o/{object}`` → 204."""
    emu.storage.delete(
        call.params["bucket"], call.params["object"], _generation(call), _preconditions(call.params_in_query)
    )
    return web.Response(status=204)


async def get_bucket(emu: Emulator, call: Call) -> web.Response:
    """``GET /storage/v1/b/{bucket}``."""
    return _json_answer(emu.storage.bucket(call.params["bucket"]).resource(project_number(DEFAULT_PROJECT)))


async def insert_bucket(emu: Emulator, call: Call) -> web.Response:
    """``POST /storage/v1/b?project=`` with ``{"name": ...}``."""
    raw = await call.request.read()
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise invalid(f"The bucket resource is not JSON: {exc.msg}.") from exc
    name = body.get("name") if isinstance(body, dict) else None
    if not isinstance(name, str) or not name:
        raise invalid("Required field: name")
    return _json_answer(emu.storage.create_bucket(name).resource(project_number(DEFAULT_PROJECT)))


#: An object name is the rest of the (decoded) path: names may contain "/".
_OBJECT: Final = r"(?P<object>.+)"
_BUCKET: Final = r"(?P<bucket>[^/]+)"


def install_storage(emu: Emulator) -> None:
    """The Cloud Storage route table (unknown query parameters are ignored, as Cloud Storage does)."""
    emu.add_surface("storage", StorageSurface(emu.auth))
    add = emu.add_pattern
    base = r"/storage/(?P<version>v1)/b"
    add("POST", rf"/upload{base}/{_BUCKET}/o", "storage_upload", V1, upload, None, "storage")
    add("PUT", rf"/upload{base}/{_BUCKET}/o", "storage_upload_chunk", V1, upload_chunk, None, "storage")
    add("GET", rf"{base}/{_BUCKET}/o", "storage_list", V1, list_objects, None, "storage")
    add("GET", rf"{base}/{_BUCKET}/o/{_OBJECT}", "storage_get", V1, get_object, None, "storage")
    add("GET", rf"/download{base}/{_BUCKET}/o/{_OBJECT}", "storage_download", V1, download, None, "storage")
    add("DELETE", rf"{base}/{_BUCKET}/o/{_OBJECT}", "storage_delete", V1, delete_object, None, "storage")
    add("GET", rf"{base}/{_BUCKET}", "storage_bucket", V1, get_bucket, None, "storage")
    add("POST", base, "storage_bucket", V1, insert_bucket, None, "storage")
