"""Property tests: nothing a sender can put in a body raises anything but
WebhookVerificationError, and honest bodies always round-trip."""

from __future__ import annotations

import base64
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akool_flows.webhook import (
    WebhookVerificationError,
    build_webhook_body,
    encrypt,
    sign,
    verify_and_decrypt,
)

from .conftest import CLIENT_ID, CLIENT_SECRET

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
field_values = st.one_of(
    json_values,
    st.text(alphabet="0123456789abcdef", min_size=40, max_size=40),
    st.binary(max_size=64).map(lambda b: base64.b64encode(b).decode()),
)
bodies = st.fixed_dictionaries(
    {},
    optional={
        "signature": field_values,
        "dataEncrypt": field_values,
        "timestamp": field_values,
        "nonce": field_values,
    },
)

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _only_verification_errors(body) -> None:
    try:
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET, max_age_ms=10**15)
    except WebhookVerificationError as exc:
        assert exc.reason and CLIENT_SECRET not in str(exc)


@SETTINGS
@given(st.binary(max_size=512))
def test_arbitrary_bytes(raw):
    _only_verification_errors(raw)


@SETTINGS
@given(st.text(max_size=512))
def test_arbitrary_text(raw):
    _only_verification_errors(raw)


@SETTINGS
@given(bodies)
def test_arbitrary_field_values(body):
    _only_verification_errors(body)
    _only_verification_errors(json.dumps(body, allow_nan=True))


@SETTINGS
@given(
    plaintext=st.one_of(st.binary(max_size=200), st.text(max_size=200).map(str.encode), json_values.map(lambda v: json.dumps(v).encode())),
    timestamp=st.integers(min_value=0, max_value=10**18) | st.integers(min_value=0, max_value=10**18).map(str),
    nonce=st.integers(min_value=-(10**9), max_value=10**9) | st.text(min_size=1, max_size=20),
)
def test_correctly_signed_arbitrary_plaintext(plaintext, timestamp, nonce):
    """The hard case: the signature is right (anyone can compute it), only the content is
    hostile. Still nothing but WebhookVerificationError, or a well-formed event."""
    data_encrypt = encrypt(plaintext, CLIENT_ID, CLIENT_SECRET)
    body = {"signature": sign(CLIENT_ID, timestamp, nonce, data_encrypt), "dataEncrypt": data_encrypt, "timestamp": timestamp, "nonce": nonce}
    try:
        event = verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET)
    except WebhookVerificationError:
        return
    assert 1 <= event.status <= 4 and event.job_id


@SETTINGS
@given(st.binary(min_size=16, max_size=160).filter(lambda b: len(b) % 16 == 0))
def test_correctly_signed_random_ciphertext(blob):
    data_encrypt = base64.b64encode(blob).decode()
    body = {"signature": sign(CLIENT_ID, 1, 1, data_encrypt), "dataEncrypt": data_encrypt, "timestamp": 1, "nonce": 1}
    try:
        verify_and_decrypt(body, CLIENT_ID, CLIENT_SECRET)
    except WebhookVerificationError:
        pass


@SETTINGS
@given(
    client_id=st.text(min_size=1, max_size=40),
    job_id=st.text(min_size=1, max_size=60).filter(str.isprintable),
    status=st.integers(min_value=1, max_value=4),
    extra=st.dictionaries(st.text(max_size=10).filter(lambda k: k not in {"_id", "status"}), st.text(max_size=20), max_size=3),
)
def test_honest_bodies_round_trip(client_id, job_id, status, extra):
    payload = {**extra, "_id": job_id, "status": status}
    body = build_webhook_body(payload, client_id, CLIENT_SECRET)
    event = verify_and_decrypt(json.dumps(body), client_id, CLIENT_SECRET, iv_pad=b"\0")
    assert event.job_id == job_id and event.status == status and event.raw == payload
