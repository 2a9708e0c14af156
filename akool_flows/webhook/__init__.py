"""Akool webhooks: verify, decrypt, store and receive job callbacks.

The crypto and the event model need only pycryptodome and pydantic (core dependencies), so
``from akool_flows.webhook import verify_and_decrypt`` is cheap. The event store
(SQLAlchemy) and the ASGI receiver (Starlette) load on first use and need the ``webhook``
extra: ``pip install 'akool-flows[webhook]'``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from akool_flows.webhook.crypto import build_webhook_body, check_credentials, decrypt, encrypt, sign
from akool_flows.webhook.errors import WebhookVerificationError
from akool_flows.webhook.events import STATE_NAMES, TERMINAL_STATUSES, WebhookEvent
from akool_flows.webhook.verify import parse_body, verify_and_decrypt, verify_and_decrypt_all

if TYPE_CHECKING:
    from akool_flows.webhook.app import create_webhook_app
    from akool_flows.webhook.store import WebhookEventStore

__all__ = [
    "STATE_NAMES",
    "TERMINAL_STATUSES",
    "WebhookEvent",
    "WebhookEventStore",
    "WebhookVerificationError",
    "build_webhook_body",
    "check_credentials",
    "create_webhook_app",
    "decrypt",
    "encrypt",
    "parse_body",
    "sign",
    "verify_and_decrypt",
    "verify_and_decrypt_all",
]

_LAZY = {
    "WebhookEventStore": "akool_flows.webhook.store",
    "create_webhook_app": "akool_flows.webhook.app",
}


def __getattr__(name: str) -> Any:
    # Lazy so DAG parsing and the sandbox never import SQLAlchemy or Starlette for crypto.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'akool_flows.webhook' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
