"""Webhooks: job endings announced to a URL, signed as Standard Webhooks says, delivered at least once.

The store writes each notification in the transaction of the state change it announces
(:mod:`orchestrator.store.outbox`); here, :mod:`~orchestrator.webhooks.message` turns one into a
signed request and :mod:`~orchestrator.webhooks.sender` delivers it, with retries, on its own task.
(Not to be confused with :mod:`orchestrator.notify`, which speaks systemd's ``sd_notify``.)
"""

from orchestrator.webhooks.message import Signer, WebhookMessage, endpoint_label, load_signer
from orchestrator.webhooks.sender import RetryPolicy, WebhookSender

__all__ = ["RetryPolicy", "Signer", "WebhookMessage", "WebhookSender", "endpoint_label", "load_signer"]
