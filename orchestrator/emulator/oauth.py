"""``POST /token``: an OAuth 2.0 token endpoint for google-auth's service-account credentials, offline.

A service-account key file whose ``token_uri`` is ``{emulator}/token`` makes google-auth sign a JWT
and post it here with the JWT-bearer grant (RFC 7523); the answer is ``{"access_token", "expires_in",
"token_type"}`` as Google's endpoint gives.  The JWT's signature is **not** verified (the emulator has
no key registry): its claims are only read, to name the principal — the project of the
``…@PROJECT.iam.gserviceaccount.com`` issuer — for which the token is then accepted when tokens are
enforced.  ``expires_in`` is ``token_ttl_seconds`` when set, else 3600.  Errors are OAuth's shape,
``{"error": "invalid_grant", "error_description": …}`` with 400.
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qs

from aiohttp import web

from orchestrator.emulator.auth import DEFAULT_PROJECT
from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.faults import FaultRule
from orchestrator.emulator.routes import Call, Emulator
from orchestrator.emulator.wire import dumps

JWT_BEARER: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
DEFAULT_EXPIRY: Final = 3600
SA_DOMAIN: Final = ".iam.gserviceaccount.com"


class OAuthError(ApiError):
    """An OAuth 2.0 error: ``{"error": code, "error_description": text}``."""

    def __init__(self, code: str, description: str, http_status: int = 400) -> None:
        super().__init__("INVALID_ARGUMENT", description)
        self.http_status = http_status
        self.oauth_code = code


def _claims(assertion: str) -> dict[str, Any]:
    """The JWT's payload, unverified; ``invalid_grant`` when it is not a JWT."""
    parts = assertion.split(".")
    if len(parts) != 3:
        raise OAuthError("invalid_grant", "Invalid JWT: the assertion is not a signed JWT.")
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError) as exc:
        raise OAuthError("invalid_grant", "Invalid JWT: the payload is not JSON.") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("iss"), str):
        raise OAuthError("invalid_grant", "Invalid JWT: no issuer (iss) claim.")
    return payload


def principal_of(issuer: str) -> str:
    """``name@project.iam.gserviceaccount.com`` → ``project`` (any other issuer: the default principal)."""
    _, _, domain = issuer.partition("@")
    return domain.removesuffix(SA_DOMAIN) if domain.endswith(SA_DOMAIN) else DEFAULT_PROJECT


async def token(emu: Emulator, call: Call) -> web.Response:
    """Exchange a JWT-bearer assertion for an access token."""
    form = {key: values[0] for key, values in parse_qs((await call.request.read()).decode("utf-8", "replace")).items()}
    if form.get("grant_type") != JWT_BEARER:
        raise OAuthError("unsupported_grant_type", f"Unsupported grant type: {form.get('grant_type', '')!r}.")
    claims = _claims(form.get("assertion", ""))
    issued = "ya29.emulator-" + secrets.token_urlsafe(24)
    emu.auth.issue(issued, principal_of(claims["iss"]))
    ttl = emu.settings.token_ttl_seconds
    body = {"access_token": issued, "expires_in": int(ttl) if ttl > 0 else DEFAULT_EXPIRY, "token_type": "Bearer"}
    return web.Response(body=dumps(body), content_type="application/json", charset="utf-8")


class OAuthSurface:
    """The token endpoint needs no credential; its errors are OAuth's."""

    def principal(
        self, route: str, params: Mapping[str, str], query: Mapping[str, str], headers: Mapping[str, str]
    ) -> str:
        """Anyone may ask for a token."""
        return DEFAULT_PROJECT

    def fault(self, rule: FaultRule, route: str, params: Mapping[str, str]) -> ApiError:
        """Injected faults as OAuth errors (``temporarily_unavailable`` for 5xx and 429)."""
        if rule.kind == "http_error" and rule.status < 500:
            return OAuthError("invalid_request", rule.message or "Bad request.", rule.status)
        status = 429 if rule.kind == "rate_limit" else rule.status if rule.kind == "http_error" else 503
        return OAuthError("temporarily_unavailable", rule.message or "The service is unavailable.", status)

    def render(self, error: ApiError) -> bytes:
        """``{"error", "error_description"}``."""
        code = error.oauth_code if isinstance(error, OAuthError) else "server_error"
        return dumps({"error": code, "error_description": error.message})


def install_oauth(emu: Emulator) -> None:
    """``POST /token`` (the version group matches nothing: the path has none)."""
    emu.add_surface("oauth", OAuthSurface())
    emu.add_pattern("POST", r"/(?P<version>)token", "oauth_token", frozenset({""}), token, None, "oauth")
