"""One notification as an HTTP request: the body in the configured format, and its signature.

Signatures follow the Standard Webhooks specification, computed by its reference package
(``standardwebhooks``, MIT, no dependencies): ``webhook-id`` (the notification's id, the same on
every attempt), ``webhook-timestamp`` (this attempt's time, in seconds) and ``webhook-signature``
(``v1,`` + base64 of HMAC-SHA256 over ``id.timestamp.body``). Using the package rather than a dozen
lines of ``hmac`` means the signer and the receivers' verifier are the same code.

The secret is read from the environment variable the config names, once, at start-up. It is
registered with the log scrubber at once, so it cannot reach a log line, a database row or an
error file even through an exception's text; so is the webhook URL (a Slack URL is a credential).
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook
from standardwebhooks.webhooks import EmptyWebhookSecretError

from orchestrator.config import ENV_PREFIX, NotifySettings
from orchestrator.errors import ConfigError
from orchestrator.logs import register_secret

SOURCE = "[notify]"


@dataclass(frozen=True, slots=True)
class WebhookMessage:
    """What one attempt sends: the body and its headers."""

    body: bytes
    headers: Mapping[str, str]


class Signer:
    """Signs bodies with the Standard Webhooks secret (or sends them unsigned when there is none)."""

    def __init__(self, webhook: Webhook | None) -> None:
        self._webhook = webhook

    def headers(self, message_id: str, at: datetime, body: str) -> dict[str, str]:
        """The ``webhook-*`` headers of one attempt."""
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at.timestamp())),
        }
        if self._webhook is not None:
            headers["webhook-signature"] = self._webhook.sign(message_id, at, body)
        return headers


def load_signer(settings: NotifySettings, environ: Mapping[str, str]) -> Signer:
    """The signer ``[notify]`` asks for; a missing or malformed secret is a one-line :class:`ConfigError`.

    The error names the variable, never its value.
    """
    url = urlsplit(settings.webhook_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(SOURCE, "notify.webhook_url", "must be an http:// or https:// URL with a host")
    register_secret(settings.webhook_url)
    name = settings.webhook_secret_env
    if not name:
        if settings.format == "standard":
            raise ConfigError(SOURCE, "notify.webhook_secret_env",
                              "is required with format = \"standard\": the name of the variable holding the secret")
        return Signer(None)
    if name.upper().startswith(ENV_PREFIX):
        raise ConfigError(SOURCE, "notify.webhook_secret_env",
                          f"{name} starts with {ENV_PREFIX}, which names settings: call the secret's variable "
                          "something else, e.g. WEBHOOK_SECRET")
    secret = environ.get(name, "")
    if not secret:
        raise ConfigError(SOURCE, "notify.webhook_secret_env", f"the environment variable {name} is not set")
    register_secret(secret)
    try:
        webhook = Webhook(secret)
    except (binascii.Error, ValueError, EmptyWebhookSecretError):
        raise ConfigError(
            SOURCE, "notify.webhook_secret_env", f"{name} must hold a Standard Webhooks secret: whsec_ + base64"
        ) from None
    return Signer(webhook)


def endpoint_label(url: str) -> str:
    """The URL as logs may show it: scheme, host and port only (a path can hold a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def render(payload_json: str, fmt: str) -> str:
    """The body to send: the stored payload verbatim (``standard``), or a Slack message made from it."""
    if fmt == "standard":
        return payload_json
    return json.dumps({"text": slack_text(json.loads(payload_json))}, separators=(",", ":"))


def _slack_escape(text: str) -> str:
    """Slack's three control characters, escaped as its docs ask (user text must not become a link)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_text(payload: Mapping[str, Any]) -> str:
    """One line for a channel: which job, how it ended, and the outcome's words."""
    data = payload["data"]
    name = _slack_escape(str(data.get("display_name") or data["job_id"]))
    parts = [f"Tuning job *{name}* (`{data['job_id']}`) {data['state']}"]
    if data["state"] == "succeeded" and data.get("tuned_model"):
        parts.append(f": {_slack_escape(data['tuned_model'])}")
        if data.get("final_loss") is not None:
            parts.append(f", final loss {data['final_loss']:.4f}")
    error = data.get("error")
    if error and error.get("message"):
        parts.append(f": {_slack_escape(str(error.get('status') or ''))} {_slack_escape(error['message'])}".rstrip())
    return "".join(parts)
