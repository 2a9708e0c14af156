"""The double-payment holes an adversarial review found, each driven against a real HTTP server.

Every test here failed on the engine before the split (see tests/README.md for the list).
"""

from __future__ import annotations

import errno
import multiprocessing
import signal
import subprocess
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from akool_flows.batch import BudgetError, Ledger, run_batch

from .conftest import CLI, MOD, ledger_states, make_client, sandbox_stats, texts


# --- hole 2: a paused run loses its lease and must not keep sending ------------------------------

@pytest.mark.slow
def test_paused_run_past_its_lease_stops_and_nothing_is_paid_twice(tmp_path, sandbox_process):
    env = sandbox_process
    pd.DataFrame({"text": [f"paused comment {i}" for i in range(150)]}).to_csv(tmp_path / "in.csv", index=False)
    ledger = tmp_path / "ledger.sqlite"
    common = [CLI, "moderate", str(tmp_path / "in.csv"), "--column", "text", "--type", "text", "--ledger",
              str(ledger), "--poll-interval", "0.2", "--quiet", "--show", "0"]
    a = subprocess.Popen(common + ["--out", str(tmp_path / "a.csv"), "--lease-ttl", "2", "--concurrency", "2",
                                   "--rps", "25"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while ledger_states(ledger).get("submitted", 0) + ledger_states(ledger).get("completed", 0) < 20:
        assert a.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    a.send_signal(signal.SIGSTOP)  # Ctrl-Z / laptop sleep / VM pause
    try:
        time.sleep(3.0)  # longer than A's lease
        b = subprocess.run(common + ["--out", str(tmp_path / "b.csv")], env=env, capture_output=True, text=True,
                           timeout=120)
        assert b.returncode in (0, 1), b.stderr
    finally:
        a.send_signal(signal.SIGCONT)
    out, err = a.communicate(timeout=60)
    assert a.returncode == 4, (out, err)
    assert b"another run took over" in err
    stats = sandbox_stats(env["AKOOL_BASE_URL"])
    assert stats["duplicate_creates"] == {}
    assert stats["creates"] <= 150


# --- hole 3: a failed background write stops the run instead of killing housekeeping ----------------

class _FullDiskStore:
    """A webhook store whose disk fills up after a few registrations (the engine must notice)."""

    def __init__(self, ok_calls: int) -> None:
        self.ok_calls = ok_calls
        self.registered: list[str] = []

    def register_submitted_many(self, ids, kind=None):
        if self.ok_calls <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.ok_calls -= 1
        self.registered.extend(ids)
        return len(ids)

    def latest_many(self, ids, terminal_only=False):
        return {}


def test_failed_webhook_store_write_stops_the_run_and_a_rerun_pays_nothing_twice(sandbox, ledger_path):
    sandbox.configure(job_seconds=0.2)
    c = make_client(sandbox, sync=True)
    df = texts(200)
    started = time.monotonic()
    r = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, concurrency=4,
                  max_requests_per_second=100, events=_FullDiskStore(ok_calls=2), event_fallback_interval=0.2,
                  **MOD)
    assert time.monotonic() - started < 30  # ended, did not hang with dead housekeeping
    assert r.summary["stopped_by"] == "error" and r.exit_status == 4
    assert "webhook store" in r.summary["stop_message"] or "background" in r.summary["stop_message"]
    created = sandbox.create_count()
    assert created < 200  # submission stopped
    assert r.results["job_id"].notna().sum() == created  # every job created is accounted for
    with Ledger(ledger_path) as led:  # the lease was released: a rerun starts at once
        assert all(b["states"].get("intent", 0) == 0 for b in led.batches())
    r2 = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert r2.summary["counts"]["completed"] == 200
    assert sandbox.create_count() == 200 and sandbox.duplicate_creates() == {}


def test_failed_results_file_write_stops_the_run(sandbox, ledger_path, tmp_path, monkeypatch):
    from akool_flows.batch.export import IncrementalCsv

    calls = {"n": 0}
    real_flush = IncrementalCsv.flush

    def flaky_flush(self):
        calls["n"] += 1
        if calls["n"] > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_flush(self)

    monkeypatch.setattr(IncrementalCsv, "flush", flaky_flush)
    sandbox.configure(job_seconds=0.3)
    c = make_client(sandbox, sync=True)
    r = run_batch(texts(300), "moderation", client=c, ledger=ledger_path, poll_interval=0.1, concurrency=2,
                  max_requests_per_second=60, results_path=tmp_path / "out.csv", **MOD)
    assert r.summary["stopped_by"] == "error" and r.exit_status == 4
    assert sandbox.create_count() < 300
    assert r.results["job_id"].notna().sum() == sandbox.create_count()


# --- hole 4: a budget cannot price a document URL ------------------------------------------------

def test_budget_refuses_text_moderation_of_document_urls_without_a_ceiling(sandbox, client, ledger_path):
    df = pd.DataFrame({"text": [f"https://example.com/doc-{i}.pdf" for i in range(10)]})
    from akool_flows.batch import plan_batch

    plan = plan_batch(df, "moderation", **MOD)
    assert plan.estimate.unknown_rows == 10 and plan.estimate.sources["price_list"] == 0
    with pytest.raises(BudgetError, match="max_credits_per_row"):
        run_batch(plan, client=client, ledger=ledger_path, poll_interval=0.1, budget_credits=5)
    assert sandbox.create_count() == 0  # refused before any credit was spent
    r = run_batch(plan, client=client, ledger=ledger_path, poll_interval=0.1, budget_credits=5,
                  max_credits_per_row=1.0)
    assert sandbox.create_count() == 5 and r.summary["stopped_by"] == "budget"


# --- hole 5: two runs on inputs that differ by one row, one ledger, at the same time -------------

def test_concurrent_batches_sharing_a_ledger_send_each_request_once(sandbox, ledger_path):
    sandbox.configure(job_seconds=0.2)
    small, big = texts(200), texts(201)
    results: dict[str, object] = {}

    def go(name: str, df: pd.DataFrame) -> None:
        c = make_client(sandbox, sync=True)
        with Ledger(ledger_path) as led:  # each its own connection and owner, like two processes
            results[name] = run_batch(df, "moderation", client=c, ledger=led, poll_interval=0.1, concurrency=8,
                                      **MOD)

    threads = [threading.Thread(target=go, args=("a", small)), threading.Thread(target=go, args=("b", big))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sandbox.create_count() == 201 and sandbox.duplicate_creates() == {}
    for r in results.values():
        assert r.summary["counts"]["completed"] == len(r.results)


def test_reuse_adopts_another_batchs_uncertain_copy_instead_of_paying(sandbox, ledger_path):
    c = make_client(sandbox, sync=True)
    df = texts(3)
    first = run_batch(df, "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)
    key = first.results["row_key"][0]
    with Ledger(ledger_path) as led:
        led.mark_uncertain(first.summary["batch_id"], key, None, "answer lost")
    r = run_batch(texts(4), "moderation", client=c, ledger=ledger_path, poll_interval=0.1, **MOD)
    assert r.results["outcome"].tolist()[:1] == ["uncertain"]
    assert sandbox.create_count() == 4  # only the new fourth row


# --- hole 8: the ledger's disk fills up mid-run ---------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    """A real 16 MB filesystem (tmpfs) that a test can fill up; skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


def test_full_ledger_disk_stops_before_the_next_create_and_keeps_every_job_id(sandbox, small_disk):
    sandbox.configure(job_seconds=0.3)
    c = make_client(sandbox, sync=True)
    df = texts(400)
    led = Ledger(small_disk / "ledger.sqlite")  # one owner: the full disk also kept the lease from its release

    def fill_once(p) -> None:
        if p.submitted >= 40 and not (small_disk / "filler").exists():
            _fill(small_disk)

    r = run_batch(df, "moderation", client=c, ledger=led, poll_interval=0.1, concurrency=4,
                  max_requests_per_second=100, progress=fill_once, **MOD)
    assert r.summary["stopped_by"] == "error" and r.exit_status == 4
    assert "ledger" in r.summary["stop_message"]
    created = {j["_id"] for j in sandbox.jobs("moderation")}
    assert 40 <= len(created) < 400
    assert created == set(r.results["job_id"].dropna())  # every paid job is in the results
    unsaved = {u["job_id"] for u in r.summary["unsaved_job_ids"]}
    (small_disk / "filler").unlink()  # space freed: the same run again
    r2 = run_batch(df, "moderation", client=c, ledger=led, poll_interval=0.1, **MOD)
    led.close()
    assert sandbox.duplicate_creates() == {}
    counts = r2.summary["counts"]
    assert counts["completed"] + counts["uncertain"] == 400
    assert counts["uncertain"] <= len(unsaved) + 4  # only rows whose id (or in-flight intent) was lost


# --- hole 9: three runs start at once on a new ledger ----------------------------------------------

def _open_and_register(path: str, barrier, n: int) -> str:
    barrier.wait()
    try:
        with Ledger(path) as led:
            led.begin_batch(f"b{n}", "moderation", [(f"k{i}", i) for i in range(50)], endpoint="x")
            led.begin_batch("shared", "moderation", [(f"k{i}", i) for i in range(50)], endpoint="x")
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"{type(exc).__name__}: {exc}"


def test_three_runs_starting_at_once_on_a_new_ledger(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(3)
        with ctx.Pool(3) as pool:
            answers = pool.starmap(_open_and_register, [(str(tmp_path / "new.sqlite"), barrier, n) for n in range(3)])
    assert answers == ["ok", "ok", "ok"]


# --- hole 10: a duplicate row carries its original's verdict --------------------------------------

def test_duplicate_rows_all_get_the_verdict_and_share_the_cost(sandbox, client, ledger_path):
    df = pd.DataFrame({"text": ["I will kill you", "hello there", "I will kill you", "I will kill you"]})
    r = run_batch(df, "moderation", client=client, ledger=ledger_path, poll_interval=0.1, **MOD)
    res = r.results
    assert sandbox.create_count() == 2
    assert res["outcome"].tolist() == ["completed"] * 4
    assert res.loc[[0, 2, 3], "conclusion"].tolist() == [res.loc[0, "conclusion"]] * 3
    assert res["duplicate_of"].tolist()[2:] == [0, 0] and pd.isna(res["duplicate_of"][0])
    assert res.loc[[0, 2, 3], "credits"].sum() == pytest.approx(sandbox.job_payload(res.loc[0, "job_id"])
                                                                .get("deduction_credit", 0.1))
