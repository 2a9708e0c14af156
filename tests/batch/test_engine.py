"""The engine against the sandbox: outcomes, resume, budget, balance, timeouts, cancel, results files."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import pandas as pd
import pytest

from akool_flows.batch import BudgetError, LedgerError, Progress, arun_batch, plan_batch, run_batch
from akool_flows.batch.ledger import Ledger

from .conftest import MOD, make_client, texts


def test_every_row_accounted_for(sandbox, client, ledger_path):
    df = pd.DataFrame({"text": ["Have a nice day", "I will kill you", "", "sandbox-fail this one",
                                "Have a nice day", "=1+2"]})
    seen: list[Progress] = []
    r = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, progress=seen.append, **MOD)
    res = r.results
    assert len(res) == 6 and list(res["input_index"]) == list(range(6))
    assert list(res["outcome"]) == ["completed", "completed", "rejected", "failed", "completed", "completed"]
    assert list(res["conclusion"][:2]) == ["Compliant", "Non-Compliant"]
    assert res.loc[3, "error_code"] == 1212 and "Sentiment analysis fails" in res.loc[3, "error_message"]
    # The identical row 4 was not sent again but carries row 0's verdict, job and half its cost.
    assert res.loc[4, "duplicate_of"] == 0 and res.loc[4, "note"].startswith("duplicate of input row 0")
    assert res.loc[4, "conclusion"] == "Compliant" and res.loc[4, "job_id"] == res.loc[0, "job_id"]
    assert res.loc[4, "credits"] == pytest.approx(res.loc[0, "credits"]) == pytest.approx(0.05)
    assert res["text"].tolist() == df["text"].tolist()  # input columns carried
    assert r.summary["counts"] == {"completed": 4, "failed": 1, "rejected": 1, "cancelled": 0, "uncertain": 0,
                                   "timed_out": 0, "submitted": 0}
    assert r.summary["exit_status"] == 1
    assert sandbox.create_count("moderation") == 4 and sandbox.duplicate_creates() == {}
    assert seen[-1].done and seen[-1].completed == 4 and seen[-1].total == 6
    total = r.cost_log.iloc[-1]
    assert total["row_key"] == "TOTAL" and total["credits"] == pytest.approx(0.3)
    json.dumps(r.summary)


def test_rerun_resumes_without_creating_or_touching_finished_rows(sandbox, client, ledger_path):
    df = texts(40)
    first = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert first.summary["counts"]["completed"] == 40
    stats = sandbox.stats()
    second = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert second.summary["counts"]["completed"] == 40
    assert sandbox.create_count() == 40
    assert sandbox.stats()["polls"] == stats["polls"]  # finished rows are not polled again
    assert list(second.results["job_id"]) == list(first.results["job_id"])
    assert second.summary["batch_id"] == first.summary["batch_id"]


def test_running_jobs_are_polled_after_a_restart(sandbox, ledger_path):
    """A run cancelled while jobs run leaves them running (not waited for); the rerun collects
    them, no new create."""
    sandbox.configure(job_seconds=1.0)
    df = texts(20)
    cancel = threading.Event()

    def stop_when_submitted(p: Progress) -> None:
        if p.submitted >= 20:
            cancel.set()

    c = make_client(sandbox, sync=True)
    r1 = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, progress=stop_when_submitted,
                   cancel=cancel, **MOD)
    assert r1.summary["counts"]["submitted"] == 20 and r1.summary["stopped_by"] == "cancel"
    assert r1.summary["exit_status"] == 1
    assert "rerun to collect" in r1.results["note"][0]
    r2 = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert r2.summary["counts"]["completed"] == 20
    assert sandbox.create_count() == 20 and sandbox.duplicate_creates() == {}


def test_cancel_stops_submitting_rest_is_cancelled_and_resumable(sandbox, ledger_path):
    df = texts(200)
    cancel = threading.Event()
    c = make_client(sandbox, sync=True)

    def progress(p: Progress) -> None:
        if p.submitted >= 1:
            cancel.set()

    r = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, concurrency=2,
                  max_requests_per_second=50, progress=progress, cancel=cancel, **MOD)
    counts = r.summary["counts"]
    assert counts["cancelled"] > 100
    assert sum(counts.values()) == 200
    created = sandbox.create_count()
    assert created < 100
    r2 = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert r2.summary["counts"]["completed"] == 200
    assert sandbox.create_count() == 200 and sandbox.duplicate_creates() == {}


def test_budget_stops_submission_before_it_is_exceeded(sandbox, client, ledger_path):
    df = texts(50)  # 0.1 credit each
    r = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, budget_credits=1.25, **MOD)
    assert r.summary["stopped_by"] == "budget" and r.summary["exit_status"] == 3
    assert r.summary["counts"]["completed"] == 12 and r.summary["counts"]["cancelled"] == 38
    assert r.summary["credits"] <= 1.25
    assert sandbox.create_count() == 12
    assert "not submitted" in r.results.query("outcome == 'cancelled'")["error_message"].iloc[0]
    # A bigger budget continues where it stopped (the budget counts the whole batch).
    r2 = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, budget_credits=5, **MOD)
    assert r2.summary["counts"]["completed"] == 50 and sandbox.create_count() == 50
    assert r2.summary["stopped_by"] is None


def test_account_balance_caps_the_budget(sandbox, client, ledger_path):
    sandbox.set_credits(0.55)
    r = run_batch(texts(20), "moderation", client=client, ledger=ledger_path, poll_interval=0.1,
                  budget_credits=100, **MOD)
    assert r.summary["balance_before"] == pytest.approx(0.55)
    assert r.summary["counts"]["completed"] == 5 and r.summary["stopped_by"] == "budget"
    assert sandbox.stats()["rejected_by_code"] == {}  # never hit "insufficient credits"


def test_out_of_credits_without_budget_stops_as_quota(sandbox, client, ledger_path):
    sandbox.set_credits(0.35)
    r = run_batch(texts(20), "moderation", client=client, ledger=ledger_path, poll_interval=0.1, concurrency=1, **MOD)
    assert r.summary["stopped_by"] == "quota" and r.summary["exit_status"] == 3
    assert r.summary["counts"]["completed"] == 3
    assert r.summary["counts"]["cancelled"] == 17
    with Ledger(ledger_path) as led:  # the refused row stays pending: a rerun after a top-up submits it
        states = [row.state for row in led.rows(r.summary["batch_id"]).values()]
    assert states.count("pending") == 17


def test_budget_needs_a_price(sandbox, client, ledger_path):
    df = pd.DataFrame({"talking_photo_url": ["https://x.example/p.jpg"], "audio_url": ["https://x.example/a.mp3"]})
    with pytest.raises(BudgetError, match=r"cost_table=\{'talking_photo'"):
        run_batch(df, "talking_photo", client=client, ledger=ledger_path, budget_credits=10)
    assert sandbox.create_count() == 0
    r = run_batch(df, "talking_photo", client=client, ledger=ledger_path, budget_credits=10, poll_interval=0.1,
                  cost_table={"talking_photo": 2})
    assert r.summary["counts"]["completed"] == 1


def test_bad_credentials_stop_with_auth(sandbox, ledger_path):
    from akool_flows.api import AkoolClient

    bad = AkoolClient(base_url=sandbox.base_url, token="wrong-token")
    r = run_batch(texts(5), "moderation", client=bad, ledger=ledger_path, **MOD)
    assert r.summary["stopped_by"] == "auth" and r.summary["exit_status"] == 2
    assert set(r.results["outcome"]) == {"cancelled"}
    assert "wrong-token" not in r.results.to_csv()


def test_job_timeout_then_rerun_collects(sandbox, client, ledger_path):
    sandbox.configure(job_seconds=1.5)
    df = texts(3)
    r = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, job_timeout=0.3, **MOD)
    assert set(r.results["outcome"]) == {"timed_out"}
    assert r.results["job_id"].notna().all()
    time.sleep(1.3)
    r2 = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert set(r2.results["outcome"]) == {"completed"} and sandbox.create_count() == 3


def test_batch_polling_uses_listbyids(sandbox, ledger_path):
    face = {"path": "https://example.com/face.png", "opts": "262,175:363,175:313,215:272,279"}
    df = pd.DataFrame({"modifyImage": [f"https://example.com/m{i}.jpg" for i in range(150)]})
    c = make_client(sandbox, sync=True)
    r = run_batch(df, "faceswap_image", client=c, ledger=ledger_path, poll_interval=0.2, concurrency=16,
                  defaults={"sourceImage": [face], "targetImage": [face]})
    assert r.summary["counts"]["completed"] == 150
    polls = sandbox.stats()["polls"]
    # 150 jobs answered by a few dozen listbyids calls at most (one call per job would be >= 150;
    # creates are paced by the rate controller, so jobs finish over ~2 s of 0.2 s polls)
    assert polls <= 50, polls
    assert r.results["result_url"].str.startswith(sandbox.base_url).all()


def test_results_file_is_written_as_rows_finish_and_in_full(sandbox, client, ledger_path, tmp_path):
    out = tmp_path / "out" / "results.csv"
    df = pd.DataFrame({"text": ["=HYPERLINK(\"http://x\")", "+1", "@SUM(A1)", "-2", "plain"]})
    r = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, results_path=out, **MOD)
    back = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert len(back) == 5 and list(back["outcome"]) == ["completed"] * 5
    assert list(back["text"]) == ["'=HYPERLINK(\"http://x\")", "'+1", "'@SUM(A1)", "'-2", "plain"]
    pq = tmp_path / "results.parquet"
    r.to_parquet(pq)
    assert len(pd.read_parquet(pq)) == 5
    r.to_csv(tmp_path / "again.csv")
    assert (tmp_path / "again.csv").read_text().count("'=HYPERLINK") == 1


def test_incremental_results_survive_a_crash(sandbox, ledger_path, tmp_path):
    """Rows are appended to the results CSV while the run goes (here: cancelled mid-way)."""
    sandbox.configure(job_seconds=0.05, queue_seconds=0.0)
    out = tmp_path / "results.csv"
    partial = tmp_path / "results.csv.partial.csv"
    seen: list[int] = []

    async def go():
        c = make_client(sandbox)
        task = asyncio.ensure_future(arun_batch(texts(300), "moderation", client=c, ledger=ledger_path,
                                                poll_interval=0.05, concurrency=4, results_path=out,
                                                max_requests_per_second=200, **MOD))
        while True:
            await asyncio.sleep(0.1)
            if partial.exists() and partial.read_text().count("completed") >= 10:
                break
        assert not out.exists()  # the results path itself is only ever written whole, at the end
        seen.append(partial.read_text().count("completed"))
        task.cancel()  # like a kill: no final write
        with pytest.raises(asyncio.CancelledError):
            await task
        await c.aclose()

    asyncio.run(go())
    assert seen[0] >= 10
    assert pd.read_csv(partial)["outcome"].eq("completed").sum() >= 10


def test_reuse_across_batches_and_endpoint_guard(sandbox, client, ledger_path):
    df = texts(10)
    run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, **MOD)
    # One more row: a new batch id, but the ten identical requests are not paid again.
    bigger = texts(11)
    r = run_batch(bigger, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert r.summary["counts"]["completed"] == 11 and sandbox.create_count() == 11
    assert r.results["note"].str.contains("same request as batch").sum() == 10
    # The same batch id against another API is refused: its job ids mean nothing there.
    from akool_flows.api import AkoolClient

    other = AkoolClient(base_url="http://127.0.0.1:9", token="x")
    with pytest.raises(LedgerError, match="ran against"):
        run_batch(bigger, "moderation", client=other, ledger=ledger_path, batch_id=r.summary["batch_id"], **MOD)


def test_a_second_live_runner_is_refused(sandbox, client, ledger_path):
    plan = plan_batch(texts(3), "moderation", **MOD)
    with Ledger(ledger_path) as led:
        led.begin_batch("shared", "moderation", [], endpoint=sandbox.base_url)
        other = Ledger(ledger_path)
        other.acquire("shared")  # a live holder (this very process, another ledger handle)
        with pytest.raises(Exception, match="another run holds batch"):
            run_batch(plan, client=client, ledger=ledger_path, batch_id="shared")
        other.release("shared")
        other.close()
    assert run_batch(plan, client=client, ledger=ledger_path, batch_id="shared",
                     poll_interval=0.1).summary["counts"]["completed"] == 3


def test_run_batch_works_inside_a_running_loop(sandbox, ledger_path):
    async def notebook_cell():
        c = make_client(sandbox, sync=True)
        return run_batch(texts(3), "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)

    assert asyncio.run(notebook_cell()).summary["counts"]["completed"] == 3


def test_bad_options_are_named(client, ledger_path):
    df = texts(1)
    for kwargs, match in (({"concurrency": 0}, "concurrency must be an integer >= 1"),
                          ({"poll_interval": -1}, "poll_interval must be a number > 0"),
                          ({"budget_credits": "10"}, "budget_credits must be a number"),
                          ({"webhook_url": "ftp://x"}, "webhook_url must be an http"),
                          ({"cancel": object()}, "cancel must be a threading.Event")):
        with pytest.raises(Exception, match=match):
            run_batch(df, "moderation", client=client, ledger=ledger_path, **kwargs, **MOD)
    with pytest.raises(Exception, match="kind is required"):
        run_batch(df, client=client, ledger=ledger_path)


def test_ledger_records_intent_before_the_call(sandbox, ledger_path):
    """While a create is held by the server, the ledger already says `intent` with its time."""
    sandbox.faults.slow(1.0, next=1, path_prefix="/api/open/v3/content/analysis/sentiment")
    states: list[str] = []

    async def go():
        c = make_client(sandbox)
        task = asyncio.ensure_future(arun_batch(texts(1), "moderation", client=c, ledger=ledger_path,
                                                poll_interval=0.1, **MOD))
        await asyncio.sleep(0.5)
        con = sqlite3.connect(ledger_path)
        states.extend(s for (s,) in con.execute("SELECT state FROM jobs"))
        con.close()
        r = await task
        await c.aclose()
        return r

    r = asyncio.run(go())
    assert states == ["intent"]
    assert r.summary["counts"]["completed"] == 1


def test_parquet_results_path_keeps_a_partial_csv_until_the_end(sandbox, client, ledger_path, tmp_path):
    out = tmp_path / "r.parquet"
    r = run_batch(texts(5), "moderation", client=client, ledger=ledger_path, poll_interval=0.1, results_path=out,
                  **MOD)
    back = pd.read_parquet(out)
    assert len(back) == 5 and set(back["outcome"]) == {"completed"}
    assert not (tmp_path / "r.parquet.partial.csv").exists()
    assert r.summary["results_path"] == str(out)


def test_refused_creates_are_retried_later_then_left_pending(sandbox, ledger_path, monkeypatch):
    """1005 beyond the client's own retries: the engine tries again later, never counts it as created."""
    monkeypatch.setattr("akool_flows.batch.creates.refusal_backoff", lambda n: 0.02 * 2**n)
    sandbox.faults.rate_limit(next=40, path_prefix="/api/open/v3/content/analysis/sentiment")
    from akool_flows.api import RetryPolicy

    c = make_client(sandbox, sync=True, retry=RetryPolicy(max_attempts=1))
    r = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, poll_interval=0.1, concurrency=1, **MOD)
    counts = r.summary["counts"]
    assert counts["failed"] + counts["completed"] == 3 and sandbox.duplicate_creates() == {}
    refused = r.results[r.results["outcome"] == "failed"]
    assert refused["error_message"].str.contains("try again later").all()
    assert refused["job_id"].isna().all()
    sandbox.faults.clear()
    r2 = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert r2.summary["counts"]["completed"] == 3 and sandbox.create_count() == 3
