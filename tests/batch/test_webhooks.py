"""Completion by webhook: the real receiver + event store, with polling only as the fallback."""

from __future__ import annotations

import pandas as pd

from akool_flows.batch import run_batch

from .conftest import MOD, texts


def test_jobs_complete_from_events_without_polls(sandbox, client, ledger_path, receiver):
    store, url = receiver
    df = pd.DataFrame({"talking_photo_url": [f"https://example.com/p{i}.jpg" for i in range(20)],
                       "audio_url": ["https://example.com/a.mp3"] * 20})
    # A poll interval far beyond the job time: only events can finish this quickly.
    r = run_batch(df, "talking_photo", client=client, ledger=ledger_path, poll_interval=30, events=store,
                  webhook_url=url)
    assert set(r.results["outcome"]) == {"completed"}
    assert r.results["result_url"].str.startswith(sandbox.base_url).all()
    assert r.summary["wall_seconds"] < 10
    stats = sandbox.stats()
    # Akool's callback carries no cost (docs: {_id, status, type, url}): exactly one status call
    # per job fetches it, and no further polling.
    assert stats["polls"] == 20, stats["polls_by_path"]
    assert r.results["credits"].notna().all() and (r.results["credits"] > 0).all()
    assert r.summary["api_calls"] == 41  # 20 creates + 20 status calls + the balance check
    assert all(store.is_submitted(j) for j in r.results["job_id"])


def test_moderation_event_then_one_fetch_of_the_verdict(sandbox, client, ledger_path, receiver):
    """Moderation webhooks carry no verdict (docs: {_id, status, type, url}): one status call each."""
    store, url = receiver
    r = run_batch(texts(10), "moderation", client=client, ledger=ledger_path, poll_interval=30, events=store,
                  webhook_url=url, **MOD)
    assert set(r.results["outcome"]) == {"completed"} and r.results["conclusion"].notna().all()
    assert sandbox.stats()["polls"] == 10


def test_failed_job_by_event_and_lost_webhooks_fall_back_to_polling(sandbox, client, ledger_path, receiver):
    store, url = receiver
    df = pd.DataFrame({"talking_photo_url": ["https://example.com/sandbox-fail.jpg", "https://example.com/ok.jpg"],
                       "audio_url": ["https://example.com/a.mp3"] * 2})
    r = run_batch(df, "talking_photo", client=client, ledger=ledger_path, poll_interval=30, events=store,
                  webhook_url=url)
    assert list(r.results["outcome"]) == ["failed", "completed"]
    # Webhooks to a dead URL never arrive: the poll fallback still finishes every job.
    r2 = run_batch(texts(5), "moderation", client=client, ledger=ledger_path, poll_interval=0.3, events=store,
                   webhook_url="http://127.0.0.1:9/nothing-listens", event_fallback_interval=0.3, **MOD)
    assert set(r2.results["outcome"]) == {"completed"}
