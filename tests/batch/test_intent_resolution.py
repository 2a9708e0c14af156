"""An uncertain row (its create's answer was lost) resolves from the callback to the create's own
signed path: the rerun attaches that job and pays nothing again."""

from __future__ import annotations

import httpx

from akool_flows.batch import run_batch
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.reconcile import batch_intent_key
from akool_flows.webhook import build_webhook_body
from akool_flows.webhook.app import intent_url

from .conftest import MOD, texts

CREATE = "/api/open/v3/content/analysis/sentiment"


def test_an_uncertain_row_attaches_the_job_its_callback_named(sandbox, client, ledger_path, receiver):
    store, url = receiver
    sandbox.faults.drop_after_create(next=1, path_prefix=CREATE)
    first = run_batch(texts(3), "moderation", client=client, ledger=ledger_path, poll_interval=0.2,
                      concurrency=1, **MOD)
    assert first.results["outcome"].tolist().count("uncertain") == 1
    assert sandbox.create_count() == 3
    batch_id = first.summary["batch_id"]
    known = {j for j in first.results["job_id"] if isinstance(j, str)}
    (orphan,) = [j["_id"] for j in sandbox.jobs("moderation") if j["_id"] not in known]
    with Ledger(ledger_path) as led:
        (row_key,) = [k for k, r in led.rows(batch_id).items() if r.state == "uncertain"]
    # Akool calls the create's own path back (what the create's webhookUrl would have said).
    body = build_webhook_body({"_id": orphan, "status": 3, "type": "moderation", "url": ""},
                              sandbox.client_id, sandbox.client_secret)
    answer = httpx.post(intent_url(url, batch_intent_key(row_key), sandbox.client_secret), json=body)
    assert answer.status_code == 200, answer.text
    assert store.job_for_intent(batch_intent_key(row_key)) == orphan

    second = run_batch(texts(3), "moderation", client=client, ledger=ledger_path, poll_interval=0.2,
                       events=store, **MOD)
    assert second.results["outcome"].tolist() == ["completed"] * 3
    assert orphan in set(second.results["job_id"])
    assert second.results["conclusion"].notna().all()
    assert sandbox.create_count() == 3 and sandbox.duplicate_creates() == {}  # nothing paid twice
