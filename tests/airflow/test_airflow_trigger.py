"""`AkoolJobTrigger` on an event loop, as the triggerer runs it, against the sandbox."""

from __future__ import annotations

import asyncio
import time

import pytest

FACE = {"path": "https://example.com/face.jpg", "opts": "262,175:363,175:313,215:272,279"}
LISTBYIDS = "/api/open/v3/faceswap/result/listbyids"


def _faceswaps(sb, n: int) -> list:
    from akool_flows.api import AkoolClient

    with AkoolClient.from_env(sb.env("client")) as client:
        return [client.submit("faceswap_image", sourceImage=[FACE], targetImage=[FACE],
                              modifyImage=f"https://example.com/photo-{i}.jpg") for i in range(n)]


def _first_event(trigger):
    async def go():
        return await trigger.run().__anext__()

    return asyncio.run(go()).payload


def test_serialize_round_trips():
    from airflow.sdk._shared.module_loading import import_string

    from akool_flows.airflow.triggers import AkoolJobTrigger

    trigger = AkoolJobTrigger(kind="tts", job_ids=["a", "b"], poll_interval=2, end_time=123.0,
                              cancel_ids={"a": "t"}, use_webhook_store=True)
    path, kwargs = trigger.serialize()
    again = import_string(path)(**kwargs)
    assert again.serialize() == (path, kwargs)
    assert "secret" not in repr(kwargs).lower() and "sqlite" not in repr(kwargs)


def test_serialize_pins_the_classpath_and_every_argument():
    """The triggerer re-creates a deferred task's trigger from this (classpath, kwargs) stored in
    the metadata DB, possibly by a newer release. Moving the class or renaming an argument
    breaks every task deferred at upgrade time: change this test only with a migration plan."""
    from akool_flows.airflow.triggers import AkoolJobTrigger

    trigger = AkoolJobTrigger(kind="faceswap_image", job_ids=["a", "b"], akool_conn_id="akool_prod",
                              poll_interval=2, end_time=123.5, use_webhook_store=True, webhook_poll_interval=60,
                              cancel_ids={"a": "t1"}, include_jobs=False, max_consecutive_errors=7,
                              max_ids_per_poll=50)
    assert trigger.serialize() == ("akool_flows.airflow.triggers.AkoolJobTrigger", {
        "kind": "faceswap_image", "job_ids": ["a", "b"], "akool_conn_id": "akool_prod", "poll_interval": 2.0,
        "end_time": 123.5, "use_webhook_store": True, "webhook_poll_interval": 60, "cancel_ids": {"a": "t1"},
        "include_jobs": False, "max_consecutive_errors": 7, "max_ids_per_poll": 50})


def _all_events(trigger) -> list[dict]:
    async def go():
        return [e.payload async for e in trigger.run()]

    return asyncio.run(asyncio.wait_for(go(), timeout=30))


def _webhook_conn(sb, monkeypatch, store_url):
    from conftest import conn_json

    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_DEFAULT", conn_json(
        sb, webhook_url="https://airflow.example.com/akool/webhook/tok", webhook_store_url=store_url))


def test_a_webhook_store_that_cannot_open_ends_in_one_error_event(airflow, tmp_path, monkeypatch):
    from akool_flows.airflow.triggers import AkoolJobTrigger
    from akool_flows.webhook.store import WebhookEventStore

    sb = airflow
    store_url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    _webhook_conn(sb, monkeypatch, store_url)

    def broken(self, *args, **kwargs):
        raise RuntimeError(f"database is locked ({store_url})")

    monkeypatch.setattr(WebhookEventStore, "__init__", broken)
    (job,) = _faceswaps(sb, 1)
    events = _all_events(AkoolJobTrigger(kind="faceswap_image", job_ids=[job.job_id], poll_interval=0.1,
                                         use_webhook_store=True))
    assert len(events) == 1
    (event,) = events
    assert event["status"] == "error" and event["pending"] == [job.job_id]
    assert "RuntimeError: database is locked" in event["message"]
    assert store_url not in event["message"]  # it may carry a database password


