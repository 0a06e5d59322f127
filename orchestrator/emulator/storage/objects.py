"""Buckets and objects in memory: generations, preconditions, resumable sessions and listing.

A bucket comes into being on the first upload into it (or ``POST /storage/v1/b``); objects are
immutable per generation, and a new upload to a name makes a new generation (the old one is gone:
buckets here are not versioned).  Generations are microsecond wall-clock stamps, strictly increasing,
as production's are.  Everything is single-threaded: only the event loop touches the store.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import quote

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.storage.checksums import crc32c_b64, md5_b64
from orchestrator.emulator.wire import timestamp

DEFAULT_CONTENT_TYPE: Final = "application/octet-stream"
DEFAULT_MAX_RESULTS: Final = 1000
PRECONDITION_FAILED: Final = "At least one of the pre-conditions you specified did not hold."


class StorageError(ApiError):
    """An error in Cloud Storage's JSON API envelope: ``{"error": {code, message, errors: [...]}}``."""

    def __init__(self, http_status: int, message: str, reason: str, location: str | None = None) -> None:
        status = {
            400: "INVALID_ARGUMENT",
            401: "UNAUTHENTICATED",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            409: "ALREADY_EXISTS",
            412: "FAILED_PRECONDITION",
            413: "OUT_OF_RANGE",
            429: "RESOURCE_EXHAUSTED",
        }.get(http_status, "INTERNAL")
        super().__init__(status, message)
        self.http_status = http_status
        self.reason = reason
        self.location = location


def precondition_failed(header: str = "If-Match") -> StorageError:
    """412 ``conditionNotMet``, as for ``ifGenerationMatch`` on a name that has (or lacks) a live object."""
    return StorageError(412, PRECONDITION_FAILED, "conditionNotMet", header)


def no_such_object(bucket: str, name: str) -> StorageError:
    """404 for an object (production's words)."""
    return StorageError(404, f"No such object: {bucket}/{name}", "notFound")


def no_such_bucket() -> StorageError:
    """404 for a bucket (production's words)."""
    return StorageError(404, "The specified bucket does not exist.", "notFound")


def invalid(message: str) -> StorageError:
    """400 ``invalid``."""
    return StorageError(400, message, "invalid")


@dataclass(frozen=True, slots=True)
class Preconditions:
    """``ifGenerationMatch`` / ``ifGenerationNotMatch`` / ``ifMetagenerationMatch`` of one request."""

    generation_match: int | None = None
    generation_not_match: int | None = None
    metageneration_match: int | None = None

    def check(self, live: StoredObject | None) -> None:
        """412 unless the live object (None: no live object) satisfies every condition."""
        generation = live.generation if live is not None else 0
        if self.generation_match is not None and generation != self.generation_match:
            raise precondition_failed()
        if self.generation_not_match is not None and generation == self.generation_not_match:
            raise precondition_failed("If-None-Match")
        if self.metageneration_match is not None and (live is None or live.metageneration != self.metageneration_match):
            raise precondition_failed()


@dataclass(frozen=True, slots=True)
class StoredObject:
    """One generation of an object."""

    bucket: str
    name: str
    data: bytes
    generation: int
    content_type: str
    created: float  #: Unix time
    metadata: tuple[tuple[str, str], ...] = ()
    metageneration: int = 1
    md5: str = ""
    crc32c: str = ""

    @property
    def uri(self) -> str:
        """``gs://bucket/name``."""
        return f"gs://{self.bucket}/{self.name}"

    def resource(self, base_url: str) -> dict[str, Any]:
        """The object resource (``projection=noAcl``), int64 fields as strings."""
        quoted = _quote(self.name)
        made = timestamp(self.created, 3)
        out: dict[str, Any] = {
            "kind": "storage#object",
            "id": f"{self.bucket}/{self.name}/{self.generation}",
            "selfLink": f"{base_url}/storage/v1/b/{self.bucket}/o/{quoted}",
            "mediaLink": f"{base_url}/download/storage/v1/b/{self.bucket}/o/{quoted}"
            f"?generation={self.generation}&alt=media",
            "name": self.name,
            "bucket": self.bucket,
            "generation": str(self.generation),
            "metageneration": str(self.metageneration),
            "contentType": self.content_type,
            "storageClass": "STANDARD",
            "size": str(len(self.data)),
            "md5Hash": self.md5,
            "crc32c": self.crc32c,
            "etag": self.etag,
            "timeCreated": made,
            "updated": made,
            "timeStorageClassUpdated": made,
        }
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @property
    def etag(self) -> str:
        """Production's etag is opaque; this one changes with the generation and metageneration."""
        raw = self.generation.to_bytes(8, "big") + self.metageneration.to_bytes(2, "big")
        return base64.b64encode(raw).decode().rstrip("=")


