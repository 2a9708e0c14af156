"""The money code on its own: the ledger's lease and claim protocol, the budget arithmetic, and
the create-failure decision. Small and exact, so a mutant of any rule here is caught."""

from __future__ import annotations

import time

import pytest

from akool_flows.api.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectError,
    ConnectionDroppedError,
    PermissionDeniedError,
    QuotaError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from akool_flows.batch.budget import Budget
from akool_flows.batch.errors import BatchLockedError, LeaseLostError, LedgerWriteError
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.outcomes import MAX_REFUSALS, classify_create_failure

KEYS = [("k1", 0), ("k2", 1), ("k3", 2)]


@pytest.fixture
def path(tmp_path):
    return tmp_path / "l.sqlite"


def _batch(led: Ledger, batch: str = "a", endpoint: str = "E", kind: str = "moderation") -> int:
    led.begin_batch(batch, kind, KEYS, endpoint=endpoint)
    return led.acquire(batch)


# --- lease and fencing ---------------------------------------------------------------------------

def test_a_run_that_lost_its_lease_cannot_record_an_intent(path):
    a, b = Ledger(path), Ledger(path)
    gen_a = a.begin_batch("x", "moderation", KEYS, endpoint="E") or a.acquire("x", ttl=0.05)
    time.sleep(0.1)  # A paused past its lease
    b.begin_batch("x", "moderation", KEYS, endpoint="E")
    gen_b = b.acquire("x")
    assert gen_b == gen_a + 1
    with pytest.raises(LeaseLostError, match="another run took over"):
        a.claim("x", "k1", generation=gen_a, at=1.0)
    with pytest.raises(LeaseLostError):
        a.renew("x", gen_a)
    assert a.rows("x")["k1"].state == "pending"  # nothing recorded by the fenced run
    assert b.claim("x", "k1", generation=gen_b, at=1.0).granted
    b.renew("x", gen_b)
    a.release("x", gen_a)  # a stale release must not free B's lease
    with pytest.raises(BatchLockedError):
        Ledger(path).acquire("x")


def test_a_live_lease_is_honoured_and_a_released_one_is_free(path):
    a, b = Ledger(path), Ledger(path)
    gen = _batch(a, "x")
    with pytest.raises(BatchLockedError, match="another run holds batch"):
        b.acquire("x")
    a.release("x", gen)
    assert b.acquire("x") == gen + 1


def test_the_same_owner_cannot_hold_two_generations(path):
    led = Ledger(path)
    first = _batch(led, "x")
    second = led.acquire("x")
    with pytest.raises(LeaseLostError):
        led.claim("x", "k1", generation=first, at=1.0)
    assert led.claim("x", "k1", generation=second, at=1.0).granted


# --- claims across batches -------------------------------------------------------------------------

def test_claim_waits_for_a_live_intent_and_adopts_a_sent_job(path):
    a, b = Ledger(path), Ledger(path)
    ga, gb = _batch(a, "a"), _batch(b, "b")
    assert a.claim("a", "k1", generation=ga, at=1.0).granted
    c = b.claim("b", "k1", generation=gb, at=2.0)
    assert (c.granted, c.wait, c.source_batch) == (False, True, "a")
    assert b.rows("b")["k1"].state == "pending"
    a.mark_submitted("a", "k1", "J1", None, 3.0)
    c = b.claim("b", "k1", generation=gb, at=4.0)
    assert (c.granted, c.wait) == (False, False)
    row = b.rows("b")["k1"]
    assert (row.state, row.job_id, row.note) == ("submitted", "J1", "same request as batch a")


def test_claim_adopts_a_dead_runs_sent_intent_as_uncertain(path):
    a, b = Ledger(path), Ledger(path)
    ga = _batch(a, "a")
    a.claim("a", "k1", generation=ga, at=1.0)
    a.mark_sent("a", "k1", 1.5)
    a.release("a", ga)  # the run is gone, its intent stays
    gb = _batch(b, "b")
    c = b.claim("b", "k1", generation=gb, at=2.0)
    assert not c.granted and not c.wait
    assert b.rows("b")["k1"].state == "uncertain"


def test_claim_sends_what_a_dead_run_never_sent(path):
    a, b = Ledger(path), Ledger(path)
    ga = _batch(a, "a")
    a.claim("a", "k1", generation=ga, at=1.0)
    a.release("a", ga)  # died during its token exchange: the request never left
    gb = _batch(b, "b")
    assert b.claim("b", "k1", generation=gb, at=2.0).granted
    assert b.rows("b")["k1"].state == "intent"


