"""Both clients drive the same core flows.

`wait`: the deadline is checked before each poll, so no status call is sent once the time is
up, and sync and async clients poll the same number of times. Token exchange: concurrent calls
(coroutines or threads) share one getToken.
"""

from __future__ import annotations

import time

import aiohttp  # noqa: F401 - imported up front: the aiohttp sender's lazy import costs ~0.5 s of the deadline
import pytest

from akool_flows.api import errors as E

from .helpers import DRIVERS, akool_responder, make_client, scripted_server

STATUS_PATH = "/api/open/v3/audio/infobymodelid"


def _never_done(req):
    if req.path == STATUS_PATH:
        return "json", 200, {"code": 1000, "msg": "OK", "data": {"_id": "j1", "status": 2}}
    return akool_responder(req)


async def _wait(driver: str, **kwargs):
    with scripted_server(_never_done) as srv:
        drv = make_client(driver, srv.url)
        started = time.monotonic()
        try:
            with pytest.raises(E.JobTimeoutError) as info:
                await drv("wait", "tts", "j1", **kwargs)
        finally:
            await drv.close()
        return srv.count(STATUS_PATH), time.monotonic() - started, info.value


@pytest.mark.parametrize("driver", DRIVERS)
async def test_an_expired_deadline_sends_no_poll(driver):
    polls, _, exc = await _wait(driver, poll_interval=5, timeout=0)
    assert polls == 0 and exc.last_status is None and exc.job_id == "j1"


async def test_sync_and_async_wait_poll_alike_until_the_deadline():
    # Polls start at 0, 0.3, 0.6 and 0.9 s; at 1.0 s the deadline ends the wait before a fifth.
    results = {driver: await _wait(driver, poll_interval=0.3, timeout=1.0) for driver in DRIVERS}
    polls = {driver: r[0] for driver, r in results.items()}
    assert len(set(polls.values())) == 1, polls
    assert polls["sync-httpx"] == 4
    for driver, (_, elapsed, exc) in results.items():
        assert 0.95 <= elapsed < 3.0, (driver, elapsed)
        assert exc.last_status is not None and exc.last_status.state == "processing"


# --- the other shared pieces: one getToken for many concurrent calls, batched statuses ----------

def _slow_token(req):
    if req.path == "/api/open/v3/getToken":
        time.sleep(0.2)  # blocks the scripted server: every other request queues behind it
    return akool_responder(req)


async def test_concurrent_async_calls_share_one_token_exchange():
    import asyncio

    from .helpers import CLIENT_ID, CLIENT_SECRET

    with scripted_server(_slow_token) as srv:
        drv = make_client("async-aiohttp", srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        try:
            found = await asyncio.gather(*(drv("status", "moderation", f"65f8180c24d9989e93dde3{i:02d}")
                                           for i in range(12)))
            many = await drv("statuses", "tts", [f"a{i}" for i in range(5)], concurrency=2)
        finally:
            await drv.close()
    assert srv.count("/api/open/v3/getToken") == 1 and all(st.ok for st in found)
    assert sorted(many) == [f"a{i}" for i in range(5)] and srv.count(STATUS_PATH) == 5


def test_threads_sharing_a_sync_client_share_one_token_exchange():
    from concurrent.futures import ThreadPoolExecutor

    from akool_flows.api import AkoolClient

    from .helpers import CLIENT_ID, CLIENT_SECRET, FAST_RETRY

    with scripted_server(_slow_token) as srv:
        with AkoolClient(base_url=srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, retry=FAST_RETRY) as client:
            with ThreadPoolExecutor(6) as pool:
                found = list(pool.map(lambda i: client.status("moderation", f"id{i}"), range(12)))
            batched = client.statuses("faceswap_image", [f"f{i}" for i in range(150)])  # two listbyids calls
    assert srv.count("/api/open/v3/getToken") == 1 and all(st.ok for st in found)
    assert len(batched) == 150 and srv.count("/api/open/v3/faceswap/result/listbyids") == 2


async def test_a_client_made_from_another_shares_its_token_exchange():
    """`from_client` (how a batch run turns the caller's blocking client into its async one)
    shares the credentials: one getToken for both, and the Airflow hook's machine-wide token
    cache behind a task's client reaches the batch engine's client too."""
    from akool_flows.api import AkoolClient, AsyncAkoolClient

    from .helpers import CLIENT_ID, CLIENT_SECRET, FAST_RETRY

    with scripted_server(akool_responder) as srv:
        with AkoolClient(base_url=srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET, retry=FAST_RETRY) as sync:
            async with AsyncAkoolClient.from_client(sync) as other:
                assert other.credentials is sync.credentials
                await other.status("moderation", "65f8180c24d9989e93dde301")
            sync.status("moderation", "65f8180c24d9989e93dde302")
            with AkoolClient.from_client(sync, client_id="another", client_secret=CLIENT_SECRET) as elsewhere:
                assert elsewhere.credentials is not sync.credentials
    assert srv.count("/api/open/v3/getToken") == 1
