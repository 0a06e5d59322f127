"""Logging: structlog events with stable snake_case names, JSON lines or console, secrets redacted.

Every log call goes through :func:`redact_secrets` first, which blanks fields whose name says they
hold a credential and any registered secret value wherever it appears, so a key cannot reach the
logs even through an exception message (promise 7).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any, TextIO

import structlog

REDACTED = "[redacted]"
SECRET_FIELDS = frozenset(
    {
        "authorization", "x-goog-api-key", "key", "api_key", "access_token", "refresh_token", "token", "password",
        "secret",
    }
)
_secret_values: set[str] = set()


def register_secret(value: str) -> None:
    """Make ``value`` (an API key, a token) unprintable in any log line, record or file from now on."""
    if len(value) >= 8:  # shorter strings would blank innocent text; no real credential is that short
        _secret_values.add(value)


def forget_secret(value: str) -> None:
    """Stop scrubbing ``value``: an OAuth token replaced by a refresh is dead, and a set that grew by one
    token an hour for the life of the process would make every scrub slower."""
    _secret_values.discard(value)


def scrub(text: str) -> str:
    """``text`` with every registered secret replaced."""
    for secret in _secret_values:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _redact(value: Any) -> Any:
    """A value with secrets blanked, looking inside the containers an event may carry."""
    if isinstance(value, str):
        return scrub(value) if _secret_values else value
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    if isinstance(value, Mapping):
        return {k: REDACTED if str(k).lower() in SECRET_FIELDS else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact(v) for v in value]
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: blank secret fields and registered secret values, nested ones too.

    It runs after ``format_exc_info``, so a traceback (whose frames can quote a request's headers)
    is scrubbed as text like any other field.
    """
    for name, value in event_dict.items():
        event_dict[name] = REDACTED if name.lower() in SECRET_FIELDS else _redact(value)
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
            structlog.processors.format_exc_info,
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=True,
    )
    _route_stdlib_warnings(stream)


class _ScrubFilter(logging.Filter):
    """Blanks registered secrets in records of libraries that log through the standard library."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = scrub(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def _route_stdlib_warnings(stream: TextIO) -> None:
    """aiohttp and asyncio log through ``logging``: give their warnings one scrubbed handler."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "orchestrator", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.addFilter(_ScrubFilter())
    handler.orchestrator = True  # type: ignore[attr-defined]
    root.addHandler(handler)
