"""Fixtures: a real sandbox on a localhost socket and plain httpx clients (no akool_flows client)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from akool_flows.sandbox import Sandbox, SandboxConfig

V3 = "/api/open/v3"
V4 = "/api/open/v4"
FACE = {"path": "https://cdn.example.com/face.png", "opts": "262,175:363,175:313,215:272,279"}

# One valid body per kind (the docs' examples, trimmed), keyed by kind name.
EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "tts": (f"{V3}/audio/create", {"input_text": "Hello there", "voice_id": "LcfcDJNUP1GQjkzn1xUU", "rate": "100%"}),
    "voice_clone": (f"{V3}/audio/clone", {"input_text": "Hello", "rate": "90%",
                                         "voice_url": "https://cdn.example.com/v.mp3"}),
    "background_change": (f"{V3}/content/image/bg/replace", {
        "color_code": "#c9aafb", "canvas_size": "3840x3840", "origin_img": "https://cdn.example.com/o.png",
        "modify_origin_img_size": "3060x3824", "overlay_origin_x": 388, "overlay_origin_y": 8}),
    "image_generate": (f"{V3}/content/image/createbyprompt", {"prompt": "a lighthouse", "scale": "16:9"}),
    "faceswap_image": (f"{V3}/faceswap/highquality/specifyimage", {
        "targetImage": [FACE], "sourceImage": [FACE], "face_enhance": 0,
        "modifyImage": "https://cdn.example.com/m.jpg"}),
    "faceswap_video": (f"{V3}/faceswap/highquality/specifyvideo", {
        "targetImage": [FACE], "sourceImage": [FACE], "face_enhance": 1,
        "modifyVideo": "https://cdn.example.com/m.mp4?duration=11.7"}),
    "reage_image": (f"{V3}/faceswap/highquality/imgreage", {
        "targetImage": [FACE], "face_reage": 10, "modifyImage": "https://cdn.example.com/m.jpg"}),
    "reage_video": (f"{V3}/faceswap/highquality/vidreage", {
        "targetImage": [FACE], "face_reage": -30, "modifyVideo": "https://cdn.example.com/m.mp4"}),
    "moderation": (f"{V3}/content/analysis/sentiment", {"type": 4, "content": "Have a nice day", "language": "en"}),
    "lipsync": (f"{V3}/content/video/lipsync", {"video_url": "https://cdn.example.com/v.mp4?duration=11.7",
                                               "audio_url": "https://cdn.example.com/a.wav"}),
    "talking_photo": (f"{V3}/content/video/createbytalkingphoto", {
        "talking_photo_url": "https://cdn.example.com/p.jpg", "audio_url": "https://cdn.example.com/a.mp3?duration=0.8"}),
    "video_translation": (f"{V3}/content/video/createbytranslate", {
        "url": "https://cdn.example.com/v.mp4", "source_language": "zh", "language": "hi", "lipsync": True}),
    "talking_avatar": (f"{V3}/talkingavatar/create", {
        "width": 3840, "height": 2160, "avatar_from": 3, "elements": [
            {"type": "image", "url": "https://cdn.example.com/bg.png", "width": 780, "height": 438,
             "scale_x": 1, "scale_y": 1, "offset_x": 1920, "offset_y": 1080},
            {"type": "avatar", "url": "https://cdn.example.com/av.mp4", "scale_x": 1, "scale_y": 1,
             "width": 1080, "height": 1080, "offset_x": 1920, "offset_y": 1080},
            {"type": "audio", "url": "https://cdn.example.com/a.mp3"}]}),
    "avatar_upload": (f"{V3}/avatar/create", {"url": "https://cdn.example.com/me.mp4", "avatar_id": "myAvatar01",
                                             "type": "2", "url_from": 1}),
    "live_session": (f"{V4}/liveAvatar/session/create", {"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 600}),
    "image_to_video": (f"{V4}/image2Video/createBySourcePrompt", {
        "image_url": "https://cdn.example.com/p.png", "prompt": "wave", "negative_prompt": "blurry",
        "resolution": "720p", "video_length": 5, "audio_type": 3}),
}
# (status path, id query parameter, status field) per status group
STATUS = {
    "audio": (f"{V3}/audio/infobymodelid", "audio_model_id", "status"),
    "image": (f"{V3}/content/image/infobymodelid", "image_model_id", "image_status"),
    "analysis": (f"{V3}/content/analysis/infobyid", "_id", "status"),
    "video": (f"{V3}/content/video/infobymodelid", "video_model_id", "video_status"),
    "avatar": (f"{V3}/avatar/detail", "id", "status"),
    "session": (f"{V4}/liveAvatar/session/detail", "id", "status"),
    "image2video": (f"{V4}/image2Video/resultsByIds", "_ids", "status"),
}
GROUP = {
    "tts": "audio", "voice_clone": "audio", "background_change": "image", "image_generate": "image",
    "image_button": "image", "moderation": "analysis", "lipsync": "video", "talking_photo": "video",
    "video_translation": "video", "talking_avatar": "video", "avatar_upload": "avatar", "live_session": "session",
    "image_to_video": "image2video",
}
FACESWAP_KINDS = ("faceswap_image", "faceswap_video", "reage_image", "reage_video")

FAST = dict(queue_seconds=0.05, job_seconds=0.15)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(SandboxConfig(**FAST)) as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.base_url, headers={"Authorization": f"Bearer {sandbox.token}"},
                      timeout=10) as c:
        yield c


def ok_data(response: httpx.Response) -> Any:
    """Assert Akool's success envelope and return ``data``."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == 1000, body
    return body.get("data")


def code_of(response: httpx.Response) -> int:
    assert response.status_code == 200, response.text
    return response.json()["code"]


def status_of(client: httpx.Client, kind: str, job_id: str) -> dict[str, Any]:
    """The job's status payload through its documented status endpoint."""
    if kind in FACESWAP_KINDS:
        result = ok_data(client.get(f"{V3}/faceswap/result/listbyids", params={"_ids": job_id}))["result"]
        assert len(result) == 1
        return result[0]
    path, param, _ = STATUS[GROUP[kind]]
    if kind == "image_to_video":  # resultsByIds takes the ids in a JSON body
        [record] = ok_data(client.post(path, json={param: job_id}))["result"]
        return record
    data = ok_data(client.get(path, params={param: job_id}))
    return data[0] if isinstance(data, list) else data


def status_code(kind: str, payload: dict[str, Any]) -> int:
    field = "faceswap_status" if kind in FACESWAP_KINDS else STATUS[GROUP[kind]][2]
    return payload[field]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, interval: float = 0.01) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError("condition not met in time")
