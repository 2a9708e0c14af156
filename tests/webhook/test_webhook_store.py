"""WebhookEventStore: dedupe, latest, submitted ids, thread safety, wait_for."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest

from akool_flows.webhook import WebhookEvent, WebhookEventStore


def ev(job_id: str, status: int, sig: str = "a" * 40, url: str | None = None) -> WebhookEvent:
    return WebhookEvent(job_id=job_id, status=status, signature=sig, url=url)


def test_add_dedupes_on_job_status_signature(store):
    assert store.add(ev("j1", 3, url="u")) is True
    assert store.add(ev("j1", 3, url="u")) is False  # Akool retry of the same body
    assert store.add(ev("j1", 3, sig="b" * 40)) is True  # a different delivery
    assert store.add(ev("j1", 2)) is True
    assert [e.status for e in store.events("j1")] == [3, 3, 2]


def test_events_without_signature_dedupe_too(store):
    assert store.add(WebhookEvent(job_id="j", status=2)) is True
    assert store.add(WebhookEvent(job_id="j", status=2)) is False


def test_latest_prefers_later_lifecycle_stage_over_arrival_order(store):
    assert store.latest("nope") is None
    store.add(ev("j", 3, url="https://r"))
    store.add(ev("j", 2, sig="b" * 40))  # a delayed "processing" retry arrives last
    latest = store.latest("j")
    assert latest is not None and latest.status == 3 and latest.url == "https://r"
    store.add(ev("k", 1))
    store.add(ev("k", 2))
    assert store.latest("k").status == 2


def test_latest_many_batches_over_many_ids(store):
    ids = [f"job-{i}" for i in range(1200)]  # more than one IN (...) chunk
    for i, job_id in enumerate(ids):
        if i % 3:
            store.add(ev(job_id, 3 if i % 2 else 2))
    found = store.latest_many(ids + ["missing"])
    assert len(found) == 800 and "missing" not in found
    assert found["job-1"].status == 3 and found["job-2"].status == 2
    terminal = store.latest_many(ids, terminal_only=True)
    assert all(e.is_terminal for e in terminal.values()) and len(terminal) == 400


def test_register_submitted(store):
    assert not store.is_submitted("j1")
    store.register_submitted("j1", kind="faceswap")
    store.register_submitted("j1")  # idempotent
    assert store.is_submitted("j1")
    assert store.register_submitted_many([f"b{i}" for i in range(700)] + ["j1"], kind="tts") == 700
    assert store.is_submitted("b699") and not store.is_submitted("b700")
    with pytest.raises(ValueError, match="job_id"):
        store.register_submitted("")
    with pytest.raises(ValueError, match="kind"):
        store.register_submitted("x", kind="k" * 65)


def test_sqlite_is_in_wal_mode_and_durable(tmp_path):
    path = tmp_path / "s.sqlite"
    with WebhookEventStore(f"sqlite:///{path}") as s:
        s.register_submitted("j")
        s.add(ev("j", 3))
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with WebhookEventStore(f"sqlite:///{path}") as reopened:
        assert reopened.is_submitted("j") and reopened.latest("j").status == 3


def test_in_memory_store_is_shared_across_threads():
    with WebhookEventStore("sqlite://") as s:
        t = threading.Thread(target=s.add, args=(ev("j", 3),))
        t.start()
        t.join()
        assert s.latest("j") is not None


def test_concurrent_adds_from_threads_store_each_event_once(store):
    def worker(n: int) -> None:
        for i in range(50):
            store.add(ev(f"j{i}", 3))  # every thread delivers the same 50 events

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(store.events(f"j{i}")) for i in range(50)) == 50


def test_repr_names_the_url(store):
    assert repr(store).startswith("WebhookEventStore(url='sqlite:///") and "events.sqlite" in repr(store)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="url"):
        WebhookEventStore("")
    with pytest.raises(ValueError, match="poll_interval"):
        WebhookEventStore("sqlite://", poll_interval=0)


# --- wait_for ------------------------------------------------------------------------------


async def test_wait_for_returns_an_already_stored_terminal_event(store):
    store.add(ev("j", 4))
    got = await store.wait_for("j", timeout=1)
    assert got is not None and got.state == "failed"
    assert (await store.wait_for("j", timeout=0)).status == 4


async def test_wait_for_times_out_with_none_and_ignores_non_terminal(store):
    store.add(ev("j", 2))
    t0 = time.monotonic()
    assert await store.wait_for("j", timeout=0.2) is None
    assert 0.2 <= time.monotonic() - t0 < 1.5
    assert not store._waiting._waiters  # nothing leaks after a timeout


async def test_wait_for_is_woken_in_process_immediately(tmp_path):
    # A long poll interval proves the wake-up came from the in-process notification.
    with WebhookEventStore(f"sqlite:///{tmp_path / 'w.sqlite'}", poll_interval=30) as s:
        async def deliver():
            await asyncio.sleep(0.05)
            await asyncio.to_thread(s.add, ev("j", 3, url="done"))  # e.g. the receiver's thread

        t0 = time.monotonic()
        task = asyncio.create_task(deliver())
        got = await s.wait_for("j", timeout=5)
        await task
        assert got is not None and got.url == "done"
        assert time.monotonic() - t0 < 1.0


async def test_wait_for_sees_events_written_by_another_process(store, tmp_path):
    # A second store on the same file stands in for a receiver in another process:
    # no in-process notification reaches `store`, only its batched database check.
    other = WebhookEventStore(store.url)
    try:
        async def deliver():
            await asyncio.sleep(0.1)
            await asyncio.to_thread(other.add, ev("j", 3))

        task = asyncio.create_task(deliver())
        got = await store.wait_for("j", timeout=5)
        await task
        assert got is not None and got.status == 3
    finally:
        other.close()


async def test_thousands_of_concurrent_waits_are_cheap(store):
    ids = [f"j{i}" for i in range(2000)]
    other = WebhookEventStore(store.url)
    try:
        async def deliver():
            await asyncio.sleep(0.05)
            for i, job_id in enumerate(ids[:1500]):
                (store if i % 2 else other).add(ev(job_id, 3))

        t0 = time.monotonic()
        task = asyncio.create_task(deliver())
        # The timeout leaves room for a loaded machine to store 1,500 events; the 500 that never
        # finish bound the wall time.
        results = await asyncio.gather(*(store.wait_for(j, timeout=5.0) for j in ids))
        await task
        elapsed = time.monotonic() - t0
    finally:
        other.close()
    assert sum(r is not None for r in results) == 1500
    assert all(r.job_id == j for r, j in zip(results, ids) if r is not None)
    assert elapsed < 10  # bounded by the 5 s timeout of the 500 that never finish
    await asyncio.sleep(store.poll_interval * 3)
    assert store._waiting.idle  # the watcher retires when idle


async def test_cancelled_wait_cleans_up(store):
    task = asyncio.create_task(store.wait_for("j", timeout=10))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not store._waiting._waiters


async def test_wait_for_rejects_bad_timeout(store):
    with pytest.raises(ValueError, match="timeout"):
        await store.wait_for("j", timeout=-1)


def test_concurrent_registration_of_the_same_ids_counts_each_once(store):
    ids = [f"r{i}" for i in range(300)]
    counts: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        counts.append(store.register_submitted_many(ids))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(counts) == 300 and all(store.is_submitted(i) for i in ids[:5])


def test_ingest_many_groups_lookups_and_commit(store):
    store.register_submitted_many(["a", "b"])
    store.add(ev("a", 2, "s0"))
    results = store.ingest_many([[ev("a", 2, "s0")], [ev("a", 3, "s1")], [ev("a", 3, "s1")],
                                 [ev("zz", 3, "s2"), ev("b", 3, "s3")], [ev("nope", 3, "s4")]])
    assert [(e.job_id if e else None, new) for e, new in results] == [
        ("a", False), ("a", True), ("a", False), ("b", True), (None, False)]
    assert store.latest("a").status == 3 and store.latest("b").status == 3
    assert len(store.events("a")) == 2
