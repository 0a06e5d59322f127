"""Logging: structlog events with stable snake_case names, JSON lines or console, secrets redacted.

Every log call goes through :func:`redact_secrets` first, which blanks fields whose name says they
hold a credential and any registered secret value wherever it appears, so a key cannot reach the
logs even through an exception message (promise 7).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset(
    {"authorization", "x-goog-api-key", "key", "api_key", "access_token", "refresh_token", "token", "password", "secret"}
)
_secret_values: set[str] = set()


def register_secret(value: str) -> None:
    """Make ``value`` (an API key, a token) unprintable in any log line from now on."""
    if len(value) >= 8:  # shorter strings would blank innocent text; no real credential is that short
        _secret_values.add(value)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced."""
    for secret in _secret_values:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank secret fields and registered secret values."""
    for name, value in event_dict.items():
        if name.lower() in SECRET_FIELDS:
            event_dict[name] = REDACTED
        elif _secret_values and isinstance(value, str):
            event_dict[name] = scrub(value)
        elif _secret_values and isinstance(value, BaseException):
            event_dict[name] = scrub(f"{type(value).__name__}: {value}")
    return event_dict


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog once for the process: ``fmt`` is auto (console on a TTY), json or console."""
    stream = stream or sys.stderr
    use_console = fmt == "console" or (fmt == "auto" and stream.isatty())
    renderer: Any = structlog.dev.ConsoleRenderer(colors=stream.isatty()) if use_console else (
        structlog.processors.JSONRenderer()
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
