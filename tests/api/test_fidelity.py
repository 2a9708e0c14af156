"""The API as Akool's own code speaks it, through the real client against the sandbox over HTTP:
fields the docs do not list pass through (strict clients refuse them), and a video translation
into several languages is tracked job by job."""

from __future__ import annotations

import warnings

import pytest

from akool_flows.api import AkoolClient, BadRequestError, ValidationError
from akool_flows.api.kinds import UnknownFieldWarning

from .sandbox_fixtures import MODES, drv, sandbox, sandbox_client, sb  # noqa: F401 - fixtures

pytest.importorskip("akool_flows.sandbox")

VIDEO = "https://cdn.example.com/talk.mp4"

# Fields Akool's demos and the LiveKit plugin send that the docs' tables do not list.
TRANSLATION_EXTRAS = {
    "speaker_num": 0, "remove_bgm": True, "caption_type": 2, "dynamic_duration": False,
    "voices_map": {"fr": {"voice_id": "fr-voice-1"}}, "caption_url": "https://cdn.example.com/subs.srt",
}
SESSION_EXTRAS = {
    "knowledge_id": "kb-1", "voice_id": "v-1", "voice_url": "https://cdn.example.com/v.mp3", "language": "en",
    "mode_type": 2, "background_url": "https://cdn.example.com/bg.png",
    "voice_params": {"speed": 1.1, "pron_map": {"Akool": "ah-cool"}}, "stream_type": "livekit",
    "scene_mode": "meeting", "credentials": {"livekit_url": "wss://lk.example.com", "livekit_token": "lk-tok"},
}
AVATAR_ELEMENTS = [
    {"type": "image", "url": "https://cdn.example.com/bg.png", "layer_number": 0, "width": 780, "height": 438,
     "scale_x": 1, "scale_y": 1, "offset_x": 1920, "offset_y": 1080},
    {"type": "avatar", "url": "https://cdn.example.com/av.mp4", "layer_number": 1, "scale_x": 1, "scale_y": 1,
     "width": 1080, "height": 1080, "offset_x": 1920, "offset_y": 1080},
    {"type": "audio", "url": "https://cdn.example.com/a.mp3",
     "voice_clone": {"voice_from": 3, "voice_id": "vm-1", "voice_url": "https://cdn.example.com/a.mp3"}},
]
# kind -> fields carrying every extra field real code sends today.
REAL_CODE_REQUESTS = {
    "video_translation": {"url": VIDEO, "source_language": "DEFAULT", "language": "fr", "lipsync": False,
                          "webhookUrl": "", **TRANSLATION_EXTRAS},
    "talking_avatar": {"width": 3840, "height": 2160, "avatar_from": 3, "elements": AVATAR_ELEMENTS,
                       "webhookUrl": ""},
    "live_session": {"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 60, **SESSION_EXTRAS},
}


# --- 1. fields the docs do not list ------------------------------------------------------------

@pytest.mark.parametrize("kind", sorted(REAL_CODE_REQUESTS))
async def test_fields_the_docs_do_not_list_reach_akool_unchanged(drv, sandbox, kind):
    fields = REAL_CODE_REQUESTS[kind]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        job = await drv("submit", kind, **fields)
    assert sandbox.job_request(job.job_id) == fields
    unknown = sorted(str(w.message).split("'")[1] for w in caught if issubclass(w.category, UnknownFieldWarning))
    expected = {"video_translation": sorted(TRANSLATION_EXTRAS),
                "talking_avatar": ["elements[].layer_number", "elements[].voice_clone"],
                "live_session": sorted(SESSION_EXTRAS)}[kind]
    assert unknown == expected


async def test_the_sandbox_echoes_the_fields_it_does_not_know_in_the_job_payload(drv, sandbox):
    job = await drv("submit", "video_translation", **REAL_CODE_REQUESTS["video_translation"])
    status = await drv("status", "video_translation", job.job_id)
    assert {k: status.raw.get(k) for k in TRANSLATION_EXTRAS} == TRANSLATION_EXTRAS
    assert status.raw["source_language"] == "DEFAULT" and "webhookUrl" not in status.raw


async def test_one_warning_per_kind_and_field_per_process(drv, sandbox):
    fields = {**REAL_CODE_REQUESTS["video_translation"], "speaker_num": 2}
    with pytest.warns(UnknownFieldWarning) as first:
        await drv("submit", "video_translation", **fields)
    assert len(first) == len(TRANSLATION_EXTRAS)
    assert all("strict=True" in str(w.message) for w in first)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnknownFieldWarning)
        await drv("submit", "video_translation", **{**fields, "language": "de"})  # no second warning
    with pytest.warns(UnknownFieldWarning, match="'speaker_num'"):
        await drv("submit", "live_session", avatar_id="dvp_Tristan_cloth2_1080P", duration=60, speaker_num=1)


