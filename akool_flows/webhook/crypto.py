"""Akool's webhook scheme: AES-CBC encryption and the sha1 "signature".

The algorithm (docs, Webhook page, and its Node/Python/Java samples):

* key        = clientSecret as UTF-8 (docs: 24 bytes, AES-192; any AES length works)
* IV         = clientId as UTF-8, cut to 16 bytes; a shorter id is padded. The docs'
  crypto-js sample (in effect) and Python sample pad with NUL bytes; space padding is also
  in circulation, so decryption accepts both and encryption defaults to NUL.
* dataEncrypt = base64(AES-CBC(PKCS#7(plaintext)))
* signature  = hex(sha1(concat(sorted([clientId, str(timestamp), str(nonce), dataEncrypt]))))

The signature contains no secret: it proves the body was not altered in transit, not who
sent it, and CBC has no MAC. Treat a verified event as "well-formed", and rely on the
receiver's other rules (known job ids, timestamp window, unguessable path) for origin.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from typing import Any

from Crypto.Cipher import AES

from akool_flows.webhook.errors import WebhookVerificationError

__all__ = [
    "IV_PADDINGS",
    "build_webhook_body",
    "check_credentials",
    "decrypt",
    "encrypt",
    "sign",
]

_BLOCK = AES.block_size  # 16
_VALID_KEY_LENGTHS = (16, 24, 32)
# Tried in this order when decrypting: NUL is what crypto-js and the Python sample do.
IV_PADDINGS: tuple[bytes, ...] = (b"\0", b" ")

_BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")


# --- keys and IVs -----------------------------------------------------------------------


def _aes_key(client_secret: str) -> bytes:
    if not isinstance(client_secret, str):
        raise TypeError("client_secret must be a str")
    key = client_secret.encode("utf-8")
    if len(key) not in _VALID_KEY_LENGTHS:
        # Never echo the secret, only its length.
        raise ValueError(
            f"client_secret must be 16, 24 or 32 bytes in UTF-8 to be an AES key "
            f"(Akool issues 24-character secrets); got {len(key)} bytes"
        )
    return key


def _iv(client_id: str, pad: bytes) -> bytes:
    if not isinstance(client_id, str):
        raise TypeError("client_id must be a str")
    if not client_id:
        raise ValueError("client_id must not be empty (it is the AES IV)")
    if pad not in IV_PADDINGS:
        raise ValueError(f"iv_pad must be one of {IV_PADDINGS!r}")
    raw = client_id.encode("utf-8")
    return raw[:_BLOCK].ljust(_BLOCK, pad)


def _iv_candidates(client_id: str, iv_pad: bytes | None) -> list[bytes]:
    if iv_pad is not None:
        return [_iv(client_id, iv_pad)]
    ivs: list[bytes] = []
    for pad in IV_PADDINGS:
        iv = _iv(client_id, pad)
        if iv not in ivs:  # a clientId of 16+ bytes needs no padding: one candidate
            ivs.append(iv)
    return ivs


def check_credentials(client_id: str, client_secret: str, iv_pad: bytes | None = None) -> None:
    """Raise ``ValueError``/``TypeError`` (naming the field, never echoing it) unless the pair
    (and ``iv_pad``, if given) can serve as IV and AES key. Receivers call it at startup, not
    on the first callback."""
    _aes_key(client_secret)
    _iv(client_id, IV_PADDINGS[0] if iv_pad is None else iv_pad)


# --- PKCS#7 -------------------------------------------------------------------------------


def _pad(data: bytes) -> bytes:
    n = _BLOCK - len(data) % _BLOCK
    return data + bytes([n]) * n


def _unpad(data: bytes, max_pad: int) -> bytes | None:
    """Strip PKCS#7 padding, or return None if it is malformed.

    ``max_pad`` is above 16 only to accept the docs' literal description of padding to a
    multiple of the key length (24); standard PKCS#7 over AES never pads more than 16.
    """
    if not data:
        return None
    n = data[-1]
    if n < 1 or n > max_pad or n > len(data):
        return None
    # Compare all pad bytes without an early exit (no oracle on how many were right).
    if not hmac.compare_digest(data[-n:], bytes([n]) * n):
        return None
    return data[:-n]


# --- strict JSON ---------------------------------------------------------------------------


def _reject_constant(token: str) -> Any:
    raise ValueError(f"non-standard JSON constant {token}")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError("duplicate key in JSON object")
        obj[key] = value
    return obj


def strict_json_loads(text: str) -> Any:
    """JSON per RFC 8259: no NaN/Infinity, no duplicate keys (which parsers resolve
    differently, a classic way to smuggle a second value past a check)."""
    return json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_no_duplicate_keys)


# --- public primitives ----------------------------------------------------------------------


def encrypt(
    plaintext: str | bytes, client_id: str, client_secret: str, *, iv_pad: bytes = b"\0"
) -> str:
    """Encrypt like Akool does: base64 of AES-CBC/PKCS#7 with key=clientSecret, IV=clientId.

    ``iv_pad`` is the byte used to pad a clientId shorter than 16 bytes (NUL, as the docs'
    crypto-js sample does; ``b" "`` reproduces the space-padding variant).
    """
    key = _aes_key(client_secret)
    data = plaintext.encode("utf-8") if isinstance(plaintext, str) else bytes(plaintext)
    cipher = AES.new(key, AES.MODE_CBC, _iv(client_id, iv_pad))
    return base64.b64encode(cipher.encrypt(_pad(data))).decode("ascii")


def decrypt_readings(
    data_encrypt: str, client_id: str, client_secret: str, iv_pad: bytes | None
) -> list[bytes]:
    """Every correctly padded plaintext, one per candidate IV, in preference order (a
    clientId under 16 bytes has two IVs, see `decrypt`)."""
    key = _aes_key(client_secret)
    ivs = _iv_candidates(client_id, iv_pad)
    if not isinstance(data_encrypt, str) or not _BASE64_RE.fullmatch(data_encrypt):
        raise WebhookVerificationError("dataEncrypt is not base64")
    try:
        blob = base64.b64decode(data_encrypt, validate=True)
    except (binascii.Error, ValueError):
        raise WebhookVerificationError("dataEncrypt is not base64") from None
    if not blob or len(blob) % _BLOCK:
        raise WebhookVerificationError("dataEncrypt is not a whole number of AES blocks")
    max_pad = max(_BLOCK, len(key))
    plains: list[bytes] = []
    for iv in ivs:
        # Every IV is tried even after a padding failure: in a one-block message the IV
        # reaches the padding bytes.
        plain = _unpad(AES.new(key, AES.MODE_CBC, iv).decrypt(blob), max_pad)
        if plain is not None and plain not in plains:
            plains.append(plain)
    if not plains:
        raise WebhookVerificationError("dataEncrypt could not be decrypted")
    return plains


def json_object(plain: bytes) -> dict[str, Any]:
    try:
        text = plain.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("plaintext is not UTF-8") from None
    try:
        payload = strict_json_loads(text)
    except (ValueError, RecursionError):
        raise WebhookVerificationError("plaintext is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookVerificationError("plaintext is not a JSON object")
    return payload


def decrypt(
    data_encrypt: str, client_id: str, client_secret: str, *, iv_pad: bytes | None = None
) -> str:
    """Decrypt a ``dataEncrypt`` value to text.

    With ``iv_pad=None`` a clientId shorter than 16 bytes is tried NUL-padded first and
    space-padded second, and the first reading that is a JSON object wins. A wrong IV only
    garbles the first 16 bytes, so for a short clientId both readings can be valid JSON;
    pin ``iv_pad`` if you know which convention the sender uses.

    Raises ``WebhookVerificationError`` for bad base64, bad padding or non-UTF-8 plaintext,
    ``ValueError`` for an unusable client_id/client_secret (a configuration error).
    """
    plains = decrypt_readings(data_encrypt, client_id, client_secret, iv_pad)
    chosen = plains[0]
    for plain in plains:
        try:
            json_object(plain)
        except WebhookVerificationError:
            continue
        chosen = plain
        break
    try:
        return chosen.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookVerificationError("plaintext is not UTF-8") from None


def _sign_part(value: Any, name: str) -> str:
    # JavaScript's Array.join stringifies numbers; for integers that is str(int). Floats and
    # bools would stringify differently in JS and Python, so they are refused.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"{name} must be a str or an int, not {type(value).__name__}")
    return str(value)


def _js_sort_key(s: str) -> bytes:
    # Node's Array.sort and Java's Arrays.sort compare UTF-16 code units; Python compares
    # code points. They differ only above U+FFFF, but matching the senders costs nothing.
    return s.encode("utf-16-be")


def sign(client_id: str, timestamp: str | int, nonce: str | int, data_encrypt: str) -> str:
    """``sha1(''.join(sorted([clientId, str(timestamp), str(nonce), dataEncrypt])))`` in hex."""
    parts = [
        _sign_part(client_id, "client_id"),
        _sign_part(timestamp, "timestamp"),
        _sign_part(nonce, "nonce"),
        _sign_part(data_encrypt, "data_encrypt"),
    ]
    joined = "".join(sorted(parts, key=_js_sort_key))
    return hashlib.sha1(joined.encode("utf-8"), usedforsecurity=False).hexdigest()


def build_webhook_body(
    payload: Mapping[str, Any],
    client_id: str,
    client_secret: str,
    *,
    timestamp: int | None = None,
    nonce: str | None = None,
    iv_pad: bytes = b"\0",
) -> dict[str, Any]:
    """Build the JSON body Akool would POST for ``payload``.

    Returns ``{"signature", "dataEncrypt", "timestamp", "nonce"}`` with ``timestamp`` in
    milliseconds (default: now) as a number and ``nonce`` as a string (default: random 4
    digits, like the docs' example), the shapes the docs show.
    """
    if not isinstance(payload, Mapping):
        raise TypeError("payload must be a mapping (the job's JSON object)")
    ts = int(time.time() * 1000) if timestamp is None else timestamp
    nc = f"{secrets.randbelow(10_000):04d}" if nonce is None else nonce
    data_encrypt = encrypt(
        json.dumps(dict(payload), separators=(",", ":"), ensure_ascii=False),
        client_id,
        client_secret,
        iv_pad=iv_pad,
    )
    return {
        "signature": sign(client_id, ts, nc, data_encrypt),
        "dataEncrypt": data_encrypt,
        "timestamp": ts,
        "nonce": nc,
    }
