"""The client sends exactly the documented request for every endpoint and every job kind.

Expected methods, paths, query names and body field names are written out here from the docs
(../shared/akool-api-docs.md), NOT read from the registry, so a typo in `kinds.py` or
`endpoints.py` fails this test. Every case runs through the sync client and the async client
on httpx mock transports and through the async client's default aiohttp sender against a real
recording server on 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

import pytest

from akool_flows.api import KINDS, FaceDetection, Job, JobStatus

from .helpers import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN,
    MockAkool,
    make_client,
    make_mock_client,
    scripted_server,
)

V3 = "/api/open/v3"
V4 = "/api/open/v4"
FACE_A = {"path": "https://cdn.test/crop_a.png", "opts": "262,175:363,175:313,215:272,279"}
FACE_B = {"path": "https://cdn.test/crop_b.png", "opts": "239,364:386,366:317,472:266,539"}
HOOK = "https://hooks.test/akool"

# kind -> (create path, documented body field names, a request using every documented field)
DOCUMENTED_CREATE: dict[str, tuple[str, set[str], dict[str, Any]]] = {
    "tts": (f"{V3}/audio/create", {"input_text", "voice_id", "rate", "webhookUrl"},
            {"input_text": "Hello", "voice_id": "LcfcDJNUP1GQjkzn1xUU", "rate": "100%", "webhookUrl": HOOK}),
    "voice_clone": (f"{V3}/audio/clone", {"input_text", "rate", "voice_url", "webhookUrl"},
                    {"input_text": "Hello", "rate": "90%", "voice_url": "https://cdn.test/v.mp3",
                     "webhookUrl": HOOK}),
    "background_change": (
        f"{V3}/content/image/bg/replace",
        {"color_code", "template_url", "origin_img", "modify_template_size", "modify_origin_img_size",
         "overlay_origin_x", "overlay_origin_y", "overlay_template_x", "overlay_template_y", "canvas_size",
         "webhookUrl", "removeBg"},
        {"color_code": "#aafbe3", "template_url": "https://cdn.test/bg.png", "origin_img": "https://cdn.test/fg.png",
         "modify_template_size": "3828x3828", "modify_origin_img_size": "3062x3828", "overlay_origin_x": -72,
         "overlay_origin_y": -84, "overlay_template_x": 2049, "overlay_template_y": -6, "canvas_size": "3840x3840",
         "webhookUrl": HOOK, "removeBg": True}),
    "image_generate": (f"{V3}/content/image/createbyprompt", {"prompt", "scale", "source_image", "webhookUrl"},
                       {"prompt": "A lighthouse", "scale": "16:9", "source_image": "https://cdn.test/src.png",
                        "webhookUrl": HOOK}),
    "image_button": (f"{V3}/content/image/createbybutton", {"_id", "button", "webhookUrl"},
                     {"_id": "65d3206b83ccf5ab7d46cdc6", "button": "V3", "webhookUrl": HOOK}),
    "faceswap_image": (f"{V3}/faceswap/highquality/specifyimage",
                       {"targetImage", "sourceImage", "face_enhance", "modifyImage", "webhookUrl"},
                       {"targetImage": [FACE_A], "sourceImage": [FACE_B], "face_enhance": 1,
                        "modifyImage": "https://cdn.test/m.jpeg", "webhookUrl": HOOK}),
    "faceswap_video": (f"{V3}/faceswap/highquality/specifyvideo",
                       {"sourceImage", "targetImage", "face_enhance", "modifyVideo", "webhookUrl"},
                       {"sourceImage": [FACE_B, FACE_A], "targetImage": [FACE_A, FACE_B], "face_enhance": 0,
                        "modifyVideo": "https://cdn.test/m.mp4", "webhookUrl": HOOK}),
    "reage_image": (f"{V3}/faceswap/highquality/imgreage", {"targetImage", "face_reage", "modifyImage", "webhookUrl"},
                    {"targetImage": [FACE_A], "face_reage": 10, "modifyImage": "https://cdn.test/m.jpg",
                     "webhookUrl": HOOK}),
    "reage_video": (f"{V3}/faceswap/highquality/vidreage", {"targetImage", "face_reage", "modifyVideo", "webhookUrl"},
                    {"targetImage": [FACE_A], "face_reage": -30, "modifyVideo": "https://cdn.test/m.mp4",
                     "webhookUrl": HOOK}),
    "moderation": (f"{V3}/content/analysis/sentiment", {"content", "type", "language", "webhookUrl", "input"},
                   {"content": "https://cdn.test/food.jpg", "type": 1, "language": "en", "webhookUrl": HOOK,
                    "input": "no food"}),
    "lipsync": (f"{V3}/content/video/lipsync", {"video_url", "audio_url", "webhookUrl"},
                {"video_url": "https://cdn.test/v.mp4", "audio_url": "https://cdn.test/a.wav", "webhookUrl": HOOK}),
    "talking_photo": (f"{V3}/content/video/createbytalkingphoto", {"talking_photo_url", "audio_url", "webhookUrl"},
                      {"talking_photo_url": "https://cdn.test/p.jpg", "audio_url": "https://cdn.test/a.mp3",
                       "webhookUrl": HOOK}),
    "talking_avatar": (
        f"{V3}/talkingavatar/create", {"width", "height", "avatar_from", "webhookUrl", "elements"},
        {"width": 3840, "height": 2160, "avatar_from": 2, "webhookUrl": HOOK, "elements": [
            {"type": "image", "url": "https://cdn.test/bg.png", "scale_x": 1, "scale_y": 1, "width": 3840,
             "height": 2160, "offset_x": 1920, "offset_y": 1080},
            {"type": "avatar", "avatar_id": "Yasmin_in_White_shirt_20231121", "scale_x": 1, "scale_y": 1,
             "width": 1080, "height": 1080, "offset_x": 1920, "offset_y": 1080},
            {"type": "audio", "url": "https://cdn.test/a.mp3"}]}),
    "video_translation": (f"{V3}/content/video/createbytranslate",
                          {"url", "source_language", "language", "lipsync", "webhookUrl"},
                          {"url": "https://cdn.test/v.mp4", "source_language": "zh", "language": "hi",
                           "lipsync": True, "webhookUrl": HOOK}),
    "avatar_upload": (f"{V3}/avatar/create", {"url", "avatar_id", "type", "url_from"},
                      {"url": "https://cdn.test/av.mp4", "avatar_id": "myavatar01", "type": "2", "url_from": 1}),
    "live_session": (f"{V4}/liveAvatar/session/create", {"avatar_id", "duration"},
                     {"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 3600}),
    "image_to_video": (f"{V4}/image2Video/createBySourcePrompt",
                       {"image_url", "prompt", "negative_prompt", "extend_prompt", "resolution", "audio_url",
                        "audio_type", "video_length", "is_premium_model", "effect_code", "webhookurl"},
                       {"image_url": "https://cdn.test/p.png", "prompt": "wave", "negative_prompt": "blur",
                        "extend_prompt": True, "resolution": "1080p", "audio_url": "https://cdn.test/a.mp3",
                        "audio_type": 2, "video_length": 10, "is_premium_model": False, "effect_code": "squish",
                        "webhookurl": HOOK}),
}
# The batch create's documented body (createBySourcePrompt/batch).
I2V_BATCH = {"image_url": "https://cdn.test/p.png", "prompt": "wave", "model_name": "AkoolImage2VideoFastV1",
             "negative_prompt": "blur", "extend_prompt": False, "resolution": "720p", "video_length": 5,
             "last_image_url": "https://cdn.test/last.png", "generate_audio": True, "count": 2, "webhookurl": HOOK}
# Documented element fields of talking avatar's `elements[]`.
TALKING_AVATAR_ELEMENT_FIELDS = {"url", "scale_x", "scale_y", "offset_x", "offset_y", "height", "width", "type",
                                 "avatar_id"}

# kind -> (status path, id query parameter)
DOCUMENTED_STATUS: dict[str, tuple[str, str]] = {
    "tts": (f"{V3}/audio/infobymodelid", "audio_model_id"),
    "voice_clone": (f"{V3}/audio/infobymodelid", "audio_model_id"),
    "background_change": (f"{V3}/content/image/infobymodelid", "image_model_id"),
    "image_generate": (f"{V3}/content/image/infobymodelid", "image_model_id"),
    "image_button": (f"{V3}/content/image/infobymodelid", "image_model_id"),
    "faceswap_image": (f"{V3}/faceswap/result/listbyids", "_ids"),
    "faceswap_video": (f"{V3}/faceswap/result/listbyids", "_ids"),
    "reage_image": (f"{V3}/faceswap/result/listbyids", "_ids"),
    "reage_video": (f"{V3}/faceswap/result/listbyids", "_ids"),
    "moderation": (f"{V3}/content/analysis/infobyid", "_id"),
    "lipsync": (f"{V3}/content/video/infobymodelid", "video_model_id"),
    "talking_photo": (f"{V3}/content/video/infobymodelid", "video_model_id"),
    "talking_avatar": (f"{V3}/content/video/infobymodelid", "video_model_id"),
    "video_translation": (f"{V3}/content/video/infobymodelid", "video_model_id"),
    "avatar_upload": (f"{V3}/avatar/detail", "id"),
    "live_session": (f"{V4}/liveAvatar/session/detail", "id"),
    "image_to_video": (f"{V4}/image2Video/resultsByIds", "_ids"),
}
# Status endpoints that take the id in a JSON body (POST), not the query.
POST_STATUS = {"image_to_video"}

# kind -> (cancel path, body field, which id it takes: "task" = create answer's job_id, "id" = _id)
DOCUMENTED_CANCEL: dict[str, tuple[str, str, str]] = {
    "faceswap_image": (f"{V3}/faceswap/job/del", "job_ids", "task"),
    "faceswap_video": (f"{V3}/faceswap/job/del", "job_ids", "task"),
    "reage_image": (f"{V3}/faceswap/job/del", "job_ids", "task"),
    "reage_video": (f"{V3}/faceswap/job/del", "job_ids", "task"),
    "live_session": (f"{V4}/liveAvatar/session/close", "id", "id"),
}

# Non-job endpoints: (operation, args, kwargs) -> (method, path, query, body, host)
HELPERS: list[tuple[str, tuple, dict, str, str, dict[str, str], dict[str, Any] | None, str]] = [
    ("voices", (), {}, "GET", f"{V3}/voice/list", {}, None, "api"),
    ("voices", (4,), {}, "GET", f"{V3}/voice/list", {"from": "4"}, None, "api"),
    ("avatars", (), {"from_": 2, "type_": 1, "page": 3, "size": 10}, "GET", f"{V3}/avatar/list",
     {"from": "2", "type": "1", "page": "3", "size": "10"}, None, "api"),
    ("live_avatars", (), {"page": 1, "size": 100}, "GET", f"{V4}/liveAvatar/avatar/list",
     {"page": "1", "size": "100"}, None, "api"),
    ("avatar_detail", ("66a1a02d591ad336275eda62",), {}, "GET", f"{V3}/avatar/detail",
     {"id": "66a1a02d591ad336275eda62"}, None, "api"),
    ("languages", (), {}, "GET", f"{V3}/language/list", {}, None, "api"),
    ("credit_info", (), {}, "GET", f"{V3}/faceswap/quota/info", {}, None, "api"),
    ("delete_results", (["a1", "b2"],), {}, "POST", f"{V3}/faceswap/result/delbyids", {}, {"_ids": "a1,b2"}, "api"),
    ("cancel_faceswap_jobs", (["t1", "t2"],), {}, "POST", f"{V3}/faceswap/job/del", {}, {"job_ids": "t1,t2"},
     "api"),
    ("face_detect", (), {"image_url": "https://cdn.test/face.jpeg", "single_face": True}, "POST", "/detect", {},
     {"single_face": True, "image_url": "https://cdn.test/face.jpeg"}, "detect"),
    ("face_detect", (), {"img": "data:image/jpeg;base64,AAAA"}, "POST", "/detect", {},
     {"single_face": False, "img": "data:image/jpeg;base64,AAAA"}, "detect"),
    ("create_session", ("dvp_Tristan_cloth2_1080P", 600), {}, "POST", f"{V4}/liveAvatar/session/create", {},
     {"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 600}, "api"),
    ("session_detail", ("6698c9d69cf7b0d61d1b6420",), {}, "GET", f"{V4}/liveAvatar/session/detail",
     {"id": "6698c9d69cf7b0d61d1b6420"}, None, "api"),
    ("list_sessions", (), {"page": 1, "size": 10, "status": 1}, "GET", f"{V4}/liveAvatar/session/list",
     {"page": "1", "size": "10", "status": "1"}, None, "api"),
    ("close_session", ("6698c9d69cf7b0d61d1b6420",), {}, "POST", f"{V4}/liveAvatar/session/close", {},
     {"id": "6698c9d69cf7b0d61d1b6420"}, "api"),
    ("image_to_video_batch", (), I2V_BATCH, "POST", f"{V4}/image2Video/createBySourcePrompt/batch", {}, I2V_BATCH,
     "api"),
    ("update_video_audio", ("68919a464b4dbdd4ab3d3034", "https://cdn.test/a.mp3", 2), {}, "POST",
     f"{V4}/image2Video/updateVideoAudio", {},
     {"pre_video_id": "68919a464b4dbdd4ab3d3034", "audio_url": "https://cdn.test/a.mp3", "audio_type": 2}, "api"),
    ("image_to_video_effects", (), {}, "GET", f"{V4}/image2Video/effects", {}, None, "api"),
    ("ai_models", (), {}, "GET", f"{V4}/aigModel/list", {"types[]": "1501"}, None, "api"),
    ("ai_models", ((1501, 1502),), {}, "GET", f"{V4}/aigModel/list", {"types[]": "1501,1502"}, None, "api"),
    ("translation_voices", ("fr",), {"page": 1, "size": 100}, "GET", f"{V4}/voice/videoTranslation",
     {"language_code": "fr", "page": "1", "size": "100"}, None, "api"),
    ("streaming_voices", (2,), {}, "GET", f"{V4}/voice/list", {"support_stream": "1", "type": "2"}, None, "api"),
    ("knowledge_bases", (), {"page": 1, "size": 10}, "GET", f"{V4}/knowledge/list", {"page": "1", "size": "10"},
     None, "api"),
]

ALL_DRIVERS = ("sync-mock", "async-mock", "sync-socket", "async-aiohttp-socket")


@pytest.fixture
def server():
    with scripted_server() as srv:
        yield srv


@pytest.fixture(params=ALL_DRIVERS)
async def rig(request, server):
    """(driver, recorder, api host, detect host) for each way the client can send."""
    name = request.param
    mock = MockAkool()
    if name == "sync-mock":
        drv = make_mock_client("sync-httpx", mock)
    elif name == "async-mock":
        drv = make_mock_client("async-httpx", mock)
    elif name == "sync-socket":
        drv = make_client("sync-httpx", server.url)
    else:
        drv = make_client("async-aiohttp", server.url)
    recorder = mock if name.endswith("mock") else server
    api_host, detect_host = ("openapi.akool.test", "sg3.akool.test") if recorder is mock else ("127.0.0.1", "127.0.0.1")
    yield drv, recorder, api_host, detect_host
    await drv.close()


def _host(rec) -> str:
    return rec.host.split(":")[0]


def test_registry_covers_exactly_the_documented_kinds():
    assert set(KINDS) == set(DOCUMENTED_CREATE) == set(DOCUMENTED_STATUS)
    assert {k for k, v in KINDS.items() if v.cancellable} == set(DOCUMENTED_CANCEL)
    assert {k for k, v in KINDS.items() if v.batch_poll} == {k for k, (p, _) in DOCUMENTED_STATUS.items()
                                                          if p.lower().endswith(("listbyids", "resultsbyids"))}


@pytest.mark.parametrize("kind", sorted(DOCUMENTED_CREATE))
def test_every_documented_field_is_accepted_and_examples_stay_within_the_docs(kind):
    path, documented, full = DOCUMENTED_CREATE[kind]
    assert set(full) == documented  # the test's own request uses every documented field
    assert set(KINDS[kind].build_body(full)) == documented
    assert set(KINDS[kind].build_body(KINDS[kind].example)) <= documented


@pytest.mark.parametrize("kind", sorted(DOCUMENTED_CREATE))
async def test_submit_sends_the_documented_request(rig, kind):
    drv, rec, api_host, _ = rig
    path, documented, full = DOCUMENTED_CREATE[kind]
    job = await drv("submit", kind, **full)
    assert isinstance(job, Job) and job.job_id == "65f8017f56559aa67f0ecde7" and job.kind == kind
    [req] = rec.requests
    assert (req.method, req.path, req.query, _host(req)) == ("POST", path, {}, api_host)
    assert req.headers["content-type"].startswith("application/json")
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    body = req.json
    assert set(body) == documented
    assert body == full
    if kind == "talking_avatar":
        for element in body["elements"]:
            assert set(element) <= TALKING_AVATAR_ELEMENT_FIELDS


@pytest.mark.parametrize("kind", sorted(DOCUMENTED_STATUS))
async def test_status_sends_the_documented_request(rig, kind):
    drv, rec, api_host, _ = rig
    path, param = DOCUMENTED_STATUS[kind]
    st = await drv("status", kind, "66160f989dfc997ac289037b")
    assert isinstance(st, JobStatus) and st.job_id == "66160f989dfc997ac289037b"
    assert st.state == "completed" and st.status_code == 3
    [req] = rec.requests
    if kind in POST_STATUS:
        assert (req.method, req.path, req.flat_query, req.json, _host(req)) == (
            "POST", path, {}, {param: "66160f989dfc997ac289037b"}, api_host)
    else:
        assert (req.method, req.path, req.flat_query, req.body, _host(req)) == (
            "GET", path, {param: "66160f989dfc997ac289037b"}, b"", api_host)
    assert req.headers["authorization"] == f"Bearer {TOKEN}"


async def test_statuses_for_faceswap_sends_one_comma_separated_listbyids(rig):
    drv, rec, _, _ = rig
    ids = [f"64dae65af6e250d4fb2bca{i:02d}" for i in range(7)]
    out = await drv("statuses", "faceswap_image", ids)
    assert set(out) == set(ids) and all(s.result_url == f"https://cdn.test/{i}.jpg" for i, s in out.items())
    [req] = rec.requests
    assert (req.method, req.path, req.flat_query) == ("GET", f"{V3}/faceswap/result/listbyids",
                                                     {"_ids": ",".join(ids)})


@pytest.mark.parametrize("kind", sorted(DOCUMENTED_CANCEL))
async def test_cancel_sends_the_documented_request(rig, kind):
    drv, rec, _, _ = rig
    path, field, which = DOCUMENTED_CANCEL[kind]
    job = await drv("submit", kind, **DOCUMENTED_CREATE[kind][2])
    await drv("cancel", kind, job)
    req = rec.requests[-1]
    expected = job.task_id if which == "task" else job.job_id
    assert expected == ("20240102082900592-5653" if which == "task" else "65f8017f56559aa67f0ecde7")
    assert (req.method, req.path, req.query, req.json) == ("POST", path, {}, {field: expected})
    # A bare id string is sent as given.
    await drv("cancel", kind, "explicit-id")
    assert rec.requests[-1].json == {field: "explicit-id"}


@pytest.mark.parametrize("case", HELPERS, ids=lambda c: f"{c[0]}-{c[4].rsplit('/', 1)[-1]}-{len(c[5])}")
async def test_helper_endpoints_send_the_documented_request(rig, case):
    drv, rec, api_host, detect_host = rig
    op, args, kwargs, method, path, query, body, host = case
    result = await drv(op, *args, **kwargs)
    [req] = rec.requests
    assert (req.method, req.path, req.flat_query) == (method, path, query)
    assert _host(req) == (detect_host if host == "detect" else api_host)
    assert req.json == body
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    if op == "face_detect":
        assert isinstance(result, FaceDetection) and result.opts == "238,365:386,363:318,470:267,539"
    if op == "credit_info":
        assert result == 42.5
    if op == "languages":
        assert result == [{"lang_code": "en", "lang_name": "English", "url": "https://cdn.test/en.png"}]
    if op == "image_to_video_batch":
        assert [j.job_id for j in result.jobs] == ["68919a464b4dbdd4ab3d3030", "68919a464b4dbdd4ab3d3031"]
    if op == "update_video_audio":
        assert isinstance(result, Job) and result.kind == "image_to_video"
    if op in ("image_to_video_effects", "ai_models", "translation_voices", "streaming_voices", "knowledge_bases"):
        assert isinstance(result, list) and len(result) == 1


async def test_client_credentials_are_exchanged_through_gettoken_once(rig):
    drv, rec, _, _ = rig
    # Rebuild the same kind of client with clientId/clientSecret instead of a token.
    await drv.close()
    name = type(drv.client).__name__
    kwargs = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    if isinstance(rec, MockAkool):
        drv = make_mock_client("sync-httpx" if name == "AkoolClient" else "async-httpx", rec, **kwargs)
    else:
        drv = make_client("sync-httpx" if name == "AkoolClient" else "async-aiohttp", rec.url, **kwargs)
    try:
        await drv("status", "moderation", "a1")
        await drv("voices")
        token_reqs = [r for r in rec.requests if r.path == f"{V3}/getToken"]
        assert len(token_reqs) == 1
        [tok] = token_reqs
        assert tok.method == "POST" and tok.json == {"clientId": CLIENT_ID, "clientSecret": CLIENT_SECRET}
        assert "authorization" not in tok.headers
        assert [r.headers["authorization"] for r in rec.requests[1:]] == [f"Bearer {TOKEN}"] * 2
    finally:
        await drv.close()


async def test_api_key_travels_as_x_api_key_header(rig):
    drv, rec, _, _ = rig
    await drv.close()
    name = type(drv.client).__name__
    if isinstance(rec, MockAkool):
        drv = make_mock_client("sync-httpx" if name == "AkoolClient" else "async-httpx", rec, api_key=API_KEY)
    else:
        drv = make_client("sync-httpx" if name == "AkoolClient" else "async-aiohttp", rec.url, api_key=API_KEY)
    try:
        await drv("status", "tts", "a1")
        [req] = rec.requests
        assert req.headers["x-api-key"] == API_KEY
        assert "authorization" not in req.headers
    finally:
        await drv.close()


def test_from_env_reads_the_documented_variables():
    from akool_flows.api import AkoolClient

    env = {"AKOOL_BASE_URL": "http://127.0.0.1:9/", "AKOOL_DETECT_URL": "http://127.0.0.1:9/detect",
           "AKOOL_API_TOKEN": TOKEN}
    with AkoolClient.from_env(env) as c:
        assert (c.base_url, c.detect_url, c.credentials.mode) == ("http://127.0.0.1:9", "http://127.0.0.1:9/detect",
                                                                  "token")
    with AkoolClient.from_env({"AKOOL_CLIENT_ID": CLIENT_ID, "AKOOL_CLIENT_SECRET": CLIENT_SECRET}) as c:
        assert (c.base_url, c.detect_url, c.credentials.mode) == (
            "https://openapi.akool.com", "https://sg3.akool.com/detect", "client_credentials")
    with AkoolClient.from_env({"AKOOL_API_KEY": API_KEY}) as c:
        assert c.credentials.headers() == {"x-api-key": API_KEY}
