"""End to end: a sandbox job with webhookUrl completes through the receiver, with no status poll."""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from akool_flows.api import AkoolClient, AsyncAkoolClient  # noqa: E402
from akool_flows.sandbox import Sandbox, SandboxConfig  # noqa: E402
from akool_flows.webhook import WebhookEventStore, create_webhook_app  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox():
    with Sandbox(SandboxConfig(queue_seconds=0.05, job_seconds=0.4)) as sb:
        yield sb


@pytest.fixture
def receiver(sandbox, tmp_path, serve_asgi):
    """The real receiver (uvicorn on a socket), sharing the sandbox's client credentials."""
    store = WebhookEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}", poll_interval=0.05)
    app = create_webhook_app(store, sandbox.client_id, sandbox.client_secret, path_token="t" * 40)
    yield store, f"{serve_asgi(app)}/webhook/{'t' * 40}"
    store.close()


def test_async_wait_completes_from_the_event_with_zero_polls(sandbox, receiver):
    store, url = receiver

    async def go():
        async with AsyncAkoolClient.from_env(sandbox.env(), event_store=store) as client:
            job = await client.submit("talking_photo", talking_photo_url="https://example.com/p.jpg",
                                      audio_url="https://example.com/a.mp3", webhookUrl=url)
            # A poll interval far longer than the job: only the event can finish this in time.
            started = time.monotonic()
            st = await client.wait("talking_photo", job.job_id, poll_interval=30, timeout=60, events=store)
            return job, st, time.monotonic() - started

    job, st, elapsed = asyncio.run(go())
    assert st.state == "completed" and st.job_id == job.job_id
    assert st.result_url and st.result_url.startswith(sandbox.base_url)
    assert elapsed < 10
    stats = sandbox.stats()
    assert stats["polls"] == 0, stats["polls_by_path"]
    assert stats["webhooks_delivered"] >= 1
    assert store.is_submitted(job.job_id)


def test_failed_job_arrives_as_failed_event(sandbox, receiver):
    store, url = receiver
    with AkoolClient.from_env(sandbox.env(), event_store=store) as client:
        job = client.submit("moderation", content="https://example.com/sandbox-fail.jpg", type=1, webhookUrl=url)
        deadline = time.monotonic() + 10
        while store.latest(job.job_id) is None or not store.latest(job.job_id).is_terminal:
            assert time.monotonic() < deadline, "no terminal event"
            time.sleep(0.05)
        polls_before = sandbox.stats()["polls"]
        st = client.wait("moderation", job.job_id, poll_interval=30, timeout=60, events=store)
    assert st.state == "failed"
    assert sandbox.stats()["polls"] == polls_before


def test_lost_webhook_falls_back_to_polling(sandbox, tmp_path):
    """A webhookUrl nobody answers: the wait still finishes by polling."""
    store = WebhookEventStore(f"sqlite:///{tmp_path / 'e.sqlite'}", poll_interval=0.05)
    dead = f"http://127.0.0.1:{_free_port()}/webhook"

    async def go():
        async with AsyncAkoolClient.from_env(sandbox.env(), event_store=store) as client:
            job = await client.submit("lipsync", video_url="https://example.com/v.mp4",
                                      audio_url="https://example.com/a.mp3", webhookUrl=dead)
            return await client.wait("lipsync", job.job_id, poll_interval=0.3, timeout=30, events=store)

    st = asyncio.run(go())
    store.close()
    assert st.state == "completed"
    assert sandbox.stats()["polls"] >= 1
