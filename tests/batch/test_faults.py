"""Fault injection: whatever the network does, every row ends terminal and nothing is created twice."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from akool_flows.batch import run_batch

from .conftest import MOD, make_client, texts

CREATE = "/api/open/v3/content/analysis/sentiment"
STATUS = "/api/open/v3/content/analysis/infobyid"
TERMINAL = {"completed", "failed", "rejected", "uncertain", "cancelled", "timed_out"}


def _run(sandbox, ledger_path, df=None, *, timeout=5.0, **kw):
    c = make_client(sandbox, sync=True, timeout=timeout)
    try:
        return run_batch(texts(20) if df is None else df, "moderation", client=c, ledger=ledger_path,
                         poll_interval=0.1, **MOD, **kw)
    finally:
        c.close()


@pytest.mark.parametrize("fault, outcome", [
    ("http_500", "uncertain"),        # 5xx: the server may have processed it
    ("drop_after", "uncertain"),      # created, then the connection died: the classic ambiguous window
    ("drop", "uncertain"),            # closed without an answer: indistinguishable from drop_after
    ("malformed_json", "uncertain"),  # unreadable answer: may have been processed
    ("rate_limit", "completed"),      # 1005 proves nothing was created: retried by the client
])
def test_create_faults(sandbox, ledger_path, fault, outcome):
    faults = sandbox.faults
    {"http_500": lambda: faults.http_500(next=3, path_prefix=CREATE),
     "drop_after": lambda: faults.drop_after_create(next=3, path_prefix=CREATE),
     "drop": lambda: faults.drop(next=3, path_prefix=CREATE),
     "malformed_json": lambda: faults.malformed_json(next=3, path_prefix=CREATE),
     "rate_limit": lambda: faults.rate_limit(next=3, path_prefix=CREATE)}[fault]()
    r = _run(sandbox, ledger_path, concurrency=1)
    counts = r.summary["counts"]
    if outcome == "uncertain":
        assert counts["uncertain"] == 3 and counts["completed"] == 17
        unc = r.results[r.results["outcome"] == "uncertain"]
        assert unc["attempt_at"].notna().all() and unc["job_id"].isna().all()
        assert unc["error_message"].str.contains("resubmit only with resubmit_uncertain").all()
    else:
        assert counts["completed"] == 20
    assert sandbox.duplicate_creates() == {}
    assert r.summary["exit_status"] == (1 if outcome == "uncertain" else 0)


def test_create_timeout_is_uncertain_and_never_retried(sandbox, ledger_path):
    # A timeout well above a normal create's latency even on a loaded machine, well below the fault's.
    sandbox.faults.slow(4.0, next=2, path_prefix=CREATE)
    r = _run(sandbox, ledger_path, timeout=1.5, concurrency=1)
    assert r.summary["counts"]["uncertain"] == 2 and r.summary["counts"]["completed"] == 18
    assert sandbox.duplicate_creates() == {}
    # The timed-out creates were never sent again (whether the server finished them is its business).
    assert 18 <= sandbox.create_count() <= 20


def test_status_faults_are_retried_and_polled_again(sandbox, ledger_path):
    f = sandbox.faults
    f.http_500(next=5, path_prefix=STATUS)
    f.malformed_json(next=5, path_prefix=STATUS)
    f.drop(next=5, path_prefix=STATUS)
    f.rate_limit(next=5, path_prefix=STATUS)
    r = _run(sandbox, ledger_path)
    assert r.summary["counts"]["completed"] == 20
    assert sandbox.duplicate_creates() == {} and sandbox.create_count() == 20


def test_jobs_ending_in_status_4(sandbox, ledger_path):
    df = pd.DataFrame({"text": [f"sandbox-fail {i}" if i % 3 == 0 else f"fine {i}" for i in range(12)]})
    r = _run(sandbox, ledger_path, df)
    failed = r.results[r.results["outcome"] == "failed"]
    assert len(failed) == 4 and (failed["error_code"] == 1212).all()
    assert failed["job_id"].notna().all()


def test_everything_at_once_then_resubmit_uncertain(sandbox, ledger_path):
    """Random faults on every request: all rows terminal, zero duplicates; resubmitting the
    uncertain rows can only duplicate rows whose first create really happened."""
    f = sandbox.faults
    for kind in ("http_500", "drop_after", "drop", "malformed_json", "rate_limit"):
        getattr(f, {"http_500": "http_500", "drop_after": "drop_after_create", "drop": "drop",
                    "malformed_json": "malformed_json", "rate_limit": "rate_limit"}[kind])(probability=0.04)
    f.slow(1.0, probability=0.02)
    df = pd.DataFrame({"text": [f"sandbox-fail {i}" if i % 17 == 0 else f"comment {i}" for i in range(150)]})
    r = _run(sandbox, ledger_path, df, timeout=0.6, concurrency=16)
    assert len(r.results) == 150 and set(r.results["outcome"]) <= TERMINAL
    assert r.results["row_key"].is_unique
    assert sandbox.duplicate_creates() == {}
    uncertain = r.summary["counts"]["uncertain"]
    assert uncertain > 0
    # Rerun: nothing new is created unless asked. (Creates the client gave up on may still be
    # sleeping in the server's slow fault: let them land before counting.)
    time.sleep(1.2)
    before = sandbox.create_count()
    f.clear()
    again = _run(sandbox, ledger_path, df, timeout=5.0)
    assert again.summary["counts"]["uncertain"] == uncertain and sandbox.create_count() == before
    assert sandbox.duplicate_creates() == {}
    resub = _run(sandbox, ledger_path, df, timeout=5.0, resubmit_uncertain=True)
    assert resub.summary["counts"]["uncertain"] == 0
    assert set(resub.results["outcome"]) <= {"completed", "failed"}
    dupes = sum(n - 1 for n in sandbox.duplicate_creates().values())
    assert dupes <= uncertain
