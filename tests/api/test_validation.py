"""Bad input fails before any HTTP call, with a message naming the field and what is allowed."""

from __future__ import annotations

import pytest

from akool_flows.api import KINDS, AkoolClient, UnknownKindError, ValidationError, get_kind

from .helpers import DRIVERS, make_client, scripted_server

FACE = {"path": "https://cdn.test/face.png", "opts": "262,175:363,175:313,215:272,279"}


def ex(kind: str, **changes):
    fields = {**KINDS[kind].example, **changes}
    return {k: v for k, v in fields.items() if v is not ...}


# (kind, fields, field named in the error, words the message must contain)
BAD_SUBMITS = [
    ("moderation", {"content": "hello"}, "type", ["type", "required"]),
    ("moderation", {"content": "hello", "type": 5}, "type", ["type", "got 5", "1, 2, 3 or 4"]),
    ("moderation", {"content": "", "type": 4}, "content", ["content", "at least 1 character"]),
    ("moderation", {"content": "   ", "type": 4}, "content", ["content"]),
    ("moderation", {"content": "not a url", "type": 1}, "content", ["content", "http(s) URL", "type=1"]),
    ("moderation", {"content": "hi", "type": 4, "language": "english"}, "language", ["language", "ISO-639-1"]),
    ("reage_image", ex("reage_image", face_reage=31), "face_reage", ["face_reage", "30", "got 31"]),
    ("reage_video", ex("reage_video", face_reage=-31), "face_reage", ["face_reage", "-30", "got -31"]),
    ("image_generate", {"prompt": "x", "scale": "5:4"}, "scale", ["scale", "'5:4'", "'16:9'"]),
    ("image_button", {"_id": "65d3206b83ccf5ab7d46cdc6", "button": "U5"}, "button",
     ["button", "'U5'", "'U1'", "'V4'"]),
    ("talking_avatar", ex("talking_avatar", width=1920), "width", ["width", "got 1920", "3840"]),
    ("talking_avatar", ex("talking_avatar", height=1080), "height", ["height", "2160"]),
    ("avatar_upload", ex("avatar_upload", avatar_id="my-avatar!"), "avatar_id", ["avatar_id", "letters and digits"]),
    ("avatar_upload", ex("avatar_upload", type="3"), "type", ["type", "'1'", "'2'"]),
    ("live_session", {"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 3601}, "duration",
     ["duration", "3600", "got 3601"]),
    ("live_session", {"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 0}, "duration", ["duration", "0"]),
    ("faceswap_image", ex("faceswap_image", modifyImage=...), "modifyImage", ["modifyImage", "required"]),
    ("faceswap_image", ex("faceswap_image", face_enhance=2), "face_enhance", ["face_enhance", "0 or 1"]),
    ("faceswap_video", ex("faceswap_video", sourceImage=[FACE, FACE]), "sourceImage",
     ["sourceImage", "targetImage", "same number"]),
    ("faceswap_image", ex("faceswap_image", sourceImage=[{"path": "https://cdn.test/f.png", "opts": "1;2"}]),
     "sourceImage.0.opts", ["sourceImage.0.opts", "landmarks"]),
    ("faceswap_image", ex("faceswap_image", targetImage=[]), "targetImage", ["targetImage", "at least 1"]),
    ("tts", {"input_text": "hi", "voice_id": "v1", "rate": "150%"}, "rate", ["rate", '"0%".."100%"']),
    ("tts", {"input_text": "hi", "voice_id": "v1", "webhookUrl": "ftp://hooks.test"}, "webhookUrl",
     ["webhookUrl", "http(s) URL"]),
    ("tts", {"voice_id": "v1"}, "input_text", ["input_text", "required"]),
    ("voice_clone", {"input_text": "hi", "rate": "100%"}, "voice_id", ["voice_id", "voice_url"]),
    ("background_change", ex("background_change", canvas_size="big"), "canvas_size", ["canvas_size", "WIDTHxHEIGHT"]),
    ("background_change", ex("background_change", overlay_template_x=4), "overlay_template_x",
     ["overlay_template_x", "template_url"]),
    ("lipsync", {"video_url": "https://cdn.test/v.mp4"}, "audio_url", ["audio_url", "required"]),
    ("video_translation", ex("video_translation", language="fr,,de"), "language", ["language", "fr,de,ja"]),
    ("video_translation", ex("video_translation", language="fr,de,fr"), "language", ["language", "twice"]),
]
# Refused only by a strict client (strict=True): a field the docs do not list.
STRICT_SUBMITS = [
    ("faceswap_image", ex("faceswap_image", modifyimage="https://cdn.test/a.jpg"), "modifyimage",
     ["modifyimage", "unknown field", "modifyImage"]),
    ("video_translation", ex("video_translation", merge_interval=1), "merge_interval",
     ["merge_interval", "unknown field"]),
    ("talking_avatar", ex("talking_avatar", elements=[{**KINDS["talking_avatar"].example["elements"][0],
                                                       "layer_number": 1}]),
     "elements[].layer_number", ["elements[].layer_number", "unknown field", "scale_x"]),
]


@pytest.mark.parametrize("kind, fields, field, words, strict",
                         [(*c, False) for c in BAD_SUBMITS] + [(*c, True) for c in STRICT_SUBMITS],
                         ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(BAD_SUBMITS + STRICT_SUBMITS)])
def test_bad_create_fields_are_refused_with_a_precise_message(kind, fields, field, words, strict):
    with pytest.raises(ValidationError) as info:
        get_kind(kind).validate(fields, strict=strict)
    exc = info.value
    assert exc.field == field and exc.kind == kind
    for word in words:
        assert word in str(exc), (word, str(exc))
    assert not exc.retryable and not exc.may_have_created


def test_every_registry_example_is_valid():
    for kind in KINDS.values():
        kind.validate(kind.example)


def test_unknown_kind_lists_the_allowed_kinds():
    with pytest.raises(UnknownKindError) as info:
        get_kind("face_swap")
    assert info.value.field == "kind"
    for name in KINDS:
        assert name in str(info.value)


# Calls that must fail without touching the network: (operation, args, kwargs, field)
BAD_CALLS = [
    ("submit", ("face_swap",), {"modifyImage": "https://cdn.test/a.jpg"}, "kind"),
    *[("submit", (k,), f, fld) for k, f, fld, _ in BAD_SUBMITS + STRICT_SUBMITS],
    ("status", ("nope", "a1"), {}, "kind"),
    ("status", ("moderation", ""), {}, "job_id"),
    ("status", ("moderation", "a1,b2"), {}, "job_id"),
    ("statuses", ("faceswap_image", ["a1", ""]), {}, "job_id"),
    ("cancel", ("moderation", "a1"), {}, "kind"),
    ("cancel", ("faceswap_image", ""), {}, "job_id"),
    ("voices", (5,), {}, "from"),
    ("avatars", (), {"from_": 1}, "from"),
    ("avatars", (), {"type_": 3}, "type"),
    ("live_avatars", (), {"size": 101}, "size"),
    ("avatar_detail", ("",), {}, "job_id"),
    ("delete_results", ([],), {}, "_ids"),
    ("cancel_faceswap_jobs", ([],), {}, "job_ids"),
    ("face_detect", (), {}, "image_url"),
    ("face_detect", (), {"image_url": "https://cdn.test/a.jpg", "img": "data:..."}, "image_url"),
    ("create_session", ("dvp_Tristan_cloth2_1080P", 7200), {}, "duration"),
    ("list_sessions", (), {"status": 7}, "status"),
    ("wait", ("moderation", "a1"), {"poll_interval": 0}, "poll_interval"),
]


@pytest.mark.parametrize("driver", DRIVERS)
async def test_bad_calls_send_nothing(driver):
    with scripted_server() as srv:
        drv = make_client(driver, srv.url, strict=True)
        try:
            for op, args, kwargs, field in BAD_CALLS:
                with pytest.raises(ValidationError) as info:
                    await drv(op, *args, **kwargs)
                assert info.value.field == field, (op, args, kwargs, str(info.value))
        finally:
            await drv.close()
    assert srv.requests == [] and drv.client.request_count == 0


def test_client_construction_refuses_bad_settings():
    with pytest.raises(ValidationError, match="AKOOL_API_TOKEN") as info:
        AkoolClient()
    assert info.value.field == "credentials"
    with pytest.raises(ValidationError, match="base_url") as info:
        AkoolClient(base_url="openapi.akool.com", token="t")
    assert info.value.field == "base_url"
    with pytest.raises(ValidationError) as info:
        AkoolClient(token="t", max_requests_per_second=0)
    assert info.value.field == "max_requests_per_second"
