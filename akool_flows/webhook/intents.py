"""A create's own callback path: ``<receiver URL>/<intent key>.<hmac>``.

When a create's answer is lost (a kill, a dropped connection), its job still exists and Akool
still calls back; the path names which create it was, so the receiver records (intent key ->
job id) and the run that lost the answer attaches that job instead of paying again.

The HMAC is keyed by the account's clientSecret: the receiver holds it anyway (it is the AES
key of Akool's callbacks), so any receiver of this account (``akool-flows webhook serve``, the
Airflow plugin) can check a path that any sender (operator, batch engine, CLI) issued, and
nobody without the secret can forge one. Pure functions, no Starlette: the batch engine and
the operators import this without the ``webhook`` extra.
"""

from __future__ import annotations

import hashlib
import hmac
import re

__all__ = ["intent_path", "intent_url", "verify_intent"]

_INTENT_KEY_RE = re.compile(r"[A-Za-z0-9_-]{8,96}")
_INTENT_MAC_CHARS = 32


def _intent_mac(intent_key: str, client_secret: str) -> str:
    # A key of its own, derived from the secret, so these MACs are useless for anything else.
    key = hashlib.sha256(b"akool-flows webhook intent\0" + client_secret.encode("utf-8")).digest()
    return hmac.new(key, intent_key.encode("ascii"), hashlib.sha256).hexdigest()[:_INTENT_MAC_CHARS]


def intent_path(intent_key: str, client_secret: str) -> str:
    """The path segment that names one create: ``<intent key>.<hmac>``."""
    if not isinstance(intent_key, str) or not _INTENT_KEY_RE.fullmatch(intent_key):
        raise ValueError("intent_key must be 8-96 characters from A-Z a-z 0-9 _ -")
    return f"{intent_key}.{_intent_mac(intent_key, client_secret)}"


def intent_url(webhook_url: str, intent_key: str, client_secret: str) -> str:
    """The receiver URL for one create's callbacks (send it as that create's ``webhookUrl``)."""
    return f"{webhook_url.rstrip('/')}/{intent_path(intent_key, client_secret)}"


def verify_intent(segment: str, client_secret: str) -> str | None:
    """The intent key of a genuine ``<key>.<hmac>`` segment, else None (constant-time check)."""
    key, _, mac = segment.rpartition(".")
    if not _INTENT_KEY_RE.fullmatch(key) or len(mac) != _INTENT_MAC_CHARS:
        return None
    return key if hmac.compare_digest(mac.encode(), _intent_mac(key, client_secret).encode()) else None
