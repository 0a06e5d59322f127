"""Rejections as rows: the value objects of the ``rejections`` table and their conversion.

A rejection is the other way a dropped file ends (DESIGN.md, promise 1): the intake records it in the
same step that moves the file to ``spool/rejected/``, and a user may later resubmit a fixed file in
its place, which marks it resolved.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row


@dataclass(frozen=True, slots=True)
class NewRejection:
    """What the intake records for one rejected file."""

    file: str  #: the name as dropped (printable)
    rejected_file: str  #: its name in ``spool/rejected/``
    field: str
    problem: str
    duplicate_of: str | None
    intake_id: str  #: the claim token: a crashed intake finds the row by it


@dataclass(frozen=True, slots=True)
class Rejection:
    """A ``rejections`` row (columns documented in docs/status-db.md)."""

    id: str
    file: str
    rejected_file: str
    field: str
    problem: str
    duplicate_of: str | None
    intake_id: str
    rejected_at: datetime
    resolved_at: datetime | None
    resubmitted_as: str | None

    @property
    def error(self) -> str:
        """The error in words, as ``NAME.error.json`` has it."""
        return f"{self.file}: {self.field}: {self.problem}" if self.field else f"{self.file}: {self.problem}"


def rejection_from_row(row: Row[Any] | Mapping[str, Any]) -> Rejection:
    """A :class:`Rejection` from a ``rejections`` row."""
    values = dict(row._mapping) if isinstance(row, Row) else dict(row)
    return Rejection(**values)


def new_rejection_id() -> str:
    """A short random id users can type, like a job id."""
    return "r" + secrets.token_hex(5)

