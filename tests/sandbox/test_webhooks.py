"""Webhook callbacks as the docs' Webhook page describes, checked with akool_flows.webhook."""

from __future__ import annotations

import json
import time
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from akool_flows.sandbox import Sandbox, SandboxConfig

from .conftest import EXAMPLES, FAST, ok_data, wait_for

webhook = pytest.importorskip("akool_flows.webhook", reason="akool_flows.webhook (crypto) is not available")


class Receiver:
    """A tiny webhook endpoint on 127.0.0.1 that answers 500 to the first ``fail_first`` calls."""

    def __init__(self, fail_first: int = 0, status: int = 200) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.calls = 0
        self.fail_first = fail_first
        self.status = status
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.calls += 1
                code = 500 if receiver.calls <= receiver.fail_first else receiver.status
                if code == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/akool/webhook"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _decrypt(sb: Sandbox, body: dict[str, Any]) -> dict[str, Any]:
    assert set(body) == {"signature", "dataEncrypt", "timestamp", "nonce"}
    assert isinstance(body["timestamp"], int)
    event = webhook.verify_and_decrypt(body, sb.client_id, sb.client_secret)  # raises on a bad signature
    payload = json.loads(webhook.decrypt(body["dataEncrypt"], sb.client_id, sb.client_secret))
    assert payload["_id"] == event.job_id
    return payload


EXPECTED_TYPES = {
    "tts": "audio", "voice_clone": "audio", "background_change": "background change", "image_generate": "image",
    "faceswap_image": "faceswap", "faceswap_video": "faceswap", "reage_image": "faceswap",
    "reage_video": "faceswap", "lipsync": "lipsync", "talking_photo": "talking photo",
    "video_translation": "video translate", "talking_avatar": "avatar", "moderation": "moderation",
}


@pytest.mark.parametrize("kind", sorted(EXPECTED_TYPES))
def test_callbacks_for_processing_and_completion(sandbox: Sandbox, client: httpx.Client, receiver: Receiver,
                                                 kind: str) -> None:
    path, body = EXAMPLES[kind]
    job = ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
    wait_for(lambda: len(receiver.bodies) == 2)
    payloads = [_decrypt(sandbox, b) for b in receiver.bodies]
    assert [p["status"] for p in payloads] == [2, 3]
    assert {p["_id"] for p in payloads} == {job["_id"]}
    assert {p["type"] for p in payloads} == {EXPECTED_TYPES[kind]}
    assert set(payloads[1]) == {"_id", "status", "type", "url"}
    assert payloads[0]["url"] == ""
    if kind != "moderation":
        assert payloads[1]["url"].startswith(sandbox.base_url + "/_sandbox/files/")
        assert httpx.get(payloads[1]["url"]).status_code == 200
    # The sandbox counts a delivery once it has read the receiver's 200, just after the
    # receiver recorded the body: wait for the count rather than race it.
    wait_for(lambda: sandbox.stats()["webhooks_delivered"] == 2)


def test_failed_job_reports_status_4(sandbox: Sandbox, client: httpx.Client, receiver: Receiver) -> None:
    sandbox.configure(webhook_on_processing=False)
    path, body = EXAMPLES["tts"]
    ok_data(client.post(path, json={**body, "input_text": "sandbox-fail", "webhookUrl": receiver.url}))
    wait_for(lambda: len(receiver.bodies) == 1)
    payload = _decrypt(sandbox, receiver.bodies[0])
    assert payload["status"] == 4 and payload["url"] == ""


def test_cancelled_faceswap_reports_status_4_once(sandbox: Sandbox, client: httpx.Client,
                                                  receiver: Receiver) -> None:
    sandbox.configure(queue_seconds=0.2, job_seconds=0.4)
    path, body = EXAMPLES["faceswap_image"]
    job = ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
    ok_data(client.post("/api/open/v3/faceswap/job/del", json={"job_ids": job["job_id"]}))
    wait_for(lambda: len(receiver.bodies) == 1)
    assert _decrypt(sandbox, receiver.bodies[0])["status"] == 4
    time.sleep(0.5)  # neither the processing nor the original completion callback follows
    assert len(receiver.bodies) == 1


def test_retries_with_backoff_until_http_200() -> None:
    receiver = Receiver(fail_first=2)
    try:
        with Sandbox(SandboxConfig(**FAST, webhook_on_processing=False, webhook_retry_seconds=0.05)) as sb, \
                httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.token}"}) as client:
            path, body = EXAMPLES["moderation"]
            ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
            wait_for(lambda: sb.stats()["webhooks_delivered"] == 1)
            assert receiver.calls == 3
            [delivery] = sb.webhook_deliveries()
            assert delivery["attempts"] == 3 and delivery["delivered"] and delivery["http_status"] == 200
            assert sb.stats()["webhook_attempts"] == 3
            assert _decrypt(sb, receiver.bodies[0])["status"] == 3
    finally:
        receiver.close()