def test_claim_adopts_uncertain_unless_resubmitting_and_ignores_other_apis_and_kinds(path):
    a, b = Ledger(path), Ledger(path)
    ga = _batch(a, "a")
    a.claim("a", "k1", generation=ga, at=1.0)
    a.mark_uncertain("a", "k1", None, "lost")
    gb = _batch(b, "b")
    assert not b.claim("b", "k1", generation=gb, at=2.0).granted
    assert b.rows("b")["k1"].state == "uncertain"
    assert b.claim("b", "k2", generation=gb, at=2.0).granted  # nobody else holds k2
    # resubmit_uncertain: the other batch's uncertain copy does not stop the send
    assert b.claim("b", "k1", generation=gb, at=2.0, share_uncertain=False).granted
    other = Ledger(path)
    gc = _batch(other, "c", endpoint="OTHER")
    assert other.claim("c", "k1", generation=gc, at=3.0).granted  # job ids of another API mean nothing
    gd = _batch(other, "d", kind="tts")
    assert other.claim("d", "k1", generation=gd, at=3.0).granted
    ge = _batch(other, "e")
    assert other.claim("e", "k3", generation=ge, at=3.0, share=False).granted


def test_claim_prefers_the_most_advanced_copy(path):
    led = Ledger(path)
    g1, g2, g3 = _batch(led, "a"), _batch(led, "b"), _batch(led, "c")
    led.claim("a", "k1", generation=g1, at=1.0)
    led.mark_uncertain("a", "k1", None, "lost")
    led.claim("b", "k1", generation=g2, at=1.0, share=False)
    led.mark_submitted("b", "k1", "J2", None, 2.0)
    led.finish_many("b", [("k1", "completed", 3.0, 3, 0.1, None, None, "{}")])
    assert not led.claim("c", "k1", generation=g3, at=4.0).granted
    row = led.rows("c")["k1"]
    assert (row.state, row.job_id, row.credits) == ("completed", "J2", 0.1)


# --- row transitions -------------------------------------------------------------------------------

def test_an_intent_never_handed_to_the_transport_goes_back_to_pending(path):
    led = Ledger(path)
    g = _batch(led, "a")
    led.claim("a", "k1", generation=g, at=1.0)  # the run died during the token exchange
    led.claim("a", "k2", generation=g, at=1.0)
    led.mark_sent("a", "k2", 1.2)
    led.mark_sent("a", "k3", 1.2)  # not an intent: nothing to mark
    assert led.mark_stale_intents("a") == (1, 1)
    rows = led.rows("a")
    assert (rows["k1"].state, rows["k1"].note) == ("pending", "the run stopped before this row's create was sent")
    assert (rows["k2"].state, rows["k3"].state) == ("uncertain", "pending")
    # a new claim forgets the earlier send: dying before this one's request left is "never sent"
    led.claim("a", "k2", generation=g, at=2.0)
    assert led.mark_stale_intents("a") == (1, 0) and led.rows("a")["k2"].state == "pending"


def test_stale_intents_become_uncertain_and_finished_rows_are_not_downgraded(path):
    led = Ledger(path)
    g = _batch(led, "a")
    led.claim("a", "k1", generation=g, at=1.0)
    led.mark_sent("a", "k1", 1.5)
    led.claim("a", "k2", generation=g, at=1.0)
    led.mark_submitted("a", "k2", "J2", None, 2.0)
    assert led.mark_stale_intents("a") == (0, 1)
    rows = led.rows("a")
    assert (rows["k1"].state, rows["k2"].state, rows["k3"].state) == ("uncertain", "submitted", "pending")
    assert rows["k1"].attempts == 1
    led.finish_many("a", [("k2", "completed", 3.0, 3, 0.5, None, None, "{}")])
    led.finish_many("a", [("k2", "timed_out", 4.0, None, None, None, "stopped", None)])
    row = led.rows("a")["k2"]
    assert (row.state, row.credits, row.status_code) == ("completed", 0.5, 3)
    led.finish_many("a", [("k1", "failed", 5.0, 4, None, 1, "bad", None)])
    assert led.rows("a")["k1"].state == "failed"


def test_observed_credits_and_find_elsewhere(path):
    led = Ledger(path)
    g = _batch(led, "a")
    for key, credits in (("k1", 1.0), ("k2", 3.0)):
        led.claim("a", key, generation=g, at=1.0)
        led.mark_submitted("a", key, f"J{key}", None, 2.0)
        led.finish_many("a", [(key, "completed", 3.0, 3, credits, None, None, "{}")])
    assert led.observed_credits("moderation") == (2.0, 2)
    assert led.observed_credits("tts") == (None, 0)
    found = led.find_elsewhere("moderation", ["k1", "k3"], "b", endpoint="E")
    assert set(found) == {"k1"} and found["k1"][0] == "a"
    assert led.find_elsewhere("moderation", ["k1"], "b", endpoint="OTHER") == {}


def test_a_full_disk_is_a_ledger_write_error_not_a_traceback(path):
    led = Ledger(path)
    g = _batch(led, "a")
    pages = led.conn.execute("PRAGMA page_count").fetchone()[0]
    led.conn.execute(f"PRAGMA max_page_count = {pages}")
    with pytest.raises(LedgerWriteError, match="cannot write the ledger"):
        led.begin_batch("big", "moderation", [(f"row-{i}" * 20, i) for i in range(2000)], endpoint="E")
    assert led.claim("a", "k1", generation=g, at=1.0).granted  # small writes still fit


