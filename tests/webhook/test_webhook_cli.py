"""`akool-flows webhook serve`: a real uvicorn process receiving a real callback."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from akool_flows.cli import main
from akool_flows.webhook import WebhookEventStore, build_webhook_body

from .conftest import CLIENT_ID, CLIENT_SECRET

TOKEN = "cli-test-path-token-0123456789"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_refuses_to_start_without_env_credentials(monkeypatch, capsys):
    monkeypatch.delenv("AKOOL_CLIENT_ID", raising=False)
    monkeypatch.delenv("AKOOL_CLIENT_SECRET", raising=False)
    assert main(["webhook", "serve", "--port", "1"]) == 2
    assert "AKOOL_CLIENT_SECRET" in capsys.readouterr().err


def test_secret_is_not_an_option():
    with pytest.raises(SystemExit):
        main(["webhook", "serve", "--port", "1", "--client-secret", "x"])


def test_bad_secret_fails_fast_without_echo_or_leftover_db(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("AKOOL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AKOOL_CLIENT_SECRET", "nineteen-char-secre")
    db = tmp_path / "x.sqlite"
    assert main(["webhook", "serve", "--port", "1", "--store", f"sqlite:///{db}"]) == 2
    err = capsys.readouterr().err
    assert "client_secret must be 16, 24 or 32 bytes" in err and "nineteen-char-secre" not in err
    assert not db.exists()


def test_serve_receives_a_callback_end_to_end(tmp_path):
    db = f"sqlite:///{tmp_path / 'events.sqlite'}"
    with WebhookEventStore(db) as store:
        store.register_submitted("job-1", kind="tts")
    port = _free_port()
    env = {**os.environ, "AKOOL_CLIENT_ID": CLIENT_ID, "AKOOL_CLIENT_SECRET": CLIENT_SECRET}
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from akool_flows.cli import main; sys.exit(main())", "webhook", "serve", "--port", str(port),
         "--store", db, "--path-token", TOKEN],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:  # bounded wait for the server to come up
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None, "server exited early"
            assert time.monotonic() < deadline, "server did not start within 20 s"
            time.sleep(0.1)
        body = build_webhook_body({"_id": "job-1", "status": 3, "type": "audio", "url": "https://r/a.mp3"}, CLIENT_ID, CLIENT_SECRET)
        assert httpx.post(f"{base}/webhook/{TOKEN}", json=body).status_code == 200
        assert httpx.post(f"{base}/webhook/{TOKEN}", json=body).status_code == 200  # retry
        forged = build_webhook_body({"_id": "job-2", "status": 3}, CLIENT_ID, CLIENT_SECRET)
        assert httpx.post(f"{base}/webhook/{TOKEN}", json=forged).status_code == 400
        assert httpx.post(f"{base}/webhook", json=body).status_code == 404
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    with WebhookEventStore(db) as store:
        events = store.events("job-1")
        assert len(events) == 1 and events[0].url == "https://r/a.mp3"
        assert store.latest("job-2") is None
    assert CLIENT_SECRET not in output
    assert TOKEN not in output  # no access log lines carrying the path
    assert "stored: job job-1 status 3" in output and "duplicate: job job-1" in output
    assert "rejected: job id was not submitted" in output and "job-2" not in output