@pytest.mark.parametrize("mode", MODES)
async def test_a_strict_client_refuses_them_and_sends_nothing(sandbox, mode):
    drv = sandbox_client(mode, sandbox, strict=True)
    try:
        for kind, fields in REAL_CODE_REQUESTS.items():
            with pytest.raises(ValidationError, match="unknown field") as info:
                await drv("submit", kind, **fields)
            assert info.value.kind == kind
        assert drv.client.request_count == 0 and sandbox.create_count() == 0
        # A strict client still sends what the docs list; settings() carries strictness along.
        job = await drv("submit", "video_translation", url=VIDEO, source_language="DEFAULT", language="fr")
        assert sandbox.job_request(job.job_id)["language"] == "fr"
        assert type(drv.client).from_client(drv.client).strict is True
    finally:
        await drv.close()


async def test_an_empty_webhook_url_means_no_webhook(drv, sandbox):
    job = await drv("submit", "video_translation", url=VIDEO, source_language="en", language="fr", webhookUrl="")
    assert sandbox.job_request(job.job_id)["webhookUrl"] == ""
    assert [j["webhook"] for j in sandbox.jobs()] == [False]


# --- 2. one create, several languages ------------------------------------------------------------

async def test_a_translation_into_three_languages_is_three_tracked_jobs(drv, sandbox):
    job = await drv("submit", "video_translation", url=VIDEO, source_language="en", language="fr,de,ja")
    assert [j.language for j in job.jobs] == ["fr", "de", "ja"]
    assert job.job_id == job.jobs[0].job_id and job.language == "fr" and job.refused == ()
    assert len({j.job_id for j in job.jobs}) == 3 and sandbox.create_count("video_translation") == 3
    assert {j.job_id for j in job.jobs} == {j["_id"] for j in sandbox.jobs()}
    for part in job.jobs:
        status = await drv("wait", "video_translation", part.job_id, poll_interval=0.03, timeout=10)
        assert status.ok and status.result_url and status.raw["language"] == part.language
    assert [j["language"] for j in job.to_dict()["jobs"]] == ["fr", "de", "ja"]


async def test_a_single_language_is_one_job_with_its_language(drv, sandbox):
    job = await drv("submit", "video_translation", url=VIDEO, source_language="en", language="fr")
    assert job.jobs == (job,) and job.language == "fr" and "jobs" not in job.to_dict()


async def test_a_language_akool_refuses_is_named_and_the_others_are_tracked(drv, sandbox):
    await drv("submit", "video_translation", url=VIDEO, source_language="en", language="fr", lipsync=True)
    job = await drv("submit", "video_translation", url=VIDEO, source_language="en", language="fr,de",
                    lipsync=True)
    assert [j.language for j in job.jobs] == ["de"] and job.job_id == job.jobs[0].job_id
    [refused] = job.refused
    assert (refused.language, refused.code) == ("fr", 1202) and "lipSync" in refused.message
    assert sandbox.create_count("video_translation") == 2


async def test_every_language_refused_is_an_error_and_nothing_is_paid(drv, sandbox):
    before = sandbox.credits
    with pytest.raises(BadRequestError) as info:
        await drv("submit", "video_translation", url=VIDEO, source_language="en", language="xx,yy")
    assert info.value.code == 1003 and not info.value.may_have_created
    assert sandbox.create_count() == 0 and sandbox.credits == before


async def test_run_refuses_several_languages_before_sending(drv, sandbox):
    with pytest.raises(ValidationError, match="submit") as info:
        await drv("run", "video_translation", url=VIDEO, source_language="en", language="fr,de")
    assert info.value.field == "language" and drv.client.request_count == 0


async def test_the_event_store_expects_every_language(sandbox, tmp_path):
    from akool_flows.webhook import WebhookEventStore

    store = WebhookEventStore(f"sqlite:///{tmp_path / 'events.sqlite'}")
    try:
        with AkoolClient.from_env(sandbox.env(), event_store=store) as client:
            job = client.submit("video_translation", url=VIDEO, source_language="en", language="fr,de")
        assert all(store.is_submitted(j.job_id) for j in job.jobs)
    finally:
        store.close()
