"""`StatusCoalescer`: concurrent status polls merged into as few requests as the API allows."""

from __future__ import annotations

import asyncio

import pytest

from akool_flows.api.coalesce import StatusCoalescer
from akool_flows.api.errors import NotFoundError, ServerError
from akool_flows.api.jobs import JobStatus

FACESWAP = "faceswap_image"  # batch-pollable (listbyids)
TTS = "tts"  # one status request per id


def _done(kind: str, job_id: str) -> JobStatus:
    return JobStatus(job_id=job_id, kind=kind, state="completed", status_code=3,
                     result_urls=(f"https://cdn.example.com/{job_id}.out",))


class FakeClient:
    """Answers statuses()/status() for known ids, records every call, fails on demand."""

    def __init__(self, known: set[str] | None = None, *, delay: float = 0.0) -> None:
        self.known = known
        self.delay = delay
        self.statuses_calls: list[tuple[str, list[str]]] = []
        self.status_calls: list[tuple[str, str]] = []
        self.fail_next: BaseException | None = None
        self.closed = False

    def _maybe_fail(self) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc

    async def statuses(self, kind: str, ids: list[str]) -> dict[str, JobStatus]:
        self.statuses_calls.append((kind, list(ids)))
        await asyncio.sleep(self.delay)
        self._maybe_fail()
        return {i: _done(kind, i) for i in ids if self.known is None or i in self.known}

    async def status(self, kind: str, job_id: str) -> JobStatus:
        self.status_calls.append((kind, job_id))
        await asyncio.sleep(self.delay)
        self._maybe_fail()
        if self.known is not None and job_id not in self.known:
            raise NotFoundError(f"{job_id} does not exist", code=1008)
        return _done(kind, job_id)

    async def aclose(self) -> None:
        self.closed = True


def test_concurrent_polls_of_a_batch_pollable_kind_become_one_request():
    client = FakeClient()
    poller = StatusCoalescer(client)

    async def go():
        singles = [poller.status(FACESWAP, f"job{i}") for i in range(40)]
        many = poller.statuses(FACESWAP, ["job3", "job40", "job41"])
        return await asyncio.gather(*singles, many)

    *singles, many = asyncio.run(go())
    assert [s.job_id for s in singles] == [f"job{i}" for i in range(40)]
    assert sorted(many) == ["job3", "job40", "job41"]
    (call,) = client.statuses_calls  # one request for 42 distinct ids
    assert call[0] == FACESWAP and sorted(call[1]) == sorted({f"job{i}" for i in range(42)})
    assert poller.requests_sent == 1 and client.status_calls == []


def test_polls_in_separate_windows_are_separate_requests():
    client = FakeClient()
    poller = StatusCoalescer(client, window=0.01)

    async def go():
        await poller.status(FACESWAP, "a")
        await poller.status(FACESWAP, "b")

    asyncio.run(go())
    assert [ids for _, ids in client.statuses_calls] == [["a"], ["b"]]


def test_a_failed_request_reaches_every_waiter_and_the_next_window_works():
    client = FakeClient()
    client.fail_next = ServerError("HTTP 502", http_status=502)
    poller = StatusCoalescer(client)

    async def go():
        first = await asyncio.wait_for(asyncio.gather(
            *(poller.status(FACESWAP, f"job{i}") for i in range(10)), return_exceptions=True), timeout=5)
        second = await poller.status(FACESWAP, "job0")
        return first, second

    first, second = asyncio.run(go())
    assert len(client.statuses_calls) == 2
    assert all(isinstance(r, ServerError) for r in first) and len(first) == 10
    assert second.state == "completed"


def test_unknown_ids_are_absent_and_status_raises_not_found():
    client = FakeClient(known={"a"})
    poller = StatusCoalescer(client)

    async def go():
        found = await poller.statuses(FACESWAP, ["a", "gone"])
        with pytest.raises(NotFoundError):
            await poller.status(FACESWAP, "gone")
        return found

    assert list(asyncio.run(go())) == ["a"]


