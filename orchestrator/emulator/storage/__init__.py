"""Cloud Storage's JSON API on loopback, enough for tuning datasets and Google's own clients.

``google-cloud-storage`` uses it unmodified with ``STORAGE_EMULATOR_HOST=http://127.0.0.1:PORT`` (it then
sends no credentials: anonymous requests are accepted unless tokens are enforced).  State is in
memory; a bucket is created on its first upload (or by ``POST /storage/v1/b``); buckets are not
versioned, so a new upload replaces the live generation.

Routes (bracketed: the route's name for faults and stats; object names are URL-encoded in paths)
----------------------------------------------------------------------------------------------
* ``POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=`` (body = the bytes),
  ``…?uploadType=multipart`` (``multipart/related``: JSON metadata, then the bytes; ``crc32c``/``md5Hash``
  in the metadata are verified), ``…?uploadType=resumable`` (→ 200 with ``Location``: the session URL)
  [storage_upload]; each takes ``ifGenerationMatch`` (``0``: only if no live object has the name, else
  412 ``conditionNotMet``), ``ifGenerationNotMatch``, ``ifMetagenerationMatch``.
* ``PUT {session URL}`` with ``Content-Range: bytes A-B/N`` (or ``/*``), ``bytes */N`` to ask the status
  [storage_upload_chunk] → 308 with ``Range: bytes=0-K`` until complete, then 200 with the object; a chunk
  that repeats bytes already held is accepted from where the session stands.
* ``GET /storage/v1/b/{bucket}/o/{object}`` (metadata; ``?alt=media`` for the bytes) [storage_get],
  ``GET /download/storage/v1/b/{bucket}/o/{object}?alt=media`` [storage_download] (``Range`` honoured,
  ``x-goog-generation`` and ``x-goog-hash`` sent).
* ``GET /storage/v1/b/{bucket}/o?prefix=&delimiter=&maxResults=&pageToken=`` [storage_list] →
  ``{kind, items, prefixes, nextPageToken}`` in name order.
* ``DELETE /storage/v1/b/{bucket}/o/{object}`` → 204 [storage_delete].
* ``GET /storage/v1/b/{bucket}`` and ``POST /storage/v1/b`` [storage_bucket].

Shapes: the object and bucket resources and the error envelope ``{"error": {code, message, errors:
[{message, domain, reason, locationType?, location?}]}}`` follow the JSON API reference [med]; ids,
etags and upload ids are opaque and the emulator's own [low].  Unknown query parameters are ignored
(Cloud Storage is not behind the strict JSON front end) [low].  An upload request may carry up to
1 GiB (Vertex AI's dataset limit; 413 ``uploadTooLarge`` beyond), bodies are held in memory.
"""
