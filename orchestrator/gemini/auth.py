"""Credentials for the Gemini API behind one small protocol: request headers, and a refresh after a 401.

Three sources (gemini-api.md §1.2): none (the emulator), an API key sent as ``x-goog-api-key`` (never as
``?key=``, which would put it in every URL, log line and proxy record), and Application Default
Credentials through google-auth. Secrets live in private attributes only: no ``repr``, ``str``, log
event or exception text of this module contains a key or a token (promise 7).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

import google.auth
import structlog
from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError

from orchestrator.config import ApiSettings
from orchestrator.errors import ConfigError, TransientError, Unauthenticated
from orchestrator.logs import forget_secret, register_secret

__all__ = ["ADC_SCOPES", "AdcAuth", "ApiKeyAuth", "Auth", "NoAuth", "auth_from_settings"]

#: What the tuning tutorial asks ADC for; create and cancel need ``generative-language.tuning``.
ADC_SCOPES: Final = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/generative-language.tuning",
)

_log = structlog.get_logger(__name__)


def _default_transport() -> Any:
    """google-auth's ``requests`` transport, imported only when ADC is used (it costs 0.13 s of start-up)."""
    try:
        from google.auth.transport.requests import Request
    except ImportError:  # google-auth without its ``requests`` extra: the stdlib adapter it uses itself
        from google.auth.transport._http_client import Request  # type: ignore[assignment]
    return Request()


class Auth(Protocol):
    """A credential source the client asks for headers before each request."""

    async def headers(self) -> dict[str, str]:
        """Headers that authenticate one request (a fresh dict the caller may keep)."""
        ...

    async def refresh(self) -> None:
        """Called after a 401: get a new credential if this source can."""
        ...


class NoAuth:
    """No credential: the embedded emulator and tests."""

    async def headers(self) -> dict[str, str]:
        """No headers."""
        return {}

    async def refresh(self) -> None:
        """Nothing to refresh; a second 401 then surfaces as ``Unauthenticated``."""

    def __repr__(self) -> str:
        return "NoAuth()"


class ApiKeyAuth:
    """An API key, read once from the environment and sent as ``x-goog-api-key``."""

    __slots__ = ("_env_var", "_key")

    def __init__(self, key: str, *, env_var: str = "") -> None:
        self._key = key
        self._env_var = env_var
        register_secret(key)

    @classmethod
    def from_env(cls, env_var: str, environ: Mapping[str, str] | None = None) -> ApiKeyAuth:
        """The key in ``env_var``, else in the file ``<env_var>_FILE`` names; a :class:`ConfigError` otherwise.

        The file form keeps the key out of the process environment: a Docker secret
        (``/run/secrets/NAME``) or a systemd credential (``LoadCredential=``, ``%d/NAME``) readable by
        the daemon alone.
        """
        variables = os.environ if environ is None else environ
        key = variables.get(env_var, "").strip()
        file_var = f"{env_var}_FILE"
        if not key and variables.get(file_var, "").strip():
            path = variables[file_var].strip()
            try:
                with open(path, encoding="utf-8") as handle:
                    key = handle.read(4096).strip()
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "it is not UTF-8 text"
                raise ConfigError("environment", file_var, f"names {path!r}, which cannot be read: {reason}") from None
            if not key:
                raise ConfigError("environment", file_var, f"names {path!r}, which is empty; it must hold the API key")
            return cls(key, env_var=file_var)
        if not key:
            raise ConfigError(
                "environment", env_var, f"is not set or empty (nor is {file_var}); it must hold the Gemini API key"
            )
        return cls(key, env_var=env_var)

    async def headers(self) -> dict[str, str]:
        """The key header."""
        return {"x-goog-api-key": self._key}

    async def refresh(self) -> None:
        """A key cannot be refreshed: the retried request fails the same way and is reported."""

    def __repr__(self) -> str:
        source = f"env_var={self._env_var!r}, " if self._env_var else ""
        return f"ApiKeyAuth({source}key=<redacted>)"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        # Pickling would carry the key out of the process in clear; nothing of ours needs it.
        raise TypeError("ApiKeyAuth holds a secret and cannot be pickled")


class AdcAuth:
    """google-auth credentials (ADC, service account, gcloud user), refreshed off the event loop.

    google-auth's ``refresh()`` blocks on HTTP, so it runs in a thread, under a lock, with a re-check:
    a thousand requests that find the token expired (or get a 401) at once cause one refresh.
    ``credentials`` is any google-auth ``Credentials``; ``transport`` a google-auth transport request.
    """

    def __init__(self, credentials: Any, *, quota_project: str = "", transport: Any = None) -> None:
        self._credentials = credentials
        self._quota_project = quota_project or getattr(credentials, "quota_project_id", None) or ""
        self._transport = transport if transport is not None else _default_transport()
        self._lock = asyncio.Lock()
        self._scrubbed = ""  # the token registered for scrubbing: only the live one is kept

    @classmethod
    async def load(cls, quota_project: str = "", scopes: Sequence[str] = ADC_SCOPES) -> AdcAuth:
        """Application Default Credentials with ``scopes`` (the lookup may block: in a thread).

        ADC is ``GOOGLE_APPLICATION_CREDENTIALS`` (a service-account key file, or any credential
        file gcloud writes), then gcloud's own login, then the metadata server on Google Cloud.
        """
        try:
            credentials, _project = await asyncio.to_thread(google.auth.default, scopes=list(scopes))
        except DefaultCredentialsError as exc:
            raise ConfigError("api", "auth", f"adc: no application default credentials: {exc}") from None
        return cls(credentials, quota_project=quota_project)

    async def headers(self) -> dict[str, str]:
        """``authorization: Bearer …`` (refreshed first when missing or about to expire), quota project."""
        if not self._credentials.valid:
            await self._refresh(stale_token=self._credentials.token)
        token = self._credentials.token
        if isinstance(token, str) and token != self._scrubbed:
            register_secret(token)
            if self._scrubbed:
                forget_secret(self._scrubbed)
            self._scrubbed = token
        headers = {"authorization": f"Bearer {token}"}
        if self._quota_project:
            headers["x-goog-user-project"] = self._quota_project
        return headers

    async def refresh(self) -> None:
        """After a 401: replace the token, unless another caller replaced it meanwhile."""
        await self._refresh(stale_token=self._credentials.token)

    async def _refresh(self, stale_token: object) -> None:
        async with self._lock:
            # The re-check: whoever held the lock before us may already have replaced the token.
            if self._credentials.token != stale_token and self._credentials.valid:
                return
            try:
                await asyncio.to_thread(self._credentials.refresh, self._transport)
            except RefreshError as exc:
                # google-auth messages can quote the token endpoint's body; keep the type only.
                raise Unauthenticated(f"credential refresh was refused ({type(exc).__name__})") from None
            except TransportError as exc:
                raise TransientError(
                    f"credential refresh could not reach the token server ({type(exc).__name__})"
                ) from None
            _log.info("api_credentials_refreshed")

    def __repr__(self) -> str:
        return f"AdcAuth(credentials={type(self._credentials).__name__}, quota_project={self._quota_project!r})"

    __str__ = __repr__


async def auth_from_settings(
    settings: ApiSettings, environ: Mapping[str, str] | None = None, *, scopes: Sequence[str] = ADC_SCOPES
) -> Auth:
    """The credential source ``[api] auth`` names; ``scopes`` are the OAuth scopes ADC asks for."""
    if settings.auth == "api_key":
        return ApiKeyAuth.from_env(settings.api_key_env, environ)
    if settings.auth == "adc":
        return await AdcAuth.load(settings.quota_project, scopes)
    return NoAuth()
