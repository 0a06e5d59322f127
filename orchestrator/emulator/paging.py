"""Page tokens for the list methods: opaque to clients, bound to the query that issued them.

A token names the position after which the next page starts (a creation sequence number) and a
hash of the query (caller, filter, ...), so a token reused with another query is a 400 as in
production, and a page stays correct when items are created or deleted between pages.
"""

from __future__ import annotations

import base64
import hashlib
import json

from orchestrator.emulator.errors import ApiError


def query_hash(*parts: str) -> str:
    """A short digest of the query a token belongs to."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def encode_page_token(position: int, bound_to: str) -> str:
    """The token for the page after ``position`` of the query hashed as ``bound_to``."""
    raw = json.dumps({"at": position, "q": bound_to}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str, bound_to: str) -> int:
    """The position a token names; 400 when it is malformed or was issued for another query."""
    try:
        value = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        position, bound = int(value["at"]), value["q"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ApiError.invalid("Invalid page token.", "page_token") from exc
    if bound != bound_to:
        raise ApiError.invalid("The page token does not match the previous request's parameters.", "page_token")
    return position
