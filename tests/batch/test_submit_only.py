"""``run_batch(wait=False)``: submit every row once, make no status call, collect in a later run."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from akool_flows.batch import BatchInputError, Ledger, run_batch

from .conftest import MOD, make_client, texts

CREATE = "/api/open/v3/content/analysis/sentiment"


def _run(sandbox, ledger_path, df, **kw):
    c = make_client(sandbox, sync=True)
    try:
        return run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD, **kw)
    finally:
        c.close()


def test_submit_only_then_collect(sandbox, ledger_path):
    df = pd.concat([texts(20), pd.DataFrame({"text": ["", "   "]})], ignore_index=True)  # two rejected rows
    seen = []
    r = _run(sandbox, ledger_path, df, wait=False, progress=seen.append)
    counts = r.summary["counts"]
    assert counts["submitted"] == 20 and counts["rejected"] == 2 and sum(counts.values()) == 22
    assert sandbox.create_count() == 20 and sandbox.duplicate_creates() == {}
    assert sandbox.stats()["polls"] == 0
    sub = r.results[r.results["outcome"] == "submitted"]
    assert sub["job_id"].notna().all() and sub["submitted_at"].notna().all() and sub["finished_at"].isna().all()
    assert r.summary["exit_status"] == 0 and r.summary["submitted"] == 20
    # Running jobs will be charged: the cost log counts their estimate.
    costs = r.cost_log[r.cost_log["outcome"] == "submitted"]
    assert (costs["credits_source"] == "estimated").all() and (costs["credits"] > 0).all()
    last = seen[-1]
    assert last.done and last.left_running == 20 and last.finished == 22 and last.in_flight == 0
    assert "20 submitted, not waited for" in last.line()
    with Ledger(ledger_path) as led:
        assert {row.state for row in led.rows(r.summary["batch_id"]).values()} == {"submitted"}

    again = _run(sandbox, ledger_path, df, wait=False)  # a second submit pass: nothing new to send
    assert again.summary["counts"]["submitted"] == 20 and sandbox.create_count() == 20
    assert sandbox.stats()["polls"] == 0

    done = _run(sandbox, ledger_path, df)  # wait=True: polls the same jobs to completion
    assert done.summary["counts"]["completed"] == 20 and done.summary["counts"]["submitted"] == 0
    assert list(done.results["job_id"].dropna()) == list(sub["job_id"])
    assert sandbox.create_count() == 20 and sandbox.duplicate_creates() == {}
    assert sandbox.stats()["polls"] > 0 and done.summary["exit_status"] == 0

    polls = sandbox.stats()["polls"]
    kept = _run(sandbox, ledger_path, df, wait=False)  # finished rows keep their outcome
    assert kept.summary["counts"]["completed"] == 20 and kept.summary["counts"]["submitted"] == 0
    assert sandbox.create_count() == 20 and sandbox.stats()["polls"] == polls


def test_a_collecting_run_polls_jobs_of_an_earlier_run_at_once(sandbox, ledger_path):
    # A job sent by an earlier run has been running since then: the run that collects it asks at
    # once instead of waiting a poll interval as for a job it just created (reconcile hands the
    # scheduler the ledger's submitted_at).
    _run(sandbox, ledger_path, texts(3), wait=False)
    time.sleep(0.6)  # the sandbox's jobs finish 0.35 s after creation
    c = make_client(sandbox, sync=True)
    try:
        t0 = time.monotonic()
        done = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, poll_interval=20, **MOD)
        elapsed = time.monotonic() - t0
    finally:
        c.close()
    assert done.summary["counts"]["completed"] == 3 and sandbox.create_count() == 3
    assert elapsed < 10, f"the first poll waited a poll interval: {elapsed:.1f} s"


def test_uncertain_creates_are_handled_the_same_without_waiting(sandbox, ledger_path):
    sandbox.faults.drop_after_create(next=3, path_prefix=CREATE)
    r = _run(sandbox, ledger_path, texts(20), wait=False, concurrency=1)
    counts = r.summary["counts"]
    assert counts["uncertain"] == 3 and counts["submitted"] == 17
    unc = r.results[r.results["outcome"] == "uncertain"]
    assert unc["attempt_at"].notna().all() and unc["job_id"].isna().all()
    assert unc["error_message"].str.contains("resubmit only with resubmit_uncertain").all()
    assert r.summary["exit_status"] == 1
    assert sandbox.create_count() == 20 and sandbox.stats()["polls"] == 0  # the dropped creates did happen

    done = _run(sandbox, ledger_path, texts(20))  # uncertain rows are not resubmitted on their own
    assert done.summary["counts"]["completed"] == 17 and done.summary["counts"]["uncertain"] == 3
    assert sandbox.create_count() == 20 and sandbox.duplicate_creates() == {}


def test_wait_must_be_a_bool(sandbox, ledger_path):
    with pytest.raises(BatchInputError, match="wait must be True or False") as err:
        _run(sandbox, ledger_path, texts(2), wait="no")
    assert err.value.field == "wait"
    assert sandbox.create_count() == 0
