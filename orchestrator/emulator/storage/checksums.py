"""The two checksums Cloud Storage keeps per object: MD5 and CRC32C, base64 of the big-endian digest.

CRC32C (Castagnoli) comes from ``google-crc32c`` when it is installed (C speed; the Cloud Storage
client installs it), else from a table-driven pure-Python loop: correct for any size, and fast enough
for the small JSONL files the emulator is fed outside the test extra.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

_POLY: Final = 0x82F63B78


def _table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE: Final = _table()


def crc32c_pure(data: bytes) -> int:
    """CRC32C of ``data`` without any extension module."""
    crc = 0xFFFFFFFF
    table = _TABLE
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    """CRC32C of ``data``, with the C implementation when available."""
    try:
        import google_crc32c
    except ImportError:
        return crc32c_pure(data)
    return int(google_crc32c.value(data))


def crc32c_b64(data: bytes) -> str:
    """The object resource's ``crc32c``: base64 of the 4-byte big-endian checksum."""
    return base64.b64encode(crc32c(data).to_bytes(4, "big")).decode()


def md5_b64(data: bytes) -> str:
    """The object resource's ``md5Hash``: base64 of the 16-byte digest."""
    return base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
