"""Crash test: the CLI is SIGKILLed mid-batch against a sandbox in another process, then rerun."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time

import pandas as pd
import pytest

from .conftest import CLI, ledger_states, sandbox_stats


@pytest.mark.slow
def test_sigkill_mid_batch_then_rerun_resumes_without_paying_twice(tmp_path, sandbox_process):
    env = sandbox_process
    base = env["AKOOL_BASE_URL"]
    n = 300
    pd.DataFrame({"text": [f"comment {i}: have a nice day" for i in range(n)]}).to_csv(tmp_path / "in.csv",
                                                                                       index=False)
    ledger = tmp_path / "ledger.sqlite"
    cmd = [CLI, "moderate", str(tmp_path / "in.csv"), "--column", "text", "--type", "text", "--out",
           str(tmp_path / "results.csv"), "--ledger", str(ledger), "--concurrency", "8", "--poll-interval", "0.3",
           "--quiet", "--show", "0"]
    victim = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while ledger_states(ledger).get("submitted", 0) < 60:
        assert victim.poll() is None, "the batch finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    at_kill = ledger_states(ledger)
    # Intents whose request was never written go back to pending and are sent by the rerun;
    # only those handed to the connection may exist, and come back uncertain.
    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=5) as con:
        in_flight = con.execute("SELECT count(*) FROM jobs WHERE state='intent' AND sent_at IS NOT NULL").fetchone()[0]
    assert at_kill.get("pending", 0) > 0  # really killed mid-batch
    print(f"ledger at the kill: {at_kill}, {in_flight} of the intents sent")

    rerun = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == (1 if in_flight else 0), rerun.stdout + rerun.stderr
    assert "Traceback" not in rerun.stderr
    res = pd.read_csv(tmp_path / "results.csv")
    assert len(res) == n and res["row_key"].is_unique and sorted(res["input_index"]) == list(range(1, n + 1))
    counts = res["outcome"].value_counts().to_dict()
    assert counts.get("uncertain", 0) == in_flight
    assert counts.get("completed", 0) == n - in_flight
    unc = res[res["outcome"] == "uncertain"]
    assert unc["attempt_at"].notna().all()
    if in_flight:
        assert "uncertain" in rerun.stdout and "--resubmit-uncertain" in rerun.stdout
    stats = sandbox_stats(base)
    assert stats["duplicate_creates"] == {}
    assert n - in_flight <= stats["creates"] <= n

    again = subprocess.run(cmd + ["--resubmit-uncertain"], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=120)
    assert again.returncode == 0, again.stdout + again.stderr
    res = pd.read_csv(tmp_path / "results.csv")
    assert len(res) == n and set(res["outcome"]) == {"completed"}
    dupes = sum(v - 1 for v in sandbox_stats(base)["duplicate_creates"].values())
    assert dupes <= in_flight  # only rows whose first create had reached Akool can be paid twice