def test_kinds_without_a_batch_endpoint_share_requests_per_id_and_isolate_failures():
    client = FakeClient(known={"a", "b"}, delay=0.02)
    poller = StatusCoalescer(client)

    async def go():
        return await asyncio.gather(*(poller.status(TTS, "a") for _ in range(10)), poller.status(TTS, "b"),
                                    poller.statuses(TTS, ["a", "gone"]), poller.status(TTS, "gone"),
                                    return_exceptions=True)

    *same_a, b, mixed, gone = asyncio.run(go())
    # One request per distinct id, whoever asked; an unknown id fails only the caller that needs it.
    assert sorted(client.status_calls) == [(TTS, "a"), (TTS, "b"), (TTS, "gone")]
    assert client.statuses_calls == []
    assert all(s.job_id == "a" for s in same_a) and b.job_id == "b"
    assert list(mixed) == ["a"] and isinstance(gone, NotFoundError)


def test_a_failed_single_request_reaches_every_caller_of_that_id():
    client = FakeClient(delay=0.02)
    client.fail_next = ServerError("HTTP 503", http_status=503)
    poller = StatusCoalescer(client)

    async def go():
        return await asyncio.gather(*(poller.status(TTS, "a") for _ in range(5)), return_exceptions=True)

    results = asyncio.run(go())
    assert client.status_calls == [(TTS, "a")] and all(isinstance(r, ServerError) for r in results)


def test_a_caller_that_gives_up_does_not_cancel_the_others():
    client = FakeClient(delay=0.1)
    poller = StatusCoalescer(client)

    async def go():
        quitter = asyncio.ensure_future(poller.status(TTS, "a"))
        stayer = asyncio.ensure_future(poller.status(TTS, "a"))
        batch_quitter = asyncio.ensure_future(poller.status(FACESWAP, "x"))
        batch_stayer = asyncio.ensure_future(poller.status(FACESWAP, "y"))
        await asyncio.sleep(0.01)
        quitter.cancel()
        batch_quitter.cancel()
        return await stayer, await batch_stayer

    single, batched = asyncio.run(go())
    assert single.job_id == "a" and batched.job_id == "y"


def test_connect_is_called_once_and_aclose_closes_what_it_made():
    made = []

    async def connect():
        made.append(FakeClient())
        return made[-1]

    async def go():
        poller = StatusCoalescer(connect=connect)
        await asyncio.gather(*(poller.status(FACESWAP, f"j{i}") for i in range(5)), poller.status(TTS, "t"))
        waiting = asyncio.ensure_future(poller.status(FACESWAP, "late"))
        await asyncio.sleep(0)
        await poller.aclose()
        with pytest.raises(asyncio.CancelledError):
            await waiting  # nobody is left hanging

    asyncio.run(go())
    assert len(made) == 1 and made[0].closed


def test_a_given_client_stays_open_and_arguments_are_checked():
    client = FakeClient()

    async def go():
        poller = StatusCoalescer(client)
        await poller.status(FACESWAP, "a")
        await poller.aclose()

    asyncio.run(go())
    assert not client.closed
    with pytest.raises(ValueError):
        StatusCoalescer()
    with pytest.raises(ValueError):
        StatusCoalescer(client, connect=lambda: client)


def test_against_the_sandbox_thirty_polls_are_one_listbyids_request():
    sandbox_mod = pytest.importorskip("akool_flows.sandbox")
    from akool_flows.api import AkoolClient, AsyncAkoolClient

    face = {"path": "https://example.com/face.jpg", "opts": "262,175:363,175:313,215:272,279"}
    with sandbox_mod.Sandbox(sandbox_mod.SandboxConfig(queue_seconds=0.02, job_seconds=0.05, latency=0.0)) as sb:
        with AkoolClient.from_env(sb.env("client")) as sync:
            jobs = [sync.submit(FACESWAP, sourceImage=[face], targetImage=[face],
                                modifyImage=f"https://example.com/p{i}.jpg") for i in range(30)]
        path = "/api/open/v3/faceswap/result/listbyids"
        before = sb.stats()["polls_by_path"].get(path, 0)

        async def go():
            async with AsyncAkoolClient.from_env(sb.env("client")) as client:
                poller = StatusCoalescer(client)
                return await asyncio.gather(*(poller.status(FACESWAP, j.job_id) for j in jobs))

        found = asyncio.run(go())
        assert [s.job_id for s in found] == [j.job_id for j in jobs]
        assert sb.stats()["polls_by_path"].get(path, 0) - before == 1
