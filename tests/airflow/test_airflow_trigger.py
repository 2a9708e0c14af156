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