def _quote(name: str) -> str:
    return quote(name, safe="")


@dataclass(slots=True)
class ResumableSession:
    """A resumable upload in progress: the bytes received so far and, once known, the total size."""

    upload_id: str
    bucket: str
    name: str
    content_type: str
    metadata: tuple[tuple[str, str], ...]
    preconditions: Preconditions
    expected_crc32c: str | None
    expected_md5: str | None
    received: bytearray = field(default_factory=bytearray)
    result: StoredObject | None = None


@dataclass(slots=True)
class BucketRecord:
    """A bucket: its creation time and live objects by name."""

    name: str
    created: float
    objects: dict[str, StoredObject] = field(default_factory=dict)

    def resource(self, project_number: str) -> dict[str, Any]:
        """The bucket resource (``projection=noAcl``)."""
        made = timestamp(self.created, 3)
        return {
            "kind": "storage#bucket",
            "id": self.name,
            "name": self.name,
            "projectNumber": project_number,
            "metageneration": "1",
            "location": "US",
            "storageClass": "STANDARD",
            "etag": "CAE=",
            "timeCreated": made,
            "updated": made,
            "locationType": "multi-region",
        }


class ObjectStore:
    """Every bucket, object and resumable session, plus the upload counts introspection reports."""

    def __init__(self, wall: Callable[[], float] = time.time) -> None:
        self.wall = wall
        self.buckets: dict[str, BucketRecord] = {}
        self.sessions: dict[str, ResumableSession] = {}
        #: Committed uploads per ``gs://bucket/name`` (a witness for "uploaded once").
        self.uploads: Counter[str] = Counter()
        self._last_generation = 0

    def reset(self) -> None:
        """Forget every bucket, object, session and count."""
        self.buckets.clear()
        self.sessions.clear()
        self.uploads.clear()

    # -- buckets -----------------------------------------------------------------------------------

    def bucket(self, name: str) -> BucketRecord:
        """The bucket, or 404."""
        record = self.buckets.get(name)
        if record is None:
            raise no_such_bucket()
        return record

    def ensure_bucket(self, name: str) -> BucketRecord:
        """The bucket, created on first use."""
        check_bucket_name(name)
        record = self.buckets.get(name)
        if record is None:
            record = self.buckets[name] = BucketRecord(name, self.wall())
        return record

    def create_bucket(self, name: str) -> BucketRecord:
        """``POST /storage/v1/b``: a new bucket, 409 when the name is taken."""
        if name in self.buckets:
            raise StorageError(
                409,
                "Your previous request to create the named bucket succeeded and you already own it.",
                "conflict",
            )
        return self.ensure_bucket(name)

    # -- objects -----------------------------------------------------------------------------------

    def _generation(self) -> int:
        stamp = max(int(self.wall() * 1_000_000), self._last_generation + 1)
        self._last_generation = stamp
        return stamp

    def put(
        self,
        bucket: str,
        name: str,
        data: bytes,
        *,
        content_type: str,
        metadata: tuple[tuple[str, str], ...] = (),
        preconditions: Preconditions = Preconditions(),
        expected_crc32c: str | None = None,
        expected_md5: str | None = None,
    ) -> StoredObject:
        """Commit a new generation of ``bucket/name`` (412 on a failed precondition, 400 on a bad checksum)."""
        check_object_name(name)
        record = self.ensure_bucket(bucket)
        preconditions.check(record.objects.get(name))
        crc, md5 = crc32c_b64(data), md5_b64(data)
        if expected_crc32c is not None and expected_crc32c != crc:
            raise invalid(f'Provided CRC32C "{expected_crc32c}" doesn\'t match calculated CRC32C "{crc}".')
        if expected_md5 is not None and expected_md5 != md5:
            raise invalid(f'Provided MD5 hash "{expected_md5}" doesn\'t match calculated MD5 hash "{md5}".')
        stored = StoredObject(
            bucket=bucket,
            name=name,
            data=bytes(data),
            generation=self._generation(),
            content_type=content_type or DEFAULT_CONTENT_TYPE,
            created=self.wall(),
            metadata=metadata,
            md5=md5,
            crc32c=crc,
        )
        record.objects[name] = stored
        self.uploads[stored.uri] += 1
        return stored

    def get(self, bucket: str, name: str, generation: int | None = None) -> StoredObject:
        """The live object (or that generation of it), or 404."""
        stored = self.bucket(bucket).objects.get(name)
        if stored is None or (generation is not None and stored.generation != generation):
            raise no_such_object(bucket, name)
        return stored

    def read_uri(self, uri: str) -> StoredObject | None:
        """The live object a ``gs://bucket/name`` URI names, or None."""
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        record = self.buckets.get(bucket)
        return None if record is None else record.objects.get(name)

    def delete(self, bucket: str, name: str, generation: int | None, preconditions: Preconditions) -> None:
        """Remove the live object (404 when absent, 412 on a failed precondition)."""
        record = self.bucket(bucket)
        stored = self.get(bucket, name, generation)
        preconditions.check(stored)
        del record.objects[name]

    def list(
        self, bucket: str, *, prefix: str, delimiter: str, max_results: int, page_token: str
    ) -> tuple[list[StoredObject], list[str], str | None]:
        """One page of objects in name order, with the ``prefixes`` a delimiter folds them into."""
        record = self.bucket(bucket)
        after = _decode_token(page_token) if page_token else ""
        size = max_results if max_results > 0 else DEFAULT_MAX_RESULTS
        items: list[StoredObject] = []
        prefixes: list[str] = []
        seen_prefixes: set[str] = set()
        last = ""
        for name in sorted(record.objects):
            if not name.startswith(prefix) or (after and name <= after):
                continue
            if len(items) + len(prefixes) >= size:
                return items, prefixes, _encode_token(last)
            last = name
            if delimiter:
                cut = name.find(delimiter, len(prefix))
                if cut >= 0:
                    folded = name[: cut + len(delimiter)]
                    if folded not in seen_prefixes:
                        seen_prefixes.add(folded)
                        prefixes.append(folded)
                    continue
            items.append(record.objects[name])
        return items, prefixes, None

    # -- resumable uploads -------------------------------------------------------------------------

    def start_session(
        self,
        bucket: str,
        name: str,
        *,
        content_type: str,
        metadata: tuple[tuple[str, str], ...],
        preconditions: Preconditions,
        expected_crc32c: str | None,
        expected_md5: str | None,
    ) -> ResumableSession:
        """A new resumable session (preconditions are checked now and again when it completes)."""
        check_object_name(name)
        self.ensure_bucket(bucket)
        preconditions.check(self.buckets[bucket].objects.get(name))
        session = ResumableSession(
            secrets.token_urlsafe(24),
            bucket,
            name,
            content_type,
            metadata,
            preconditions,
            expected_crc32c,
            expected_md5,
        )
        self.sessions[session.upload_id] = session
        return session

    def session(self, upload_id: str) -> ResumableSession:
        """The session, or 404 (an unknown or expired upload id)."""
        session = self.sessions.get(upload_id)
        if session is None:
            raise StorageError(404, "No such upload.", "notFound")
        return session

    def append(self, session: ResumableSession, start: int | None, chunk: bytes, total: int | None) -> None:
        """Add the bytes of a ``Content-Range: bytes START-END/TOTAL`` PUT; commit once all have arrived.

        Bytes the session already holds are skipped (a client retrying a chunk whose answer it lost),
        a gap is refused with the current range (the client resends from there).
        """
        if session.result is not None:
            return
        held = len(session.received)
        if start is not None:
            if start > held:
                return
            session.received += chunk[held - start :]
        if total is not None and len(session.received) > total:
            raise invalid(f"The upload received {len(session.received)} bytes, more than the declared {total}.")
        if total is not None and len(session.received) == total:
            session.result = self.put(
                session.bucket,
                session.name,
                bytes(session.received),
                content_type=session.content_type,
                metadata=session.metadata,
                preconditions=session.preconditions,
                expected_crc32c=session.expected_crc32c,
                expected_md5=session.expected_md5,
            )
            session.received = bytearray()


def check_bucket_name(name: str) -> None:
    """400 for a name Cloud Storage would refuse: 3-63 of ``[a-z0-9._-]`` (222 with dots), alphanumeric ends."""
    ok = 3 <= len(name) <= (222 if "." in name else 63) and name[0].isalnum() and name[-1].isalnum()
    ok = ok and all(ch.islower() or ch.isdigit() or ch in "._-" for ch in name) and name.isascii()
    if not ok:
        raise invalid(f"Invalid bucket name: '{name}'")


def check_object_name(name: str) -> None:
    """400 for an object name Cloud Storage refuses (empty, too long, ``.``/``..``, control characters)."""
    encoded = name.encode("utf-8", errors="surrogatepass")
    if not name or len(encoded) > 1024 or name in (".", "..") or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise invalid("The object name is invalid.")


def _encode_token(name: str) -> str:
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decode_token(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token.encode()).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid("Invalid page token.") from exc
