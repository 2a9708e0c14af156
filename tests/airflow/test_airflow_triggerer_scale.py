"""Webhook waiting at triggerer scale: 500 deferred tasks' triggers on one event loop (one
triggerer process) against a real Postgres at its default ``max_connections`` (100).

Each trigger used to open its own event store (its own pool) and read it twice a second: ~170
deferred tasks exhausted Postgres. Shared, the loop holds one small pool and one watcher."""

from __future__ import annotations

import asyncio
import resource
import threading
import time

import pytest
from conftest import conn_json


pytestmark = pytest.mark.slow

FACE = {"path": "https://example.com/face.jpg", "opts": "262,175:363,175:313,215:272,279"}
LISTBYIDS = "/api/open/v3/faceswap/result/listbyids"
N = 500


class _ConnectionSampler(threading.Thread):
    """Samples pg_stat_activity while the triggers wait."""

    def __init__(self, admin_url: str) -> None:
        super().__init__(daemon=True)
        import sqlalchemy as sa

        self._engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
        self._sa = sa
        self.samples: list[tuple[int, int]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        # Connections to the event store's database (the receiver's pool and the triggerer's),
        # and every client connection to the server (minus this sampler).
        query = self._sa.text("SELECT count(*) FILTER (WHERE datname = 'akool'), count(*) - 1 "
                              "FROM pg_stat_activity WHERE backend_type = 'client backend'")
        with self._engine.connect() as conn:
            while not self.stop.is_set():
                self.samples.append(tuple(conn.execute(query).one()))
                time.sleep(0.1)
        self._engine.dispose()


def test_500_deferred_tasks_share_one_small_pool_and_finish_by_webhook(airflow, services, serve_asgi,
                                                                         monkeypatch):
    from akool_flows.airflow.triggers import AkoolJobTrigger
    from akool_flows.api import AkoolClient
    from akool_flows.webhook import WebhookEventStore, create_webhook_app

    sb = airflow
    store_url = services["PG_URL"] + "/akool"
    receiver_store = WebhookEventStore(store_url)  # the API server's receiver (another process in production)
    base = serve_asgi(create_webhook_app(receiver_store, sb.client_id, sb.client_secret))
    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_DEFAULT", conn_json(
        sb, webhook_url=f"{base}/webhook", webhook_store_url=store_url))
    sb.configure(job_seconds=6.0)  # every trigger is waiting before the first callback
    try:
        with AkoolClient.from_env(sb.env("client")) as client:
            jobs = [client.submit("faceswap_image", sourceImage=[FACE], targetImage=[FACE],
                                  modifyImage=f"https://example.com/p-{i}.jpg", webhookUrl=f"{base}/webhook")
                    for i in range(N)]
        receiver_store.register_submitted_many([j.job_id for j in jobs], kind="faceswap_image")
        polls_before = sb.stats()["polls_by_path"].get(LISTBYIDS, 0)
        sampler = _ConnectionSampler(services["PG_URL"] + "/postgres")
        sampler.start()
        # poll_interval 30 s (webhook fallback 150 s): only the callbacks can finish this in time.
        triggers = [AkoolJobTrigger(kind="faceswap_image", job_ids=[j.job_id], poll_interval=30,
                                    use_webhook_store=True) for j in jobs]

        async def run_all():
            return await asyncio.wait_for(asyncio.gather(*(t.run().__anext__() for t in triggers)), 90)

        started, cpu0 = time.monotonic(), time.thread_time()
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        events = asyncio.run(run_all())
        elapsed, loop_cpu = time.monotonic() - started, time.thread_time() - cpu0
        rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
        sampler.stop.set()
        sampler.join(5)
    finally:
        sb.configure(job_seconds=0.4)
        receiver_store.close()
    statuses = [e.payload["status"] for e in events]
    assert statuses == ["success"] * N, {s: statuses.count(s) for s in set(statuses)}
    # What the callback lacks (the cost) came from coalesced status calls, not one call per job.
    credits = [e.payload["jobs"][0]["credits"] for e in events]
    assert all(c is not None and c > 0 for c in credits)
    polls = sb.stats()["polls_by_path"].get(LISTBYIDS, 0) - polls_before
    store_peak = max(s[0] for s in sampler.samples)
    total_peak = max(s[1] for s in sampler.samples)
    print(f"\n{N} triggers on one loop: {elapsed:.1f}s; event store DB connections peak {store_peak} "
          f"(receiver + triggerer), all Postgres client connections peak {total_peak}; {polls} listbyids "
          f"requests ({polls / N:.3f} per job); event-loop CPU {loop_cpu * 1000 / N:.2f} ms per trigger; "
          f"peak RSS growth {rss_growth_kib / N:.1f} KiB per trigger; {len(sampler.samples)} samples")
    # One pool of 2 (+2 overflow) for the whole triggerer, plus the receiver's: the old way held
    # one pool per trigger (500 > max_connections=100).
    assert 1 <= store_peak <= 8, sampler.samples
    assert total_peak <= 10
    assert polls <= 60
    assert elapsed < 60
