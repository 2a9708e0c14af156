"""The Akool webhook crypto: round trips, tampering, IV padding variants, strictness."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from Crypto.Cipher import AES

from akool_flows.webhook import (
    WebhookVerificationError,
    build_webhook_body,
    decrypt,
    encrypt,
    sign,
    verify_and_decrypt,
    verify_and_decrypt_all,
)

from .conftest import CLIENT_ID, CLIENT_SECRET, SHORT_CLIENT_ID

PAYLOAD = {"_id": "65d3206b83ccf5ab7d46cdc6", "status": 3, "type": "faceswap", "url": "https://r/x.mp4"}
TS = 1710757981609


def _docs_python_encrypt(data: str, client_id: str, client_secret: str, pad: bytes) -> str:
    """The docs' Python sample, verbatim apart from the pad byte."""
    iv = client_id.encode("utf-8")
    iv = iv[:16] if len(iv) >= 16 else iv.ljust(16, pad)
    data_bytes = data.encode("utf-8")
    n = AES.block_size - len(data_bytes) % AES.block_size
    cipher = AES.new(client_secret.encode("utf-8"), AES.MODE_CBC, iv)
    return base64.b64encode(cipher.encrypt(data_bytes + bytes([n]) * n)).decode()


def _body(payload=PAYLOAD, client_id=CLIENT_ID, **kw):
    return build_webhook_body(payload, client_id, CLIENT_SECRET, timestamp=TS, nonce="1529", **kw)


# --- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "client_id",
    ["a", SHORT_CLIENT_ID, "exactly16bytes!!", CLIENT_ID, "x" * 200, "ünïcødé-id"],
    ids=["1-byte", "short", "16-bytes", "22-bytes", "200-bytes", "multibyte"],
)
def test_round_trip_for_short_and_long_client_ids(client_id):
    event = verify_and_decrypt(_body(client_id=client_id), client_id, CLIENT_SECRET)
    assert event.job_id == PAYLOAD["_id"]
    assert event.status == 3 and event.state == "completed"
    assert event.type == "faceswap" and event.url == PAYLOAD["url"]
    assert event.raw == PAYLOAD
    assert event.timestamp == TS and event.nonce == "1529"


@pytest.mark.parametrize("secret", ["k" * 16, "k" * 24, "k" * 32])
def test_every_aes_key_length_works(secret):
    body = build_webhook_body(PAYLOAD, CLIENT_ID, secret)
    assert verify_and_decrypt(body, CLIENT_ID, secret).job_id == PAYLOAD["_id"]


@pytest.mark.parametrize("secret", ["", "k" * 15, "k" * 20, "k" * 33, "é" * 12 + "x"])
def test_bad_key_length_is_a_clear_config_error_without_the_secret(secret):
    with pytest.raises(ValueError, match="client_secret must be 16, 24 or 32 bytes") as info:
        encrypt("x", CLIENT_ID, secret)
    if secret:
        assert secret not in str(info.value)
    with pytest.raises(ValueError, match="client_secret"):
        verify_and_decrypt(_body(), CLIENT_ID, secret)


def test_empty_client_id_is_refused():
    with pytest.raises(ValueError, match="client_id must not be empty"):
        encrypt("x", "", CLIENT_SECRET)


def test_matches_the_docs_python_sample_byte_for_byte():
    text = json.dumps(PAYLOAD)
    for client_id in (SHORT_CLIENT_ID, CLIENT_ID):
        assert encrypt(text, client_id, CLIENT_SECRET) == _docs_python_encrypt(
            text, client_id, CLIENT_SECRET, b"\0"
        )


@pytest.mark.parametrize("pad", [b"\0", b" "], ids=["nul", "space"])
@pytest.mark.parametrize("client_id", ["a", SHORT_CLIENT_ID, "fifteen-bytes!!"])
@pytest.mark.parametrize(
    "payload",
    [PAYLOAD, {"_id": "a", "status": 4}, {"_id": "abcdefghijklmnop", "status": 2}],
    ids=["multi-block", "one-block", "case-sensitive-first-block"],
)
def test_nul_and_space_padded_ivs_both_decrypt(pad, client_id, payload):
    data_encrypt = _docs_python_encrypt(json.dumps(payload), client_id, CLIENT_SECRET, pad)
    body = {
        "signature": sign(client_id, TS, 1529, data_encrypt),
        "dataEncrypt": data_encrypt,
        "timestamp": TS,
        "nonce": 1529,
    }
    # Pinning the sender's convention gives exactly its reading.
    assert verify_and_decrypt(body, client_id, CLIENT_SECRET, iv_pad=pad).raw == payload
    # Unpinned, the sender's reading is always among the valid ones...
    readings = [e.raw for e in verify_and_decrypt_all(body, client_id, CLIENT_SECRET)]
    assert payload in readings
    # ...and it is the only one unless the other IV also yields a valid event.
    if len(readings) == 1:
        assert verify_and_decrypt(body, client_id, CLIENT_SECRET).raw == payload


