"""Google Cloud project ids and numbers as the emulator shows them.

Vertex AI answers with the project *number* in resource names even when the request used the project
id (vertex-api.md §3, [med]).  The emulator has no project directory, so a project id's number is
derived from it: 12 digits from its SHA-256, stable across runs and machines, never starting with 0.
A path that already names a number keeps it.  ``project_number`` is public so tests and tools can
predict the names the emulator will answer with.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache


@lru_cache(maxsize=4096)
def project_number(project: str) -> str:
    """The 12-digit number of a project id (a number is returned unchanged)."""
    if project.isdigit():
        return project
    digest = int.from_bytes(hashlib.sha256(project.encode()).digest()[:8], "big")
    return str(100_000_000_000 + digest % 900_000_000_000)


def same_project(first: str, second: str) -> bool:
    """Whether two project references (ids or numbers) name the same project."""
    return project_number(first) == project_number(second)