# --- budget ----------------------------------------------------------------------------------------

def test_budget_counts_earlier_runs_and_settles_to_reported_figures():
    b = Budget(1.0)
    b.count_earlier(0.4)
    assert b.fits(0.6) and not b.fits(0.61)
    b.reserve(0.3)
    assert b.committed == pytest.approx(0.7)
    b.settle(0.3, 0.1, failed=False)  # reported lower than estimated
    assert b.new == pytest.approx(0.1) and b.committed == pytest.approx(0.5)
    b.reserve(0.2)
    b.release(0.2)  # proven not created
    assert b.new == pytest.approx(0.1)
    b.reserve(0.2)
    b.settle(0.2, None, failed=True)  # failed, nothing reported: not counted
    assert b.new == pytest.approx(0.1)
    b.reserve(0.2)
    b.settle(0.2, None, failed=False)  # completed, nothing reported: the estimate stays
    assert b.new == pytest.approx(0.3)
    b.settle(0.4, 0.5, failed=False, earlier=True)  # a job of an earlier run finished now
    assert b.earlier == pytest.approx(0.5) and b.new == pytest.approx(0.3)


def test_budget_balance_caps_and_no_budget_always_fits():
    b = Budget(10.0)
    b.count_earlier(2.0)
    b.limit_to_balance(3.0)
    assert b.cap == pytest.approx(5.0) and b.limit == 10.0
    b.limit_to_balance(None)
    assert b.cap == pytest.approx(5.0)
    free = Budget(None)
    free.limit_to_balance(0.0)
    assert free.cap is None and free.fits(1e9)
    exact = Budget(0.3)
    for _ in range(3):
        assert exact.fits(0.1)
        exact.reserve(0.1)
    assert not exact.fits(0.1)
    assert "0.30 + 0.10 > 0.30" in exact.overrun_message(0.1)


# --- what a failed create means -----------------------------------------------------------------

@pytest.mark.parametrize("exc", [RequestTimeoutError("t"), ConnectionDroppedError("d"), ServerError("s"),
                                 RuntimeError("unknown")])
def test_ambiguous_failures_make_the_row_uncertain(exc):
    d = classify_create_failure(exc, 1)
    assert (d.action, d.ledger_state, d.outcome, d.created) == ("uncertain", "uncertain", "uncertain", None)
    assert "resubmit only with resubmit_uncertain" in d.message


def test_proven_not_created_failures():
    auth = classify_create_failure(AuthenticationError("no", code=1101), 0)
    assert (auth.action, auth.ledger_state, auth.outcome, auth.code, auth.created) == (
        "stop_auth", "pending", "cancelled", 1101, False)
    assert classify_create_failure(PermissionDeniedError("no"), 0).action == "stop_auth"
    quota = classify_create_failure(QuotaError("poor", code=1006), 0)
    assert (quota.action, quota.ledger_state, quota.outcome) == ("stop_quota", "pending", "cancelled")
    final = classify_create_failure(BadRequestError("bad", code=1003), 0)
    assert (final.action, final.ledger_state, final.outcome) == ("final", "failed", "failed")
    assert final.message == "not created: [1003] bad"
    refused = ConnectError("refused")
    first = classify_create_failure(refused, 1)
    assert (first.action, first.ledger_state, first.outcome) == ("retry", "pending", None)
    last = classify_create_failure(refused, MAX_REFUSALS)
    assert (last.action, last.ledger_state, last.outcome) == ("give_up", "pending", "failed")
    assert f"refused {MAX_REFUSALS} times" in last.message
    assert classify_create_failure(RateLimitError("slow", code=1005), MAX_REFUSALS - 1).action == "retry"


def test_a_run_that_lost_its_lease_may_not_mark_a_send(path):
    """Paused between its claim and its send: the new holder resubmits the unsent intent, so the
    paused run's send must be refused (it would pay twice), and the row stays unsent."""
    from akool_flows.batch.errors import LeaseLostError

    a, b = Ledger(path), Ledger(path)
    ga = _batch(a, "a")
    a.claim("a", "k1", generation=ga, at=1.0)
    a.conn.execute("UPDATE batches SET lease_until=? WHERE batch_id='a'", (time.time() - 1,))
    gb = b.acquire("a")  # another run takes the batch over
    with pytest.raises(LeaseLostError):
        a.mark_sent("a", "k1", 2.0, ga)
    assert b.mark_stale_intents("a") == (1, 0)  # refused, so still never sent: the new run sends it
    b.claim("a", "k1", generation=gb, at=3.0)
    b.mark_sent("a", "k1", 3.5, gb)
    with pytest.raises(LeaseLostError):
        a.mark_sent("a", "k1", 4.0, ga)
    row = a.rows("a")["k1"]
    assert row.state == "intent" and row.attempt_at == 3.0
