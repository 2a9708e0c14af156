"""The ASGI receiver: one rule per test, as listed in issue 4 part 5."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest

from akool_flows.webhook import build_webhook_body, create_webhook_app, encrypt, sign

from .conftest import CLIENT_ID, CLIENT_SECRET, SHORT_CLIENT_ID

JOB = "65d3206b83ccf5ab7d46cdc6"
TOKEN = "Zx9-unguessable_path-token-123456"


def body_for(job_id: str = JOB, status: int = 3, *, client_id: str = CLIENT_ID, timestamp: int | None = None, **extra) -> dict:
    payload = {"_id": job_id, "status": status, "type": "faceswap", "url": "https://r/1.png", **extra}
    return build_webhook_body(payload, client_id, CLIENT_SECRET, timestamp=timestamp)


@pytest.fixture
def app(store):
    store.register_submitted(JOB, kind="faceswap")
    return create_webhook_app(store, CLIENT_ID, CLIENT_SECRET)


@pytest.fixture
async def client(app):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
        yield c


async def test_good_event_is_stored_and_duplicate_is_acknowledged_once(client, app, store):
    body = body_for()
    first = await client.post("/webhook", json=body)
    again = await client.post("/webhook", json=body)  # Akool retries until it sees 200
    assert first.status_code == again.status_code == 200
    assert first.json() == {}
    assert len(store.events(JOB)) == 1
    assert store.latest(JOB).url == "https://r/1.png"
    assert app.state.stats["accepted"] == 1 and app.state.stats["duplicate"] == 1


async def test_forged_event_for_an_unknown_job_id_is_rejected(client, store):
    resp = await client.post("/webhook", json=body_for("not-our-job"))
    assert resp.status_code == 400
    assert store.latest("not-our-job") is None


async def test_unknown_ids_accepted_when_registry_check_is_off(store):
    app = create_webhook_app(store, CLIENT_ID, CLIENT_SECRET, require_submitted=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.post("/webhook", json=body_for("someone-else"))).status_code == 200
    assert store.latest("someone-else") is not None


async def test_replayed_old_timestamp_is_rejected(client, store):
    old = int(time.time() * 1000) - 16 * 60 * 1000  # the default window is 15 minutes
    resp = await client.post("/webhook", json=body_for(timestamp=old))
    assert resp.status_code == 400 and store.latest(JOB) is None
    future = int(time.time() * 1000) + 16 * 60 * 1000
    assert (await client.post("/webhook", json=body_for(timestamp=future))).status_code == 400
    fresh = int(time.time() * 1000) - 60_000
    assert (await client.post("/webhook", json=body_for(timestamp=fresh))).status_code == 200


async def test_oversized_body_with_content_length_gets_413(client, store):
    big = body_for(padding="x" * 70_000)
    resp = await client.post("/webhook", json=big)
    assert resp.status_code == 413 and store.latest(JOB) is None


async def test_oversized_streamed_body_is_cut_off_while_streaming(client):
    sent = []

    async def chunks():
        for _ in range(1000):  # 1000 x 1 KiB = ~1 MiB offered, cap is 64 KiB
            sent.append(1)
            yield b"x" * 1024

    resp = await client.post("/webhook", content=chunks(), headers={"content-type": "application/json"})
    assert resp.status_code == 413
    # The app stopped reading just past the cap instead of buffering the whole body.
    assert len(sent) <= 70, len(sent)


def _malformed_bodies() -> list[tuple[str, bytes, dict]]:
    good = body_for()
    raw = lambda d: json.dumps(d).encode()  # noqa: E731
    sig_ok = lambda de: {"signature": sign(CLIENT_ID, good["timestamp"], good["nonce"], de), "dataEncrypt": de, "timestamp": good["timestamp"], "nonce": good["nonce"]}  # noqa: E731
    ct = {"content-type": "application/json"}
    return [
        ("empty", b"", ct),
        ("not json", b"hello", ct),
        ("json array", b"[]", ct),
        ("not utf-8", b"\xff\xfe{}", ct),
        ("duplicate keys", b'{"signature":"a","signature":"b"}', ct),
        ("missing field", raw({k: v for k, v in good.items() if k != "nonce"}), ct),
        ("bad signature", raw({**good, "signature": "0" * 40}), ct),
        ("tampered ciphertext", raw({**good, "dataEncrypt": "A" + good["dataEncrypt"][1:]}), ct),
        ("tampered timestamp", raw({**good, "timestamp": good["timestamp"] + 1}), ct),
        ("signed, bad base64", raw(sig_ok("!!!!")), ct),
        ("signed, bad padding", raw(sig_ok("A" * 24)), ct),
        ("signed, not json plaintext", raw(sig_ok(encrypt("nope", CLIENT_ID, CLIENT_SECRET))), ct),
        ("signed, no job id", raw(sig_ok(encrypt('{"status":3}', CLIENT_ID, CLIENT_SECRET))), ct),
        ("wrong content type", raw(good), {"content-type": "text/plain"}),
        ("bad content-length", raw(good), {**ct, "content-length": "abc"}),
    ]


async def test_every_malformed_body_gets_the_identical_answer(client, store, caplog):
    caplog.set_level(logging.DEBUG)
    answers = set()
    for name, content, headers in _malformed_bodies():
        resp = await client.post("/webhook", content=content, headers=headers)
        answers.add((resp.status_code, resp.content, resp.headers.get("content-type")))
        assert resp.status_code == 400, name
    assert answers == {(400, b'{"error":"rejected"}', "application/json")}
    assert caplog.text.count("akool webhook rejected") == len(_malformed_bodies())
    assert store.latest(JOB) is None
    # The operator log says why, but never carries the secret or any body content.
    logged = caplog.text
    assert "rejected" in logged
    assert CLIENT_SECRET not in logged and "nope" not in logged and '"status":3' not in logged


async def test_rejected_plaintext_and_job_id_never_logged(client, caplog):
    caplog.set_level(logging.DEBUG)
    resp = await client.post("/webhook", json=body_for("forged-job-id-777", url_note="secret-plaintext"))
    assert resp.status_code == 400
    assert "forged-job-id-777" not in caplog.text and "secret-plaintext" not in caplog.text
    assert CLIENT_SECRET not in caplog.text


async def test_unguessable_path(store):
    store.register_submitted(JOB)
    app = create_webhook_app(store, CLIENT_ID, CLIENT_SECRET, path_token=TOKEN)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        body = body_for()
        plain = await c.post("/webhook", json=body)
        wrong = await c.post("/webhook/" + "Y" * len(TOKEN), json=body)
        nowhere = await c.post("/nowhere", json=body)
        assert plain.status_code == wrong.status_code == nowhere.status_code == 404
        assert plain.content == wrong.content == nowhere.content
        assert store.latest(JOB) is None
        assert (await c.post(f"/webhook/{TOKEN}", json=body)).status_code == 200
    assert store.latest(JOB) is not None


async def test_get_is_not_a_webhook_and_health_answers(client):
    assert (await client.get("/webhook")).status_code == 405
    assert (await client.get("/healthz")).json() == {"status": "ok"}


async def test_short_client_id_picks_the_reading_for_a_submitted_job(store):
    # A 15-byte clientId + space-padded IV: the NUL reading flips the case of one letter of
    # the job id, so only the submitted id identifies the real reading.
    client_id, job = "fifteen-bytes!!", "abcdefghijklmnop"
    store.register_submitted(job)
    payload = json.dumps({"_id": job, "status": 3})
    de = encrypt(payload, client_id, CLIENT_SECRET, iv_pad=b" ")
    ts = int(time.time() * 1000)
    body = {"signature": sign(client_id, ts, 7, de), "dataEncrypt": de, "timestamp": ts, "nonce": 7}
    app = create_webhook_app(store, client_id, CLIENT_SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.post("/webhook", json=body)).status_code == 200
    assert store.latest(job) is not None and store.latest("abcdefGhijklmnop") is None


async def test_receiver_wakes_a_waiter_in_the_same_process(client, store):
    waiter = asyncio.create_task(store.wait_for(JOB, timeout=5))
    await asyncio.sleep(0.05)
    assert (await client.post("/webhook", json=body_for(status=4, error_reason="no face"))).status_code == 200
    event = await asyncio.wait_for(waiter, 1)
    assert event is not None and event.state == "failed" and event.error_message == "no face"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"path_token": "short"}, "path_token"),
        ({"path_token": "has/slash" * 3}, "path_token"),
        ({"max_body_bytes": 10}, "max_body_bytes"),
        ({"max_age_ms": 0}, "max_age_ms"),
    ],
)
def test_bad_configuration_is_refused_at_startup(store, kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_webhook_app(store, CLIENT_ID, CLIENT_SECRET, **kwargs)


def test_bad_secret_refused_at_startup_without_echoing_it(store):
    with pytest.raises(ValueError, match="client_secret") as info:
        create_webhook_app(store, CLIENT_ID, "tooshort-secret")
    assert "tooshort-secret" not in str(info.value)


async def test_short_client_id_nul_padded_round_trip(store):
    store.register_submitted(JOB)
    app = create_webhook_app(store, SHORT_CLIENT_ID, CLIENT_SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        assert (await c.post("/webhook", json=body_for(client_id=SHORT_CLIENT_ID))).status_code == 200


async def test_database_failure_answers_503_so_akool_retries(client, app, store, monkeypatch, caplog):
    import sqlalchemy.exc

    def broken(candidates, **kwargs):
        raise sqlalchemy.exc.OperationalError("INSERT ...", {"event_json": "plaintext-xyz"}, Exception("disk I/O"))

    monkeypatch.setattr(store, "ingest_many", broken)
    resp = await client.post("/webhook", json=body_for())
    assert resp.status_code == 503 and app.state.stats["store_error"] == 1
    assert "OperationalError" in caplog.text and "plaintext-xyz" not in caplog.text


async def test_mountable_under_a_prefix_like_the_airflow_plugin_does(store):
    from fastapi import FastAPI

    store.register_submitted(JOB)
    host = FastAPI()
    host.mount("/akool", create_webhook_app(store, CLIENT_ID, CLIENT_SECRET, path_token=TOKEN))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=host), base_url="http://t") as c:
        assert (await c.post(f"/akool/webhook/{TOKEN}", json=body_for())).status_code == 200
        assert (await c.get("/akool/healthz")).status_code == 200
    assert store.latest(JOB) is not None
