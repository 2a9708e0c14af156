"""WebhookEvent normalises the payload fields that drift between job kinds."""

from __future__ import annotations

import pytest

from akool_flows.webhook import WebhookEvent, WebhookVerificationError


@pytest.mark.parametrize(
    ("payload", "job_id", "status", "url"),
    [
        ({"_id": "a1", "status": 3, "type": "faceswap", "url": "https://u/1.png"}, "a1", 3, "https://u/1.png"),
        ({"video_id": "v1", "video_status": 3, "video": "https://u/v.mp4"}, "v1", 3, "https://u/v.mp4"),
        ({"_id": "i1", "image_status": "2"}, "i1", 2, None),
        ({"_id": "f1", "job_id": "2024-1", "faceswap_status": 3, "url": "u"}, "f1", 3, "u"),
        ({"_id": "t1", "status": 3, "audio_url": "https://u/a.mp3"}, "t1", 3, "https://u/a.mp3"),
        ({"_id": "l1", "status": 3, "video_url": "https://u/l.mp4", "url": ""}, "l1", 3, "https://u/l.mp4"),
    ],
)
def test_field_drift_is_normalised(payload, job_id, status, url):
    event = WebhookEvent.from_payload(payload)
    assert (event.job_id, event.status, event.url) == (job_id, status, url)
    assert event.raw == payload


def test_states_and_terminality():
    states = {s: WebhookEvent(job_id="j", status=s) for s in (1, 2, 3, 4)}
    assert [e.state for e in states.values()] == ["queued", "processing", "completed", "failed"]
    assert [e.is_terminal for e in states.values()] == [False, False, True, True]


def test_error_fields_only_on_failure():
    failed = WebhookEvent.from_payload({"_id": "j", "status": 4, "error_code": 1015, "error_reason": "no face"})
    assert failed.error_code == 1015 and failed.error_message == "no face"
    from_list = WebhookEvent.from_payload({"_id": "j", "status": 4, "error_reasons": ["a", "b"]})
    assert from_list.error_message == "a; b"
    ok = WebhookEvent.from_payload({"_id": "j", "status": 3, "msg": "OK", "error_code": 0})
    assert ok.error_message is None and ok.error_code is None


@pytest.mark.parametrize(
    "payload",
    [{}, {"status": 3}, {"_id": "j"}, {"_id": "j", "status": 0}, {"_id": "j", "status": "3.0"},
     {"_id": "", "status": 3}, {"_id": "x" * 300, "status": 3}, {"_id": "a\nb", "status": 3},
     {"_id": ["j"], "status": 3}, {"_id": "j", "status": False}],
)
def test_unattributable_payloads_are_rejected(payload):
    with pytest.raises(WebhookVerificationError):
        WebhookEvent.from_payload(payload)


def test_event_is_immutable_and_serialisable():
    event = WebhookEvent.from_payload({"_id": "j", "status": 3, "url": "u"}, timestamp=5, nonce="n", signature="s" * 40)
    with pytest.raises(Exception):
        event.status = 4  # type: ignore[misc]
    assert WebhookEvent.model_validate_json(event.model_dump_json()) == event
