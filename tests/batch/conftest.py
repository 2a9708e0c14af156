"""Fixtures: a real sandbox on a localhost socket, clients with short timeouts, helpers."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from akool_flows.api import AkoolClient, AsyncAkoolClient, RetryPolicy
from akool_flows.sandbox import Sandbox, SandboxConfig

CLI = str(Path(sys.executable).with_name("akool-flows"))
FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(queue_seconds=0.05, job_seconds=0.3)) as sb:
        yield sb


def make_client(sb: Sandbox, *, timeout: float = 5.0, sync: bool = False, **kw):
    cls = AkoolClient if sync else AsyncAkoolClient
    return cls(base_url=sb.base_url, detect_url=sb.detect_url, token=sb.token, timeout=timeout,
               retry=kw.pop("retry", FAST_RETRY), **kw)


@pytest.fixture
def client(sandbox):
    """A sync client (run_batch makes its async twin)."""
    c = make_client(sandbox, sync=True)
    yield c
    c.close()


@pytest.fixture
def ledger_path(tmp_path):
    return tmp_path / "ledger.sqlite"


def texts(n: int, prefix: str = "comment") -> pd.DataFrame:
    return pd.DataFrame({"text": [f"{prefix} number {i}, have a nice day" for i in range(n)]})


MOD = {"columns": {"content": "text"}, "defaults": {"type": 4, "language": "en"}}


@pytest.fixture
def receiver(sandbox, tmp_path, serve_asgi):
    """The webhook receiver (uvicorn on a socket) with its event store."""
    from akool_flows.webhook import WebhookEventStore, create_webhook_app

    store = WebhookEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}", poll_interval=0.05)
    app = create_webhook_app(store, sandbox.client_id, sandbox.client_secret, path_token="t" * 40)
    yield store, f"{serve_asgi(app)}/webhook/{'t' * 40}"
    store.close()


@pytest.fixture
def sandbox_process(tmp_path):
    """A sandbox in its own process (CLI runs in other processes talk to it); yields the env."""
    port = free_port()
    env_file = tmp_path / "sandbox.env"
    proc = subprocess.Popen([CLI, "sandbox", "--port", str(port), "--job-seconds", "1.0", "--latency", "0.04",
                             "--write-env", str(env_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not env_file.exists() or not env_file.read_text().strip():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "sandbox did not start"
        time.sleep(0.05)
    env = dict(os.environ)
    for line in env_file.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    for key in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET"):
        env.pop(key, None)  # the token is enough
    yield env
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(autouse=True)
def _private_state_dir(tmp_path_factory, monkeypatch):
    """The CLI's default ledgers go to a state dir of the test's own, never the user's home."""
    monkeypatch.setenv("AKOOL_FLOWS_STATE_DIR", str(tmp_path_factory.mktemp("state")))


def sandbox_stats(base_url: str) -> dict:
    """The admin stats of a sandbox in another process (creates, duplicate creates, polls)."""
    with urllib.request.urlopen(f"{base_url}/_sandbox/stats", timeout=5) as resp:
        return json.load(resp)


def ledger_states(path: Path) -> dict[str, int]:
    """Rows per state of a ledger another process is writing ({} until it exists)."""
    if not path.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.OperationalError:
        return {}
    try:
        return dict(con.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    except sqlite3.OperationalError:
        return {}
    finally:
        con.close()


@pytest.fixture
def sandbox_env(monkeypatch):
    """A sandbox reached like the real API (AKOOL_* variables set, other credentials cleared)."""
    for name in ("AKOOL_API_TOKEN", "AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    with Sandbox(SandboxConfig(queue_seconds=0.05, job_seconds=0.1)) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb
