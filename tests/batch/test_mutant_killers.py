"""Money rules that hand-made mutants of the money code slipped past (`make mutants`).

Each test pins one rule of the ledger, the budget or the create-failure decision exactly, on the
real SQLite ledger, so flipping a comparison, a state or a constant in that rule fails here.
Engine rules are pinned against the sandbox further down.
"""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from akool_flows.api.errors import ConnectError, RateLimitError
from akool_flows.batch.budget import Budget
from akool_flows.batch.errors import BatchLockedError, LeaseLostError, LedgerError, LedgerWriteError
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.outcomes import MAX_REFUSALS, classify_create_failure, refusal_backoff

KEYS = [("k1", 0), ("k2", 1), ("k3", 2)]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "l.sqlite"


def _batch(led: Ledger, batch: str, endpoint: str | None = "E", kind: str = "moderation", keys=KEYS) -> int:
    led.begin_batch(batch, kind, keys, endpoint=endpoint)
    return led.acquire(batch)


def _put(led: Ledger, batch: str, key: str, state: str) -> None:
    """Drive ``key`` of ``batch`` into ``state`` the way a run does (its own create: no sharing)."""
    gen = _batch(led, batch)
    led.claim(batch, key, generation=gen, at=1.0, share=False)
    led.mark_sent(batch, key, 1.5)
    if state == "uncertain":
        led.mark_uncertain(batch, key, None, "lost")
    if state in ("submitted", "timed_out", "completed"):
        led.mark_submitted(batch, key, f"J-{batch}", None, 2.0)
    if state in ("timed_out", "completed"):
        led.finish_many(batch, [(key, state, 3.0, 3 if state == "completed" else None, 0.5, None, None, "{}")])
    led.release(batch, gen)  # the run is over (an intent left now is a dead run's)


# --- opening a ledger ------------------------------------------------------------------------------

def test_opening_without_create_touches_nothing(tmp_path):
    missing = Ledger(tmp_path / "no" / "l.sqlite", create=False)
    assert not missing.exists and not (tmp_path / "no").exists()
    with pytest.raises(LedgerError, match="does not exist"):
        missing.rows("a")
    assert not Ledger(tmp_path / "l.sqlite", create=False).exists and not (tmp_path / "l.sqlite").exists()
    made = Ledger(tmp_path / "deep" / "er" / "l.sqlite")
    assert made.exists and (tmp_path / "deep" / "er" / "l.sqlite").exists()
    made.close()
    made.close()  # twice is fine
    assert not made.exists
    again = Ledger(tmp_path / "deep" / "er" / "l.sqlite", create=False)
    assert again.exists and repr(again).startswith("Ledger(")


def test_a_ledger_is_durable_per_call_and_shared_across_threads(path):
    led = Ledger(path)
    conn = led.conn
    # WAL + synchronous=NORMAL: each autocommit is durable when the call returns (the crash rule)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 30000
    gen = _batch(led, "a")
    seen: list[object] = []
    t = threading.Thread(target=lambda: seen.append(led.claim("a", "k1", generation=gen, at=1.0).granted))
    t.start()
    t.join()
    assert seen == [True] and led.rows("a")["k1"].state == "intent"


def test_an_old_schema_is_migrated_and_an_unknown_one_refused(path):
    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE batches")
    conn.execute("CREATE TABLE batches (batch_id TEXT PRIMARY KEY, kind TEXT NOT NULL, endpoint TEXT, "
                 "created_at REAL NOT NULL, updated_at REAL NOT NULL, total_rows INTEGER NOT NULL DEFAULT 0, "
                 "meta TEXT, lease_owner TEXT, lease_host TEXT, lease_pid INTEGER, lease_until REAL)")
    conn.execute("UPDATE ledger_meta SET value='1' WHERE key='schema'")
    conn.commit()
    conn.close()
    led = Ledger(path)
    assert _batch(led, "a") == 1
    assert led.conn.execute("SELECT value FROM ledger_meta WHERE key='schema'").fetchone()[0] == "3"
    led.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE ledger_meta SET value='9' WHERE key='schema'")
    conn.commit()
    conn.close()
    with pytest.raises(LedgerError, match="has schema 9, this version reads 3") as refused:
        Ledger(path)
    # the refused open rolled back (its connection is still alive in the traceback): not locked
    other = sqlite3.connect(path, timeout=0.2)
    other.execute("UPDATE ledger_meta SET value='3' WHERE key='schema'")
    other.commit()
    del refused
    (path.parent / "junk.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(LedgerError, match="cannot use"):
        Ledger(path.parent / "junk.sqlite")


def test_a_schema_2_ledgers_intents_count_as_sent(path):
    """Schema 2 did not record the send: its intents may have been paid for, so they stay uncertain."""
    led = Ledger(path)
    gen = _batch(led, "a")
    led.claim("a", "k1", generation=gen, at=1.0)
    led.claim("a", "k2", generation=gen, at=1.0)
    led.mark_submitted("a", "k2", "J2", None, 2.0)
    led.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE jobs DROP COLUMN sent_at")
    conn.execute("UPDATE ledger_meta SET value='2' WHERE key='schema'")
    conn.commit()
    conn.close()
    led = Ledger(path)
    assert led.conn.execute("SELECT value FROM ledger_meta WHERE key='schema'").fetchone()[0] == "3"
    assert led.mark_stale_intents("a") == (0, 1)
    assert [led.rows("a")[k].state for k in ("k1", "k2", "k3")] == ["uncertain", "submitted", "pending"]


def test_a_locked_ledger_is_a_write_error_and_a_failed_transaction_leaves_it_usable(path):
    led, other = Ledger(path), Ledger(path)
    gen = _batch(led, "a")
    led.conn.execute("PRAGMA busy_timeout=0")
    other.conn.execute("BEGIN EXCLUSIVE")
    with pytest.raises(LedgerWriteError, match="cannot write the ledger"):
        led.mark_pending("a", "k1")
    with pytest.raises(LedgerWriteError):
        led.claim("a", "k1", generation=gen, at=1.0)
    other.conn.execute("ROLLBACK")
    with pytest.raises(LeaseLostError):  # raised inside the transaction: rolled back, not left open
        led.claim("a", "k1", generation=gen + 5, at=1.0)
    other.conn.execute("PRAGMA busy_timeout=0")
    other.mark_pending("a", "k2", 7, "other writer still gets in")
    assert led.claim("a", "k1", generation=gen, at=1.0).granted


# --- batches and leases ----------------------------------------------------------------------------

def test_begin_batch_checks_kind_and_api_and_never_resets_a_row(path):
    led = Ledger(path)
    gen = _batch(led, "a")
    led.claim("a", "k1", generation=gen, at=1.0)
    led.mark_submitted("a", "k1", "J1", "T1", 2.0)
    with pytest.raises(LedgerError, match="is a moderation batch, not tts"):
        led.begin_batch("a", "tts", KEYS, endpoint="E")
    with pytest.raises(LedgerError, match="ran against E, not F"):
        led.begin_batch("a", "moderation", KEYS, endpoint="F")
    led.begin_batch("a", "moderation", [("k1", 5), ("k4", 3)], endpoint=None)  # no endpoint: no check
    rows = led.rows("a")
    assert (rows["k1"].state, rows["k1"].job_id, rows["k1"].task_id, rows["k1"].position) == ("submitted", "J1",
                                                                                                "T1", 5)
    assert rows["k4"].state == "pending" and rows["k4"].attempts == 0
    led.begin_batch("b", "moderation", KEYS, endpoint=None)
    led.begin_batch("b", "moderation", KEYS, endpoint="E")  # the first run recorded none: nothing to check
    (a, b) = led.batches()
    assert (a["batch_id"], a["rows"], a["kind"], a["states"]) == ("a", 2, "moderation",
                                                                   {"submitted": 1, "pending": 3})
    assert b["batch_id"] == "b" and b["created_at"] >= a["created_at"] and b["states"] == {"pending": 3}


def test_a_lease_is_taken_over_only_when_its_holder_is_dead_or_expired(path):
    a = Ledger(path)
    gen = _batch(a, "x")
    with pytest.raises(LedgerError, match="call begin_batch first"):
        a.acquire("nope")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    a.conn.execute("UPDATE batches SET lease_owner='someone', lease_pid=? WHERE batch_id='x'", (dead.pid,))
    assert a.acquire("x") == gen + 1  # same host, pid gone: taken over at once
    a.conn.execute("UPDATE batches SET lease_owner='someone', lease_pid=? WHERE batch_id='x'", (1,))
    with pytest.raises(BatchLockedError, match="process 1 on"):
        a.acquire("x")  # alive on this host (pid 1)
    a.conn.execute("UPDATE batches SET lease_host='elsewhere', lease_pid=? WHERE batch_id='x'", (dead.pid,))
    with pytest.raises(BatchLockedError):
        a.acquire("x")  # another host: a pid means nothing here, wait for the lease to expire
    a.conn.execute("UPDATE batches SET lease_until=? WHERE batch_id='x'", (time.time() - 1,))
    assert a.acquire("x") == gen + 2


def test_a_live_holder_is_left_alone_and_one_we_may_not_signal_counts_as_alive(path, monkeypatch):
    a = Ledger(path)
    _batch(a, "x")
    # An ordinary process: default signal handling even under nohup (which ignores SIGHUP).
    holder = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGHUP, "
                               "signal.SIG_DFL); print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        a.conn.execute("UPDATE batches SET lease_owner='someone', lease_pid=? WHERE batch_id='x'", (holder.pid,))
        with pytest.raises(BatchLockedError):
            a.acquire("x")
        with pytest.raises(subprocess.TimeoutExpired):
            holder.wait(0.5)  # asking whether it lives must not signal it
    finally:
        holder.kill()
        holder.wait()

    def not_ours(pid, sig):
        raise PermissionError(pid)

    monkeypatch.setattr("akool_flows.batch.ledger_claims.os.kill", not_ours)  # another user's process
    with pytest.raises(BatchLockedError):
        a.acquire("x")


def test_a_ledger_used_as_a_context_manager_is_closed_after(path):
    with Ledger(path) as led:
        assert led.exists
    assert not led.exists


def test_renew_extends_the_lease_and_release_without_generation_frees_it(path):
    a, b = Ledger(path), Ledger(path)
    gen = a.begin_batch("x", "moderation", KEYS, endpoint="E") or a.acquire("x", ttl=0.05)
    a.renew("x", gen, ttl=60)
    until = a.conn.execute("SELECT lease_until FROM batches WHERE batch_id='x'").fetchone()[0]
    assert until > time.time() + 50
    time.sleep(0.1)
    with pytest.raises(BatchLockedError):
        b.acquire("x")
    b.release("x")  # not the holder: nothing happens
    with pytest.raises(BatchLockedError):
        b.acquire("x")
    a.release("x")
    assert b.acquire("x") == gen + 1
    with pytest.raises(LeaseLostError):
        a.renew("x", gen)


# --- claims and copies -----------------------------------------------------------------------------

def test_a_claim_records_a_fresh_intent(path):
    led = Ledger(path)
    gen = _batch(led, "a")
    led.claim("a", "k1", generation=gen, at=1.0)
    led.mark_pending("a", "k1", 1005, "refused")
    row = led.rows("a")["k1"]
    assert (row.state, row.error_code, row.error_message) == ("pending", 1005, "refused")
    assert led.claim("a", "k1", generation=gen, at=7.0).granted
    row = led.rows("a")["k1"]
    assert (row.state, row.attempts, row.attempt_at, row.error_code, row.error_message, row.note) == (
        "intent", 2, 7.0, None, None, None)
    led.mark_pending("a", "k2")
    led.mark_intent("a", "k2", 8.0)
    assert led.rows("a")["k2"].state == "intent"
    led.mark_uncertain("a", "k2", 7, "timeout")
    row = led.rows("a")["k2"]
    assert (row.state, row.attempts, row.attempt_at, row.error_code, row.error_message) == (
        "uncertain", 1, 8.0, 7, "timeout")
    with pytest.raises(LeaseLostError):
        led.claim("nope", "k1", generation=gen, at=1.0)  # no such batch: not this run's


ORDER = ["completed", "submitted", "timed_out", "uncertain", "intent"]


@pytest.mark.parametrize("worse", ORDER[1:])
@pytest.mark.parametrize("better_first", [False, True])
def test_the_most_advanced_copy_is_adopted_whatever_the_order(path, worse, better_first):
    led = Ledger(path)
    better = ORDER[ORDER.index(worse) - 1]
    for batch, state in ([("a", better), ("b", worse)] if better_first else [("a", worse), ("b", better)]):
        _put(led, batch, "k1", state)
    want = "a" if better_first else "b"
    found = led.find_elsewhere("moderation", ["k1"], "c", states=ORDER)
    assert found["k1"][0] == want and found["k1"][1].state == better
    gen = _batch(led, "c")
    claim = led.claim("c", "k1", generation=gen, at=5.0)
    assert (claim.granted, claim.wait, claim.source_batch) == (False, False, want)
    assert led.rows("c")["k1"].state == ("uncertain" if better == "intent" else better)


@pytest.mark.parametrize("state", ["submitted", "timed_out", "completed", "uncertain", "intent"])
def test_every_copy_that_may_hold_a_job_is_shared(path, state):
    led = Ledger(path)
    _put(led, "a", "k1", state)
    gen = _batch(led, "b")
    assert not led.claim("b", "k1", generation=gen, at=5.0).granted
    row = led.rows("b")["k1"]
    assert row.state == ("uncertain" if state == "intent" else state)
    assert row.note == "same request as batch a"
    assert led.claim("b", "k2", generation=gen, at=5.0).granted  # nobody holds k2


@pytest.mark.parametrize("state", ["pending", "failed"])
def test_copies_that_hold_no_job_are_not_shared(path, state):
    led = Ledger(path)
    gen = _batch(led, "a")
    led.claim("a", "k1", generation=gen, at=1.0)
    if state == "failed":
        led.finish_many("a", [("k1", "failed", 3.0, None, None, 1003, "bad", None)])
    else:
        led.mark_pending("a", "k1", 1005, "refused")
    gen = _batch(led, "b")
    assert led.claim("b", "k1", generation=gen, at=5.0).granted


def test_an_adopted_copy_carries_everything_the_source_knew(path):
    led = Ledger(path)
    gen = _batch(led, "a")
    led.claim("a", "k1", generation=gen, at=1.5)
    led.mark_submitted("a", "k1", "J1", "T1", 2.5)
    led.finish_many("a", [("k1", "completed", 3.5, 3, 0.25, None, None, '{"conclusion": "ok"}')])
    led.set_artifacts("a", "k1", [{"path": "x.png", "sha256": "ab"}])
    gb = _batch(led, "b")
    assert not led.claim("b", "k1", generation=gb, at=9.0).granted
    src, got = led.rows("a")["k1"], led.rows("b")["k1"]
    assert got.result_data == {"conclusion": "ok"} and got.artifact_data == [{"path": "x.png", "sha256": "ab"}]
    for name in ("state", "job_id", "task_id", "attempts", "attempt_at", "submitted_at", "finished_at",
                 "status_code", "credits", "error_code", "error_message", "result", "artifacts"):
        assert getattr(got, name) == getattr(src, name), name
    assert got.note == "same request as batch a" and got.position == 0
    led.begin_batch("c", "moderation", KEYS)
    led.adopt("c", "k2", src, "a")
    assert (led.rows("c")["k2"].job_id, led.rows("c")["k2"].note) == ("J1", "same request as batch a")
    assert led.rows("c")["k1"].result_data == {} and led.rows("c")["k1"].artifact_data == []


def test_a_live_intent_elsewhere_means_wait_and_other_apis_do_not_count(path):
    a, b = Ledger(path), Ledger(path)
    ga = _batch(a, "a", endpoint=None)
    a.claim("a", "k1", generation=ga, at=1.0)
    gb = _batch(b, "b", endpoint="F")
    c = b.claim("b", "k1", generation=gb, at=2.0)  # a recorded no API: it may be the same one
    assert (c.granted, c.wait, c.source_batch, c.source.state) == (False, True, "a", "intent")
    a.conn.execute("UPDATE batches SET lease_until=? WHERE batch_id='a'", (time.time() - 1,))
    c = b.claim("b", "k1", generation=gb, at=2.0)  # its lease ran out, its request never left
    assert c.granted and b.rows("b")["k1"].state == "intent"
    a.conn.execute("UPDATE jobs SET state='pending' WHERE batch_id='b'")
    a.mark_sent("a", "k1", 1.5)
    c = b.claim("b", "k1", generation=gb, at=2.0)  # a dead run's intent that was sent
    assert (c.granted, c.wait) == (False, False) and b.rows("b")["k1"].state == "uncertain"


def test_stale_intents_of_one_batch_only(path):
    led = Ledger(path)
    _put(led, "a", "k1", "intent")
    _put(led, "b", "k1", "intent")
    assert led.mark_stale_intents("a") == (0, 1)
    assert led.mark_stale_intents("a") == (0, 0)
    row = led.rows("a")["k1"]
    assert (row.state, row.error_message) == ("uncertain", "the run was interrupted while this row's create "
                                                            "call was in flight")
    assert led.rows("b")["k1"].state == "intent"


def test_finish_many_never_downgrades_a_final_state(path):
    led = Ledger(path)
    gen = _batch(led, "a")
    for key in ("k1", "k2", "k3"):
        led.claim("a", key, generation=gen, at=1.0)
        led.mark_submitted("a", key, "J" + key, None, 2.0)
    led.finish_many("a", [("k1", "failed", 3.0, 4, 0.0, 1015, "bad", None),
                          ("k2", "timed_out", 3.0, None, None, None, "stopped", None)])
    led.finish_many("a", [("k1", "timed_out", 4.0, None, None, None, "stopped", None),
                          ("k2", "completed", 4.0, 3, 0.2, None, None, "{}"),
                          ("k3", "timed_out", 4.0, None, None, None, "stopped", None)])
    rows = led.rows("a")
    assert (rows["k1"].state, rows["k1"].error_code, rows["k1"].finished_at) == ("failed", 1015, 3.0)
    assert (rows["k2"].state, rows["k2"].credits) == ("completed", 0.2)
    assert rows["k3"].state == "timed_out"
    led.finish_many("a", [("k2", "failed", 5.0, 4, None, 1, "late", None)])  # final over final: the news wins
    assert led.rows("a")["k2"].state == "failed"


def test_find_elsewhere_reads_past_the_first_chunk_and_honours_its_filters(path):
    led = Ledger(path)
    keys = [(f"k{i}", i) for i in range(1001)]
    gen = _batch(led, "a", keys=keys)
    for i in (0, 499, 500, 1000):
        led.claim("a", f"k{i}", generation=gen, at=1.0)
        led.mark_submitted("a", f"k{i}", f"J{i}", None, 2.0)
    found = led.find_elsewhere("moderation", [k for k, _ in keys], "b")
    assert sorted(found) == ["k0", "k1000", "k499", "k500"]
    assert led.find_elsewhere("moderation", ["k0"], "a") == {}
    assert led.find_elsewhere("moderation", ["k0"], "b", states=("completed",)) == {}
    assert set(led.find_elsewhere("moderation", ["k0", "k1"], "b", endpoint="E")) == {"k0"}
    assert led.find_elsewhere("tts", ["k0"], "b") == {}


def test_observed_credits_count_only_completed_jobs_with_a_figure(path):
    led = Ledger(path)
    gen = _batch(led, "a")
    for key, state, credits in (("k1", "completed", 1.0), ("k2", "failed", 5.0), ("k3", "completed", None)):
        led.claim("a", key, generation=gen, at=1.0)
        led.finish_many("a", [(key, state, 2.0, 3, credits, None, None, None)])
    assert led.observed_credits("moderation") == (1.0, 1)


# --- budget and the create-failure decision --------------------------------------------------------

def test_budget_a_row_that_fits_within_float_noise_is_not_refused():
    b = Budget(1.0)
    assert b.fits(1.0 + 1e-9)  # the sum of ten 0.1s is 0.9999999999999999, never refuse on noise
    assert not b.fits(1.0 + 1e-8)
    b.limit_to_balance(0.25)
    assert b.cap == 0.25 and b.fits(0.25) and not b.fits(0.26)
    b.count_earlier(0.25)
    b.limit_to_balance(10.0)  # the cap is never raised by a large balance
    assert b.cap == 0.25 and b.committed == 0.25
    b.settle(0.25, 0.75, failed=True, earlier=True)  # a failed job that reports a charge is charged
    assert b.earlier == 0.75 and b.new == 0.0


def test_refused_creates_are_retried_exactly_three_times_with_growing_waits():
    assert MAX_REFUSALS == 3  # the engine's own resends after the client's retries
    refused = RateLimitError("slow", code=1005)
    assert [classify_create_failure(refused, n).action for n in (1, 2, 3)] == ["retry", "retry", "give_up"]
    assert classify_create_failure(ConnectError("down"), 3).ledger_state == "pending"
    random.seed(7)
    for n, low, high in ((0, 1.0, 2.0), (1, 2.0, 4.0), (2, 4.0, 8.0), (9, 15.0, 30.0)):
        waits = [refusal_backoff(n) for _ in range(300)]
        assert low <= min(waits) and max(waits) <= high, (n, min(waits), max(waits))
        assert max(waits) > high - (high - low) / 4 and min(waits) < low + (high - low) / 4


# --- the engine against the sandbox ----------------------------------------------------------------

def _engine_tools():
    from akool_flows.batch import run_batch

    from .conftest import MOD, make_client, texts

    return run_batch, MOD, make_client, texts


def test_a_job_akool_does_not_know_fails_after_exactly_three_polls(sandbox, ledger_path):
    run_batch, MOD, make_client, texts = _engine_tools()
    c = make_client(sandbox, sync=True)
    first = run_batch(texts(1), "moderation", client=c, ledger=ledger_path, batch_id="b", wait=False, **MOD)
    assert first.summary["counts"]["submitted"] == 1
    led = Ledger(ledger_path)
    led.conn.execute("UPDATE jobs SET job_id='ghost-1' WHERE batch_id='b'")
    polls = sandbox.stats()["polls"]
    r = run_batch(texts(1), "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05,
                  job_timeout=5, **MOD)
    row = r.results.iloc[0]
    assert (row["outcome"], row["error_code"]) == ("failed", 1008)
    assert "Akool does not know job ghost-1" in row["error_message"]
    assert sandbox.stats()["polls"] - polls == 3  # one "not found" can be replica lag: three make it final
    assert led.rows("b")[row["row_key"]].state == "failed"
    assert r.summary["credits_already_paid"] == 0.0  # a job that never existed costs nothing
    assert sandbox.create_count() == 1


def test_a_rerun_counts_what_earlier_runs_spent_against_the_budget(sandbox, ledger_path):
    run_batch, MOD, make_client, texts = _engine_tools()
    c = make_client(sandbox, sync=True)
    first = run_batch(texts(4), "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05, **MOD)
    assert first.summary["credits"] == pytest.approx(0.4) and first.summary["credits_new"] == pytest.approx(0.4)
    seen = []
    r = run_batch(texts(7), "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05,
                  budget_credits=0.6, concurrency=1, progress=seen.append, **MOD)
    assert r.summary["credits_already_paid"] == pytest.approx(0.4)
    assert r.summary["credits_new"] == pytest.approx(0.2) and r.summary["stopped_by"] == "budget"
    assert list(r.results["outcome"]) == ["completed"] * 6 + ["cancelled"]
    assert "would take spending past the budget" in r.results["error_message"].iloc[6]
    assert sandbox.create_count() == 6
    last = seen[-1]
    assert (last.done, last.total, last.completed, last.cancelled, last.submitted, last.stopped_by) == (
        True, 7, 6, 1, 6, "budget")
    assert (last.credits, last.credits_new, last.credits_earlier) == (pytest.approx(0.6), pytest.approx(0.2),
                                                                        pytest.approx(0.4))
    assert Ledger(ledger_path).acquire("b") > 0  # the run released its lease on the way out


def test_uncertain_rows_count_as_spent_and_are_resent_only_when_asked(sandbox, ledger_path):
    run_batch, MOD, make_client, texts = _engine_tools()
    c = make_client(sandbox, sync=True)
    run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05, **MOD)
    led = Ledger(ledger_path)
    key = sorted(led.rows("b"))[0]
    led.conn.execute("UPDATE jobs SET state='intent', job_id=NULL, credits=NULL WHERE row_key=?", (key,))
    r = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05, **MOD)
    row = r.results.set_index("row_key").loc[key]
    assert row["outcome"] == "uncertain" and "interrupted" in row["error_message"]
    assert r.summary["credits_already_paid"] == pytest.approx(0.3)  # the lost create may have been charged
    assert sandbox.create_count() == 3
    again = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05,
                      resubmit_uncertain=True, **MOD)
    row = again.results.set_index("row_key").loc[key]
    assert row["outcome"] == "completed" and row["note"].startswith("resubmitted after an uncertain create")
    assert sandbox.create_count() == 4
    assert again.summary["credits_new"] == pytest.approx(0.1)


def test_requests_per_second_spaces_out_the_calls_and_a_broken_progress_display_is_harmless(sandbox, ledger_path):
    run_batch, MOD, make_client, texts = _engine_tools()
    c = make_client(sandbox, sync=True)

    def broken(p):
        raise RuntimeError("display gone")

    t0 = time.monotonic()
    r = run_batch(texts(5), "moderation", client=c, ledger=ledger_path, poll_interval=0.05, concurrency=5,
                  max_requests_per_second=10, progress=broken, **MOD)
    assert r.summary["counts"]["completed"] == 5
    assert time.monotonic() - t0 >= 0.4  # five creates at 10/s: the last leaves 0.4 s after the first


def test_a_rerun_reports_every_finished_row_exactly_as_the_run_that_saw_it(sandbox, ledger_path):
    import pandas as pd

    run_batch, MOD, make_client, _ = _engine_tools()
    c = make_client(sandbox, sync=True)
    df = pd.DataFrame({"text": ["Have a nice day", "I will kill you", "", "sandbox-fail this one"]})
    first = run_batch(df, "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05, **MOD)
    assert list(first.results["outcome"]) == ["completed", "completed", "rejected", "failed"]
    seen = []
    again = run_batch(df, "moderation", client=c, ledger=ledger_path, batch_id="b", poll_interval=0.05,
                      progress=seen.append, **MOD)
    cols = ["row_key", "outcome", "job_id", "status_code", "result_url", "conclusion", "detail", "credits",
            "duration", "error_code", "error_message", "attempt_at", "submitted_at", "finished_at", "note"]
    pd.testing.assert_frame_equal(again.results[cols], first.results[cols])
    assert list(again.results["paid_in"][[0, 1, 3]]) == ["earlier run"] * 3
    assert list(first.results["paid_in"][[0, 1, 3]]) == ["this run"] * 3
    assert again.summary["credits_new"] == 0.0
    assert again.summary["credits_already_paid"] == pytest.approx(first.summary["credits"])
    assert (seen[-1].submitted, seen[-1].completed, seen[-1].failed, seen[-1].rejected) == (3, 2, 1, 1)
    assert sandbox.create_count() == 3


def test_a_submit_only_rerun_neither_creates_nor_waits(sandbox, ledger_path):
    run_batch, MOD, make_client, texts = _engine_tools()
    sandbox.configure(job_seconds=30)
    c = make_client(sandbox, sync=True)
    first = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="b", wait=False, **MOD)
    again = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="b", wait=False, **MOD)
    assert list(again.results["outcome"]) == ["submitted"] * 3
    assert list(again.results["job_id"]) == list(first.results["job_id"])
    assert again.summary["credits_already_paid"] == pytest.approx(0.3) and again.summary["credits_new"] == 0.0
    assert sandbox.create_count() == 3


@pytest.mark.parametrize(("state", "outcome"), [("completed", "completed"), ("submitted", "completed"),
                                                ("timed_out", "completed"), ("uncertain", "uncertain")])
def test_reusing_another_batchs_jobs_takes_no_budget(sandbox, ledger_path, state, outcome):
    """Rows another batch already holds are adopted before any budget check: they cost nothing new,
    so even a budget smaller than one row lets them through."""
    run_batch, MOD, make_client, texts = _engine_tools()
    c = make_client(sandbox, sync=True)
    run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="a", wait=False, **MOD)
    Ledger(ledger_path).conn.execute("UPDATE jobs SET state=? WHERE batch_id='a'", (state,))
    r = run_batch(texts(3), "moderation", client=c, ledger=ledger_path, batch_id="b", budget_credits=0.05,
                  poll_interval=0.05, **MOD)
    assert list(r.results["outcome"]) == [outcome] * 3 and r.summary["stopped_by"] is None
    if state == "completed":  # no status code or credits recorded: status 3, charged its estimate
        assert list(r.results["status_code"]) == [3] * 3
        assert r.summary["credits_already_paid"] == pytest.approx(0.3)
    assert r.results["note"].str.contains("same request as batch a").all()
    assert sandbox.create_count() == 3


def test_a_duplicate_row_mirrors_its_original_and_an_invalid_row_says_why(sandbox, ledger_path):
    import pandas as pd

    run_batch, MOD, make_client, _ = _engine_tools()
    c = make_client(sandbox, sync=True)
    df = pd.DataFrame({"text": ["Have a nice day", "", "Have a nice day"]})
    r = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.05, **MOD)
    res = r.results
    assert list(res["outcome"]) == ["completed", "rejected", "completed"]
    assert res.loc[1, "error_message"] == "moderation: content: required field is missing"
    assert res.loc[2, ["error_code", "error_message"]].isna().all() and res.loc[2, "job_id"] == res.loc[0, "job_id"]
    assert r.summary["counts"]["rejected"] == 1 and r.summary["counts"]["completed"] == 2


def test_a_failed_job_that_reported_no_credits_counts_as_unpaid_on_a_rerun(sandbox, ledger_path):
    run_batch, MOD, make_client, texts = _engine_tools()
    c = make_client(sandbox, sync=True)
    run_batch(texts(2), "moderation", client=c, ledger=ledger_path, batch_id="b", wait=False, **MOD)
    Ledger(ledger_path).conn.execute("UPDATE jobs SET state='failed', credits=NULL, status_code=NULL")
    r = run_batch(texts(2), "moderation", client=c, ledger=ledger_path, batch_id="b", **MOD)
    assert list(r.results["outcome"]) == ["failed"] * 2 and list(r.results["status_code"]) == [4] * 2
    assert r.summary["credits_already_paid"] == 0.0 and sandbox.create_count() == 2