def test_failing_webhook_store_reads_only_delay_polling_finishes_the_job(airflow, tmp_path, monkeypatch):
    from akool_flows.airflow.triggers import AkoolJobTrigger
    from akool_flows.webhook.store import WebhookEventStore

    sb = airflow
    _webhook_conn(sb, monkeypatch, f"sqlite:///{tmp_path / 'events.sqlite'}")

    def broken(self, *args, **kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr(WebhookEventStore, "latest_many", broken)
    (job,) = _faceswaps(sb, 1)
    (event,) = _all_events(AkoolJobTrigger(kind="faceswap_image", job_ids=[job.job_id], poll_interval=0.1,
                                           webhook_poll_interval=0.3, use_webhook_store=True))
    assert event["status"] == "success" and event["jobs"][0]["result_urls"]


@pytest.mark.parametrize("failure", ["client raises", "unknown connection"])
def test_a_raising_client_ends_in_one_error_event(airflow, monkeypatch, failure):
    from akool_flows.airflow.triggers import AkoolJobTrigger
    from akool_flows.api.coalesce import StatusCoalescer

    sb = airflow
    (job,) = _faceswaps(sb, 1)
    conn_id = "akool_default"
    if failure == "client raises":
        async def boom(self, kind, ids):
            raise RuntimeError("aiohttp session closed")

        monkeypatch.setattr(StatusCoalescer, "statuses", boom)
        expected = "RuntimeError: aiohttp session closed"
    else:
        conn_id, expected = "akool_missing", "akool_missing"
    events = _all_events(AkoolJobTrigger(kind="faceswap_image", job_ids=[job.job_id], poll_interval=0.1,
                                         akool_conn_id=conn_id))
    assert [e["status"] for e in events] == ["error"]
    assert expected in events[0]["message"] and events[0]["counts"]["pending"] == 1


def test_many_triggers_on_one_loop_share_batched_polls(airflow):
    """30 deferred face swap tasks on one triggerer: each poll tick is one listbyids request."""
    from akool_flows.airflow.triggers import AkoolJobTrigger

    sb = airflow
    sb.configure(job_seconds=1.2)  # several poll ticks before the jobs finish
    try:
        jobs = _faceswaps(sb, 30)
        triggers = [AkoolJobTrigger(kind="faceswap_image", job_ids=[j.job_id], poll_interval=0.3) for j in jobs]

        async def run_all():
            return await asyncio.gather(*(t.run().__anext__() for t in triggers))

        polls_before = sb.stats()["polls_by_path"].get(LISTBYIDS, 0)
        events = asyncio.run(run_all())
    finally:
        sb.configure(job_seconds=0.4)
    assert [e.payload["status"] for e in events] == ["success"] * 30
    polls = sb.stats()["polls_by_path"].get(LISTBYIDS, 0) - polls_before
    # Without coalescing: 30 requests per tick (>= 90 here). With it: one per tick (~4-6).
    print(f"\n30 triggers, {polls} listbyids requests")
    assert 2 <= polls <= 10, polls


def test_transient_poll_failures_back_off_and_recover(airflow, monkeypatch):
    from akool_flows.airflow import triggers
    from akool_flows.api.coalesce import StatusCoalescer
    from akool_flows.api.errors import ServerError

    sb = airflow
    (job,) = _faceswaps(sb, 1)
    real = StatusCoalescer.statuses
    failures = {"left": 3}

    async def flaky(self, kind, ids):
        if failures["left"]:
            failures["left"] -= 1
            raise ServerError("HTTP 502", endpoint=LISTBYIDS, http_status=502)
        return await real(self, kind, ids)

    monkeypatch.setattr(StatusCoalescer, "statuses", flaky)
    started = time.monotonic()
    payload = _first_event(triggers.AkoolJobTrigger(kind="faceswap_image", job_ids=[job.job_id], poll_interval=0.1))
    assert payload["status"] == "success" and failures["left"] == 0
    assert time.monotonic() - started >= 0.1  # it waited between attempts (backoff), it did not spin


def test_persistent_failures_end_with_an_error_event(airflow, monkeypatch):
    from akool_flows.airflow import triggers
    from akool_flows.api.coalesce import StatusCoalescer
    from akool_flows.api.errors import ServerError

    async def down(self, kind, ids):
        raise ServerError("HTTP 503", endpoint=LISTBYIDS, http_status=503)

    monkeypatch.setattr(StatusCoalescer, "statuses", down)
    payload = _first_event(triggers.AkoolJobTrigger(kind="faceswap_image", job_ids=["x" * 24], poll_interval=0.01,
                                                    max_consecutive_errors=3))
    assert payload["status"] == "error" and "4 status polls in a row failed" in payload["message"]


def test_failed_job_event_carries_akools_code_and_message(airflow):
    from akool_flows.airflow.triggers import AkoolJobTrigger
    from akool_flows.api import AkoolClient

    sb = airflow
    with AkoolClient.from_env(sb.env("client")) as client:
        job = client.submit("talking_photo", talking_photo_url="https://example.com/sandbox-fail.jpg",
                            audio_url="https://example.com/a.mp3")
    payload = _first_event(AkoolJobTrigger(kind="talking_photo", job_ids=[job.job_id], poll_interval=0.1))
    assert payload["status"] == "failed"
    (status,) = payload["jobs"]
    assert status["state"] == "failed" and status["error_code"] and status["error_message"]
    assert payload["error_code"] == status["error_code"] and status["error_message"] in payload["message"]


def test_deadline_gives_a_timeout_event_with_the_last_state(airflow):
    from akool_flows.airflow.triggers import AkoolJobTrigger

    sb = airflow
    sb.configure(job_seconds=30)
    try:
        (job,) = _faceswaps(sb, 1)
        payload = _first_event(AkoolJobTrigger(kind="faceswap_image", job_ids=[job.job_id], poll_interval=0.1,
                                               end_time=time.time() + 0.5))
    finally:
        sb.configure(job_seconds=0.4)
    assert payload["status"] == "timeout" and payload["pending"] == [job.job_id]
    assert payload["jobs"][0]["state"] in ("queued", "processing")


def test_unknown_job_ends_with_an_error_not_a_hang(airflow):
    from akool_flows.airflow.triggers import AkoolJobTrigger

    payload = _first_event(AkoolJobTrigger(kind="faceswap_image", job_ids=["0" * 24], poll_interval=0.05))
    assert payload["status"] == "error" and payload["error_code"] == 1008


def test_big_batches_poll_the_oldest_jobs_first(airflow):
    from akool_flows.airflow.triggers import AkoolJobTrigger

    sb = airflow
    jobs = _faceswaps(sb, 5)
    payload = _first_event(AkoolJobTrigger(kind="faceswap_image", job_ids=[j.job_id for j in jobs],
                                           poll_interval=0.1, max_ids_per_poll=2, include_jobs=False))
    assert payload["status"] == "success" and payload["counts"] == {"total": 5, "completed": 5, "failed": 0,
                                                                     "pending": 0}
    assert "jobs" not in payload


def test_on_kill_cancels_the_remote_job(airflow):
    from akool_flows.airflow.triggers import AkoolJobTrigger

    sb = airflow
    sb.configure(job_seconds=30)
    try:
        (job,) = _faceswaps(sb, 1)
        trigger = AkoolJobTrigger(kind="faceswap_image", job_ids=[job.job_id], cancel_ids={job.job_id: job.task_id})
        asyncio.run(trigger.on_kill())
    finally:
        sb.configure(job_seconds=0.4)
    (summary,) = sb.jobs("faceswap_image")
    assert summary["ended_by"] == "cancel"


@pytest.mark.parametrize("bad", [dict(job_ids=[]), dict(poll_interval=0), dict(kind="nope")])
def test_bad_arguments_are_refused(bad):
    from akool_flows.airflow.triggers import AkoolJobTrigger
    from akool_flows.api.errors import UnknownKindError

    with pytest.raises((ValueError, UnknownKindError)):
        AkoolJobTrigger(**{"kind": "tts", "job_ids": ["a"], **bad})
