"""Giving freed memory back to the operating system after a large, short-lived allocation.

A maximal job file (20 MB of examples) is decoded, parsed and serialized in a worker thread; glibc
keeps what that frees in the thread's own arena, and the writer thread's copies of the body (SQLite
binds and builds its record) then come on top of it: the daemon's peak grew by five times the file.
``malloc_trim`` returns the free memory of every arena at once. Elsewhere (musl, macOS) it does not
exist and this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import cache


@cache
def _malloc_trim() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None


def release_free_memory() -> None:
    """Hand the allocator's free memory back to the system (glibc), or do nothing."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
