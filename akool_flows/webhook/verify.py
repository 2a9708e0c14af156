"""Verifying an Akool webhook body: strict JSON, the signature, the timestamp window, then
decryption into a `WebhookEvent` (the primitives are `webhook.crypto`).

The signature contains no secret: it proves the body was not altered in transit, not who sent
it. A verified event is "well-formed"; origin rests on the receiver's other rules.
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Mapping
from typing import Any

from akool_flows.webhook.crypto import check_credentials, decrypt_readings, json_object, sign, strict_json_loads
from akool_flows.webhook.errors import WebhookVerificationError
from akool_flows.webhook.events import WebhookEvent

__all__ = ["parse_body", "verify_and_decrypt", "verify_and_decrypt_all"]

_SIGNATURE_RE = re.compile(r"[0-9a-fA-F]{40}")
_DIGITS_RE = re.compile(r"[0-9]{1,19}")
_MAX_NONCE_LEN = 128


def parse_body(body: Mapping[str, Any] | bytes | bytearray | str) -> dict[str, Any]:
    """Parse a webhook HTTP body strictly into a dict, or raise ``WebhookVerificationError``."""
    if isinstance(body, Mapping):
        return dict(body)
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookVerificationError("body is not UTF-8") from None
    if not isinstance(body, str):
        raise WebhookVerificationError("body is not JSON")
    try:
        parsed = strict_json_loads(body)
    except (ValueError, RecursionError):
        raise WebhookVerificationError("body is not JSON") from None
    if not isinstance(parsed, dict):
        raise WebhookVerificationError("body is not a JSON object")
    return parsed


def _field_timestamp(value: Any) -> tuple[str, int]:
    if isinstance(value, bool):
        raise WebhookVerificationError("timestamp is not an integer")
    if isinstance(value, int):
        if not 0 <= value < 10**19:
            raise WebhookVerificationError("timestamp is out of range")
        return str(value), value
    if isinstance(value, str) and _DIGITS_RE.fullmatch(value):
        return value, int(value)
    raise WebhookVerificationError("timestamp is not an integer")


def _field_nonce(value: Any) -> str:
    if isinstance(value, bool):
        raise WebhookVerificationError("nonce is not a string or integer")
    if isinstance(value, int):
        if not -(10**19) < value < 10**19:
            raise WebhookVerificationError("nonce is out of range")
        return str(value)
    if isinstance(value, str) and 0 < len(value) <= _MAX_NONCE_LEN and value.isprintable():
        return value
    raise WebhookVerificationError("nonce is not a string or integer")


def verify_and_decrypt(
    body: Mapping[str, Any] | bytes | bytearray | str,
    client_id: str,
    client_secret: str,
    *,
    max_age_ms: int | None = None,
    now_ms: int | None = None,
    iv_pad: bytes | None = None,
) -> WebhookEvent:
    """Verify an Akool webhook body and return its decrypted, normalised event.

    Order of checks: strict JSON shape, then the signature (constant-time compare), then
    the timestamp window (when ``max_age_ms`` is given: ``|now - timestamp| <= max_age_ms``,
    so far-future timestamps fail too), and only then base64, AES, padding, UTF-8, JSON
    and the event's job id and status. Any failure raises ``WebhookVerificationError``; an
    unusable client_id/client_secret raises ``ValueError`` (configuration, not the body).

    For a clientId shorter than 16 bytes see :func:`verify_and_decrypt_all`.
    """
    return verify_and_decrypt_all(
        body, client_id, client_secret, max_age_ms=max_age_ms, now_ms=now_ms, iv_pad=iv_pad
    )[0]


def verify_and_decrypt_all(
    body: Mapping[str, Any] | bytes | bytearray | str,
    client_id: str,
    client_secret: str,
    *,
    max_age_ms: int | None = None,
    now_ms: int | None = None,
    iv_pad: bytes | None = None,
) -> list[WebhookEvent]:
    """Like :func:`verify_and_decrypt`, but return every valid reading of the body.

    The list has one event unless the clientId is shorter than 16 bytes and both IV
    conventions (NUL- and space-padded) decrypt to a valid event. They differ only in the
    first 16 plaintext bytes (e.g. the case of a letter in the job id), so a receiver picks
    the reading whose job id it submitted. The NUL reading comes first.
    """
    # Validate configuration up front so a bad secret is never mistaken for a bad body.
    check_credentials(client_id, client_secret, iv_pad)

    fields = parse_body(body)
    signature = fields.get("signature")
    data_encrypt = fields.get("dataEncrypt")
    if not isinstance(signature, str) or not _SIGNATURE_RE.fullmatch(signature):
        raise WebhookVerificationError("signature is missing or not 40 hex digits")
    if not isinstance(data_encrypt, str) or not data_encrypt:
        raise WebhookVerificationError("dataEncrypt is missing or not a string")
    if "timestamp" not in fields or "nonce" not in fields:
        raise WebhookVerificationError("timestamp or nonce is missing")
    ts_text, ts_value = _field_timestamp(fields["timestamp"])
    nonce = _field_nonce(fields["nonce"])

    expected = sign(client_id, ts_text, nonce, data_encrypt)
    # Both sides are ASCII hex here (checked above), so compare_digest cannot raise.
    if not hmac.compare_digest(expected, signature.lower()):
        raise WebhookVerificationError("signature mismatch")

    if max_age_ms is not None:
        now = int(time.time() * 1000) if now_ms is None else now_ms
        if abs(now - ts_value) > max_age_ms:
            raise WebhookVerificationError("timestamp outside the accepted window")

    events: list[WebhookEvent] = []
    first_error: WebhookVerificationError | None = None
    for plain in decrypt_readings(data_encrypt, client_id, client_secret, iv_pad):
        try:
            payload = json_object(plain)
            events.append(
                WebhookEvent.from_payload(
                    payload, timestamp=ts_value, nonce=nonce, signature=signature.lower()
                )
            )
        except WebhookVerificationError as exc:
            first_error = first_error or exc
    if not events:
        raise first_error or WebhookVerificationError("dataEncrypt could not be decrypted")
    return events