def test_gives_up_after_max_attempts() -> None:
    receiver = Receiver(status=404)
    try:
        config = SandboxConfig(**FAST, webhook_on_processing=False, webhook_retry_seconds=0.01, webhook_max_attempts=3)
        with Sandbox(config) as sb, httpx.Client(base_url=sb.base_url,
                                                 headers={"Authorization": f"Bearer {sb.token}"}) as client:
            path, body = EXAMPLES["moderation"]
            ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
            wait_for(lambda: sb.stats()["webhooks_failed"] == 1)
            assert receiver.calls == 3
            assert sb.webhook_deliveries()[0]["http_status"] == 404
    finally:
        receiver.close()


def test_unreachable_receiver_is_recorded_not_fatal() -> None:
    config = SandboxConfig(**FAST, webhook_on_processing=False, webhook_retry_seconds=0.01, webhook_max_attempts=2)
    with Sandbox(config) as sb, httpx.Client(base_url=sb.base_url,
                                             headers={"Authorization": f"Bearer {sb.token}"}) as client:
        path, body = EXAMPLES["moderation"]
        ok_data(client.post(path, json={**body, "webhookUrl": "http://127.0.0.1:9/nothing-listens"}))
        wait_for(lambda: sb.stats()["webhooks_failed"] == 1)
        assert "Error" in sb.webhook_deliveries()[0]["error"]
        assert client.get("/api/open/v3/faceswap/quota/info").json()["code"] == 1000


def test_callbacks_fire_without_anyone_polling(sandbox: Sandbox, client: httpx.Client, receiver: Receiver) -> None:
    path, body = EXAMPLES["lipsync"]
    ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
    wait_for(lambda: len(receiver.bodies) == 2)
    assert sandbox.stats()["polls"] == 0


# The Webhook page's example credentials: a 22-character clientId (cut to a 16-byte IV) and a
# 32-character clientSecret, i.e. an AES-256 key, although the page says secrets have 24.
DOCS_CLIENT_ID = "AKDt8rWEczpYPzCGur2xE="
DOCS_SECRET = "nmwUjMAK0PJpl0MOiXLOOOwZADm0gkLo"


def test_a_32_character_secret_gets_tokens_and_encrypts_callbacks(receiver: Receiver) -> None:
    config = SandboxConfig(**FAST, client_id=DOCS_CLIENT_ID, client_secret=DOCS_SECRET, webhook_on_processing=False)
    with Sandbox(config) as sb:
        answer = httpx.post(f"{sb.base_url}/api/open/v3/getToken",
                            json={"clientId": DOCS_CLIENT_ID, "clientSecret": DOCS_SECRET}).json()
        assert answer["code"] == 1000
        with httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {answer['token']}"}) as client:
            path, body = EXAMPLES["tts"]
            job = ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
            wait_for(lambda: len(receiver.bodies) == 1)
        payload = _decrypt(sb, receiver.bodies[0])  # verified and decrypted with the 32-byte key
        assert payload["_id"] == job["_id"] and payload["status"] == 3
        assert sb.env("client")["AKOOL_CLIENT_SECRET"] == DOCS_SECRET


def test_webhook_types_are_the_client_registrys(sandbox: Sandbox, client: httpx.Client,
                                               receiver: Receiver) -> None:
    from akool_flows.api.kinds import KINDS

    # The docs' Webhook page lists no type for live-avatar sessions and the create-session table
    # has no webhookUrl; Akool's LiveKit plugin sends none. Both layers say: no callback.
    assert KINDS["live_session"].webhook_type is None and not KINDS["live_session"].accepts_webhook
    assert {k: KINDS[k].webhook_type for k in EXPECTED_TYPES} == EXPECTED_TYPES
    sandbox.configure(session_time_scale=0.1 / 600)
    path, body = EXAMPLES["live_session"]
    # Some of the docs' code samples send webhookUrl anyway: accepted, and never called.
    session = ok_data(client.post(path, json={**body, "webhookUrl": receiver.url}))
    tts_path, tts_body = EXAMPLES["tts"]
    ok_data(client.post(tts_path, json={**tts_body, "webhookUrl": receiver.url}))
    wait_for(lambda: len(receiver.bodies) == 2 and sandbox.job_payload(session["_id"])["status"] == 3)
    time.sleep(0.1)
    assert {_decrypt(sandbox, b)["type"] for b in receiver.bodies} == {"audio"}
    assert not any(d["kind"] == "live_session" for d in sandbox.webhook_deliveries())
