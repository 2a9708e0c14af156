"""Every batch create carries its own signed callback path, so a run killed while its creates were
in flight loses nothing: the jobs' callbacks name the rows, and the rerun attaches them."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time

import pandas as pd
import pytest

from akool_flows.batch.reconcile import batch_intent_key
from akool_flows.webhook import WebhookEventStore, create_webhook_app

from .conftest import CLI, ledger_states

CREATE = "/api/open/v3/content/analysis/sentiment"
PATH_TOKEN = "p" * 40


def _rows_in(ledger, state: str) -> list[str]:
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as con:
        return [k for (k,) in con.execute("SELECT row_key FROM jobs WHERE state = ?", (state,))]


@pytest.mark.slow
@pytest.mark.parametrize("auth", ["token", "api_key"])
def test_killed_mid_submission_the_rerun_resolves_uncertain_rows_from_their_callbacks(
        sandbox, tmp_path, serve_asgi, auth):
    store = WebhookEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}", poll_interval=0.05)
    app = create_webhook_app(store, sandbox.client_id, sandbox.client_secret, path_token=PATH_TOKEN)
    webhook_url = f"{serve_asgi(app)}/webhook/{PATH_TOKEN}"
    # Authenticated by token or API key; the clientSecret is there because the receiver's key pair is
    # the account's, and it is what signs each create's callback path.
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}, **sandbox.env(auth),
           "AKOOL_CLIENT_ID": sandbox.client_id, "AKOOL_CLIENT_SECRET": sandbox.client_secret}
    pd.DataFrame({"text": [f"killed comment {i}" for i in range(8)]}).to_csv(tmp_path / "in.csv", index=False)
    ledger = tmp_path / "ledger.sqlite"
    cmd = [CLI, "moderate", str(tmp_path / "in.csv"), "--column", "text", "--type", "text", "--ledger", str(ledger),
           "--poll-interval", "0.2", "--concurrency", "4", "--webhook-url", webhook_url,
           "--events", f"sqlite:///{tmp_path / 'events.sqlite'}", "--out", str(tmp_path / "out.csv")]
    # The first three creates are made (and charged) but answered only after 60 s: the run dies first.
    sandbox.faults.slow(60.0, next=3, path_prefix=CREATE, after_processing=True)
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (sandbox.create_count() == 8 and ledger_states(ledger).get("intent") == 3
               and len(_rows_in(ledger, "completed") + _rows_in(ledger, "submitted")) == 5):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    out1, err1 = first.communicate(timeout=30)
    lost = _rows_in(ledger, "intent")
    assert len(lost) == 3

    # The three jobs finish on Akool and call their creates' own paths back.
    keys = [batch_intent_key(k) for k in lost]
    deadline = time.monotonic() + 30
    while len(store.jobs_for_intents(keys)) < 3:
        assert time.monotonic() < deadline, "the callbacks of the lost creates never arrived"
        time.sleep(0.1)
    orphans = set(store.jobs_for_intents(keys).values())
    assert orphans <= {j["_id"] for j in sandbox.jobs("moderation")}

    sandbox.faults.clear()
    second = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    assert second.returncode == 0, second.stderr.decode()
    results = pd.read_csv(tmp_path / "out.csv")
    assert results["outcome"].tolist() == ["completed"] * 8
    assert orphans <= set(results["job_id"])
    assert sandbox.create_count() == 8 and sandbox.duplicate_creates() == {}  # nothing paid twice
    # The secret that signs the paths is in no output, results or ledger file.
    secret = sandbox.client_secret.encode()
    for blob in (out1, err1, second.stdout, second.stderr, (tmp_path / "out.csv").read_bytes(),
                 ledger.read_bytes()):
        assert secret not in blob
    store.close()


def test_killed_while_creates_wait_for_their_turn_the_rerun_submits_those_rows_by_itself(sandbox, tmp_path):
    """Intents are recorded, then the requests wait for the pace (--rps): the run dies with rows
    claimed whose requests never reached the transport. Nothing can exist for them, so the rerun
    submits them (they used to come back `uncertain`, refusing to pay without consent)."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}, **sandbox.env("token")}
    pd.DataFrame({"text": [f"never sent {i}" for i in range(6)]}).to_csv(tmp_path / "in.csv", index=False)
    ledger = tmp_path / "ledger.sqlite"
    cmd = [CLI, "moderate", str(tmp_path / "in.csv"), "--column", "text", "--type", "text", "--ledger", str(ledger),
           "--poll-interval", "0.2", "--concurrency", "4", "--out", str(tmp_path / "out.csv")]
    first = subprocess.Popen([*cmd, "--rps", "0.05"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while ledger_states(ledger).get("intent", 0) < 3 or not _rows_in(ledger, "completed") + _rows_in(ledger, "submitted"):
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate(timeout=30)
    sent_before = sandbox.create_count()
    assert sent_before <= 1  # the first request had its slot; the others were waiting for theirs

    second = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
    results = pd.read_csv(tmp_path / "out.csv")
    assert second.returncode == 0, (second.stderr.decode(), results.to_dict("records"))
    assert results["outcome"].tolist() == ["completed"] * 6
    assert sandbox.create_count() == 6 and sandbox.duplicate_creates() == {}