def test_ambiguous_short_client_id_yields_both_readings_nul_first():
    # A 15-byte clientId: the IVs differ in byte 15 only (NUL vs space = XOR 0x20), which
    # flips the case of the letter at plaintext offset 15 -> two valid job ids.
    client_id = "fifteen-bytes!!"
    payload = {"_id": "abcdefghijklmnop", "status": 3}
    for pad, other in ((b"\0", "abcdefGhijklmnop"), (b" ", "abcdefGhijklmnop")):
        data_encrypt = _docs_python_encrypt(json.dumps(payload), client_id, CLIENT_SECRET, pad)
        body = _signed(data_encrypt, client_id)
        ids = [e.job_id for e in verify_and_decrypt_all(body, client_id, CLIENT_SECRET)]
        assert sorted(ids) == sorted(["abcdefghijklmnop", other])
        assert ids[0] == ("abcdefghijklmnop" if pad == b"\0" else other)


def test_decrypt_returns_text_for_either_padding():
    for pad in (b"\0", b" "):
        assert decrypt(encrypt("héllo", SHORT_CLIENT_ID, CLIENT_SECRET, iv_pad=pad), SHORT_CLIENT_ID, CLIENT_SECRET) == "héllo"


def test_unicode_payload_round_trips():
    payload = {"_id": "j", "status": 4, "msg": "échec — 失败 🎬"}
    event = verify_and_decrypt(_body(payload), CLIENT_ID, CLIENT_SECRET)
    assert event.error_message == payload["msg"]


def test_build_webhook_body_shape_and_defaults():
    body = build_webhook_body(PAYLOAD, CLIENT_ID, CLIENT_SECRET)
    assert set(body) == {"signature", "dataEncrypt", "timestamp", "nonce"}
    assert isinstance(body["timestamp"], int) and isinstance(body["nonce"], str)
    assert len(body["signature"]) == 40
    json.dumps(body)  # serialisable as the POST body


# --- signature -----------------------------------------------------------------------------


def test_sign_is_sha1_of_sorted_concatenation():
    expected = hashlib.sha1("".join(sorted([CLIENT_ID, str(TS), "1529", "Zm9v"])).encode()).hexdigest()
    assert sign(CLIENT_ID, TS, 1529, "Zm9v") == expected
    assert sign(CLIENT_ID, str(TS), "1529", "Zm9v") == expected


@pytest.mark.parametrize(
    ("timestamp", "nonce"),
    [(TS, 1529), (str(TS), "1529"), (TS, "1529"), (str(TS), 1529), (TS, "n-0nce")],
)
def test_numeric_and_string_timestamp_and_nonce(timestamp, nonce):
    data_encrypt = encrypt(json.dumps(PAYLOAD), CLIENT_ID, CLIENT_SECRET)
    body = {
        "signature": sign(CLIENT_ID, timestamp, nonce, data_encrypt),
        "dataEncrypt": data_encrypt,
        "timestamp": timestamp,
        "nonce": nonce,
    }
    for form in (body, json.dumps(body), json.dumps(body).encode()):
        event = verify_and_decrypt(form, CLIENT_ID, CLIENT_SECRET)
        assert event.timestamp == TS and event.nonce == str(nonce)


def test_uppercase_hex_signature_is_accepted():
    body = _body()
    body["signature"] = body["signature"].upper()
    assert verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET).job_id == PAYLOAD["_id"]


def test_sign_refuses_floats_and_bools():
    with pytest.raises(TypeError, match="timestamp"):
        sign(CLIENT_ID, 1.5, 1, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="nonce"):
        sign(CLIENT_ID, 1, True, "x")  # type: ignore[arg-type]


# --- tampering -----------------------------------------------------------------------------


def _flip_char(s: str, i: int) -> str:
    c = s[i]
    repl = "A" if c != "A" else "B"
    return s[:i] + repl + s[i + 1 :]


@pytest.mark.parametrize(
    ("field", "mutate"),
    [
        ("signature", lambda v: _flip_char(v, 0)),
        ("signature", lambda v: _flip_char(v, 39)),
        ("signature", lambda v: v[:-1]),
        ("signature", lambda v: ""),
        ("dataEncrypt", lambda v: _flip_char(v, 0)),
        ("dataEncrypt", lambda v: _flip_char(v, len(v) // 2)),
        ("dataEncrypt", lambda v: encrypt('{"_id":"other","status":3}', CLIENT_ID, CLIENT_SECRET)),
        ("timestamp", lambda v: v + 1),
        ("timestamp", lambda v: str(v + 1)),
        ("timestamp", lambda v: float(v)),
        ("nonce", lambda v: "1530"),
        ("nonce", lambda v: 1530),
    ],
)
def test_altering_any_field_is_rejected(field, mutate):
    body = _body()
    body[field] = mutate(body[field])
    with pytest.raises(WebhookVerificationError):
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET)


@pytest.mark.parametrize("field", ["signature", "dataEncrypt", "timestamp", "nonce"])
def test_missing_field_is_rejected(field):
    body = _body()
    del body[field]
    with pytest.raises(WebhookVerificationError):
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET)


def test_wrong_client_id_or_secret_is_rejected():
    body = _body()
    with pytest.raises(WebhookVerificationError, match="signature"):
        verify_and_decrypt(body, "AKDt8rWEczpYPzCGur2xF=", CLIENT_SECRET)
    with pytest.raises(WebhookVerificationError):
        verify_and_decrypt(body, CLIENT_ID, "x" * 24)


def _signed(data_encrypt: str, client_id: str = CLIENT_ID) -> dict:
    return {"signature": sign(client_id, TS, "1", data_encrypt), "dataEncrypt": data_encrypt, "timestamp": TS, "nonce": "1"}


@pytest.mark.parametrize(
    ("data_encrypt", "reason"),
    [
        ("not base64!", "base64"),
        ("Zm9v", "AES blocks"),  # valid base64, 3 bytes
        (base64.b64encode(b"\0" * 16).decode(), "decrypted"),  # garbage block: bad padding
        (encrypt(b"\xff\xfe not utf-8", CLIENT_ID, CLIENT_SECRET), "UTF-8"),
        (encrypt("not json", CLIENT_ID, CLIENT_SECRET), "JSON"),
        (encrypt("[1, 2]", CLIENT_ID, CLIENT_SECRET), "JSON object"),
        (encrypt('{"_id":"a","_id":"b","status":3}', CLIENT_ID, CLIENT_SECRET), "JSON"),
        (encrypt('{"_id":"a","status":NaN}', CLIENT_ID, CLIENT_SECRET), "JSON"),
        (encrypt('{"status":3}', CLIENT_ID, CLIENT_SECRET), "job id"),
        (encrypt('{"_id":"a"}', CLIENT_ID, CLIENT_SECRET), "status"),
        (encrypt('{"_id":"a","status":7}', CLIENT_ID, CLIENT_SECRET), "status"),
        (encrypt('{"_id":"a","status":true}', CLIENT_ID, CLIENT_SECRET), "status"),
    ],
)
def test_validly_signed_but_bad_ciphertext_raises_only_verification_error(data_encrypt, reason):
    with pytest.raises(WebhookVerificationError, match=reason):
        verify_and_decrypt(_signed(data_encrypt), CLIENT_ID, CLIENT_SECRET)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        "[]",
        "null",
        '{"signature": 1}',
        '{"a":1,"a":2}',
        "{" * 100_000,  # deep nesting must not escape as RecursionError
        {"signature": "g" * 40, "dataEncrypt": "x", "timestamp": 1, "nonce": "1"},
        {"signature": "a" * 40, "dataEncrypt": "x", "timestamp": True, "nonce": "1"},
        {"signature": "a" * 40, "dataEncrypt": "x", "timestamp": -1, "nonce": "1"},
        {"signature": "a" * 40, "dataEncrypt": "x", "timestamp": 1, "nonce": None},
        {"signature": "a" * 40, "dataEncrypt": "x", "timestamp": 1, "nonce": ""},
        {"signature": "a" * 40, "dataEncrypt": "x", "timestamp": 1, "nonce": [1]},
        {"signature": "é" * 40, "dataEncrypt": "x", "timestamp": 1, "nonce": "1"},
    ],
)
def test_malformed_bodies_raise_verification_error(body):
    with pytest.raises(WebhookVerificationError):
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET)


def test_error_reason_never_contains_body_or_secret():
    body = _body({"_id": "secret-job-id-123", "status": 9})
    with pytest.raises(WebhookVerificationError) as info:
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET)
    text = str(info.value) + repr(info.value)
    for leak in ("secret-job-id-123", CLIENT_SECRET, body["dataEncrypt"]):
        assert leak not in text


# --- timestamp window ----------------------------------------------------------------------


def test_timestamp_window_in_milliseconds():
    body = _body()
    ok = verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET, max_age_ms=1000, now_ms=TS + 1000)
    assert ok.job_id == PAYLOAD["_id"]
    with pytest.raises(WebhookVerificationError, match="window"):
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET, max_age_ms=1000, now_ms=TS + 1001)
    with pytest.raises(WebhookVerificationError, match="window"):  # from the future
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET, max_age_ms=1000, now_ms=TS - 1001)


def test_docs_key_length_padding_variant_is_accepted():
    # The docs describe PKCS#7 padding to a multiple of K = 24 (the key length).
    data = json.dumps(PAYLOAD).encode()
    n = 24 - len(data) % 24
    padded = data + bytes([n]) * n
    padded += b""  # len is a multiple of 24; make it a multiple of 16 too if needed
    if len(padded) % 16:
        pytest.skip("payload length does not give a block-aligned 24-byte padding")
    cipher = AES.new(CLIENT_SECRET.encode(), AES.MODE_CBC, CLIENT_ID.encode()[:16])
    data_encrypt = base64.b64encode(cipher.encrypt(padded)).decode()
    assert verify_and_decrypt(_signed(data_encrypt), CLIENT_ID, CLIENT_SECRET).raw == PAYLOAD


def test_importing_the_crypto_does_not_load_sqlalchemy_or_starlette():
    import subprocess
    import sys

    code = (
        "import sys; from akool_flows.webhook import verify_and_decrypt, WebhookEvent; "
        "print(sorted(m for m in ('sqlalchemy', 'starlette', 'uvicorn') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
