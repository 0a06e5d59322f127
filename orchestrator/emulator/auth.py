"""Credentials as production checks them: ``?key=``, ``x-goog-api-key`` or ``Authorization: Bearer``.

With no keys or tokens configured every request is accepted as the single project ``default`` (the
demo and most tests); if ``token_ttl_seconds`` is set, bearer tokens still expire that long after
first use, so a client's token refresh can be exercised.  With some configured, a request must carry
one of them, and each maps to a principal (a project, or an email that permissions can name) that
owns the tuned models it creates; the error bodies are the real ones (gemini-api.md §7.4): 400
``API_KEY_INVALID``, 401 ``CREDENTIALS_MISSING``, 401 ``ACCESS_TOKEN_EXPIRED``, 401 for an unknown
token, and 403 for a tuned model the principal neither owns nor was given a sufficient role on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from orchestrator.emulator.errors import DEFAULT_MESSAGES, SERVICE, ApiError, error_info

DEFAULT_PROJECT: Final = "default"
_MISSING: Final = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_INVALID_KEY: Final = "API key not valid. Please pass a valid API key."


def _mapping(entries: tuple[str, ...]) -> dict[str, str]:
    """``KEY`` or ``KEY=PROJECT`` entries → {credential: project}."""
    out = {}
    for entry in entries:
        secret, _, project = entry.partition("=")
        if secret:
            out[secret.strip()] = project.strip() or DEFAULT_PROJECT
    return out


def invalid_key() -> ApiError:
    """400 INVALID_ARGUMENT ``API_KEY_INVALID`` (yes, 400: that is what production sends)."""
    return ApiError(
        "INVALID_ARGUMENT",
        _INVALID_KEY,
        [
            error_info("API_KEY_INVALID"),
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": _INVALID_KEY},
        ],
    )


def token_expired(method: str = "", service: str = SERVICE) -> ApiError:
    """401 UNAUTHENTICATED for an expired OAuth token."""
    extra = {"method": method} if method else {}
    return ApiError(
        "UNAUTHENTICATED",
        DEFAULT_MESSAGES["UNAUTHENTICATED"],
        [error_info("ACCESS_TOKEN_EXPIRED", service=service, **extra)],
    )


def credentials_missing(method: str = "", service: str = SERVICE) -> ApiError:
    """401 UNAUTHENTICATED for a request without any credential."""
    extra = {"method": method} if method else {}
    return ApiError("UNAUTHENTICATED", _MISSING, [error_info("CREDENTIALS_MISSING", service=service, **extra)])


def permission_denied(name: str) -> ApiError:
    """403 for a tuned model the caller may not access (or not with the role the method needs)."""
    return ApiError("PERMISSION_DENIED", f"You do not have permission to access tuned model {name}")


def bearer_token(query: Mapping[str, str], headers: Mapping[str, str]) -> str:
    """The OAuth token of ``Authorization: Bearer`` or ``?access_token=`` (empty when there is none)."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return query.get("access_token", "").strip()


class Authenticator:
    """Maps a request's credential to a project, or raises the real error for a bad one."""

    def __init__(
        self,
        api_keys: tuple[str, ...],
        tokens: tuple[str, ...],
        token_ttl_seconds: float,
        monotonic: Callable[[], float],
    ) -> None:
        self.keys = _mapping(api_keys)
        self.tokens = _mapping(tokens)
        self.ttl = token_ttl_seconds
        self.monotonic = monotonic
        self.first_seen: dict[str, float] = {}

    @property
    def enforced(self) -> bool:
        """Whether credentials are checked at all."""
        return bool(self.keys or self.tokens)

    def project(self, query: Mapping[str, str], headers: Mapping[str, str], method: str = "") -> str:
        """The calling project; raises ``ApiError`` for a missing, invalid or expired credential."""
        token = bearer_token(query, headers)
        if not self.enforced:
            # Open mode: anything goes, but with a ttl bearer tokens still expire, so a client with a
            # refreshing token source can be tested without configuring tokens.
            if token:
                self._check_expiry(token, method)
            return DEFAULT_PROJECT
        key = query.get("key") or headers.get("x-goog-api-key")
        if key:
            project = self.keys.get(key)
            if project is None:
                raise invalid_key()
            return project
        if token:
            return self.token_principal(token, method)
        raise credentials_missing(method)

    def token_principal(self, token: str, method: str, service: str = SERVICE) -> str:
        """The principal of a bearer token: any token in open mode (``default``), else a listed or issued one."""
        if not self.enforced:
            self._check_expiry(token, method, service)
            return DEFAULT_PROJECT
        project = self.tokens.get(token)
        if project is None:
            raise ApiError("UNAUTHENTICATED", DEFAULT_MESSAGES["UNAUTHENTICATED"])
        self._check_expiry(token, method, service)
        return project

    def issue(self, token: str, principal: str) -> None:
        """Accept ``token`` for ``principal`` from now on (the OAuth token route's grants)."""
        if self.enforced:
            self.tokens[token] = principal

    def _check_expiry(self, token: str, method: str, service: str = SERVICE) -> None:
        """401 ACCESS_TOKEN_EXPIRED once ``ttl`` seconds have passed since the token was first seen."""
        if self.ttl <= 0:
            return
        now = self.monotonic()
        first = self.first_seen.setdefault(token, now)
        if now - first >= self.ttl:
            raise token_expired(method, service)
