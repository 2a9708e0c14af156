"""Authentication (1101/1102, x-api-key) and documented constraints answered with 1003/1007."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from akool_flows.sandbox import Sandbox

from .conftest import EXAMPLES, FACE, V3, V4, code_of


def _post(sandbox: Sandbox, path: str, body: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return httpx.post(sandbox.base_url + path, json=body, headers=headers or {}).json()


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_every_create_endpoint_needs_auth(sandbox: Sandbox, kind: str) -> None:
    path, body = EXAMPLES[kind]
    assert _post(sandbox, path, body)["code"] == 1102
    assert _post(sandbox, path, body, {"Authorization": "Bearer not-a-token"})["code"] == 1101
    assert _post(sandbox, path, body, {"x-api-key": "not-a-key"})["code"] == 1101
    assert sandbox.create_count() == 0


def test_auth_variants(sandbox: Sandbox) -> None:
    url = f"{sandbox.base_url}{V3}/faceswap/quota/info"
    assert httpx.get(url, headers={"x-api-key": sandbox.api_key}).json()["code"] == 1000
    assert httpx.get(url, headers={"Authorization": f"bearer {sandbox.token}"}).json()["code"] == 1000
    assert httpx.get(url, headers={"Authorization": "Bearer"}).json()["code"] == 1102  # scheme, no token
    assert httpx.get(url, headers={"Authorization": sandbox.token}).json()["code"] == 1101  # no scheme
    assert httpx.get(url, headers={"Authorization": f"Basic {sandbox.token}"}).json()["code"] == 1101
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.json() == {"code": 1102, "msg": "Authorization cannot be empty"}


def test_admin_and_files_need_no_akool_auth(sandbox: Sandbox) -> None:
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").status_code == 200
    assert httpx.get(f"{sandbox.base_url}/_sandbox/files/unknown.png").status_code == 404


def _with(kind: str, **changes: Any) -> tuple[str, dict[str, Any]]:
    path, body = EXAMPLES[kind]
    body = copy.deepcopy(body)
    for key, value in changes.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return path, body


BAD_INPUTS = [
    # (kind, changes, code, words the message must contain)
    ("reage_image", {"face_reage": 31}, 1003, ["face_reage", "[-30, 30]"]),
    ("reage_video", {"face_reage": -31}, 1003, ["face_reage"]),
    ("reage_image", {"face_reage": "10"}, 1003, ["face_reage", "integer"]),
    ("moderation", {"type": 5}, 1003, ["type", "1, 2, 3, 4"]),
    ("moderation", {"type": 1, "content": "not a url"}, 1003, ["content", "URL"]),
    ("moderation", {"content": None}, 1003, ["content"]),
    ("moderation", {"language": "english"}, 1003, ["language", "ISO-639-1"]),
    ("image_generate", {"scale": "5:4"}, 1003, ["scale", "16:9"]),
    ("image_generate", {"prompt": None}, 1003, ["prompt", "required"]),
    ("talking_avatar", {"width": 1920}, 1003, ["width", "3840"]),
    ("talking_avatar", {"height": 1080}, 1003, ["height", "2160"]),
    ("talking_avatar", {"avatar_from": 1}, 1003, ["avatar_from"]),
    ("talking_avatar", {"elements": []}, 1003, ["elements"]),
    ("avatar_upload", {"avatar_id": "my_avatar"}, 1003, ["avatar_id", "a-z"]),
    ("avatar_upload", {"type": "3"}, 1003, ["type"]),
    ("avatar_upload", {"url_from": 2}, 1003, ["url", "YouTube"]),
    ("live_session", {"duration": 3601}, 1003, ["duration", "3600"]),
    ("live_session", {"duration": 0}, 1003, ["duration"]),
    ("live_session", {"avatar_id": "nobody"}, 1003, ["avatar_id"]),
    ("tts", {"rate": "120%"}, 1003, ["rate", "100%"]),
    ("tts", {"voice_id": "no-such-voice"}, 1003, ["voice_id"]),
    ("tts", {"input_text": "x" * 5001}, 1003, ["input_text", "5000"]),
    ("voice_clone", {"voice_url": None}, 1003, ["voice_id", "voice_url"]),
    ("background_change", {"canvas_size": "big"}, 1003, ["canvas_size", "<width>x<height>"]),
    ("background_change", {"color_code": "red"}, 1003, ["color_code"]),
    ("background_change", {"overlay_template_x": 5}, 1003, ["overlay_template_x", "template_url"]),
    ("background_change", {"origin_img": None}, 1003, ["origin_img"]),
    ("faceswap_image", {"sourceImage": [FACE, FACE]}, 1003, ["same number of faces"]),
    ("faceswap_image", {"face_enhance": 2}, 1003, ["face_enhance"]),
    ("faceswap_image", {"targetImage": [{"path": "https://x/y.png", "opts": "eyes"}]}, 1003, ["opts", "landmarks_str"]),
    ("faceswap_image", {"targetImage": [FACE] * 9, "sourceImage": [FACE] * 9}, 1007, ["8"]),
    ("faceswap_video", {"modifyVideo": "ftp://x/y.mp4"}, 1003, ["modifyVideo", "http"]),
    ("video_translation", {"language": "xx"}, 1003, ["language"]),
    ("video_translation", {"language": "zh"}, 1003, ["differ"]),
    ("lipsync", {"audio_url": None}, 1003, ["audio_url"]),
    ("talking_photo", {"webhookUrl": "not a url"}, 1003, ["webhookUrl"]),
]


@pytest.mark.parametrize(("kind", "changes", "code", "words"), BAD_INPUTS,
                         ids=[f"{k}-{'-'.join(c)}" for k, c, _, _ in BAD_INPUTS])
def test_documented_constraints(client: httpx.Client, sandbox: Sandbox, kind: str, changes: dict[str, Any],
                                code: int, words: list[str]) -> None:
    path, body = _with(kind, **changes)
    answer = client.post(path, json=body).json()
    assert answer["code"] == code, answer
    for word in words:
        assert word in answer["msg"], (word, answer["msg"])
    assert sandbox.create_count() == 0
    assert sandbox.stats()["rejected_by_code"][str(code)] == 1


def test_talking_avatar_elements_rules(client: httpx.Client) -> None:
    path, body = EXAMPLES["talking_avatar"]
    no_audio = {**body, "elements": [e for e in body["elements"] if e["type"] != "audio"]}
    assert "audio" in client.post(path, json=no_audio).json()["msg"]
    bad_image = copy.deepcopy(body)
    bad_image["elements"][0]["url"] = "https://cdn.example.com/bg.gif"
    assert ".gif" in client.post(path, json=bad_image).json()["msg"]
    colour = copy.deepcopy(body)
    colour["elements"][0]["url"] = "#aafbe3"  # a hex colour is a valid image element
    assert code_of(client.post(path, json=colour)) == 1000
    official = copy.deepcopy(body)
    official["avatar_from"] = 2
    official["elements"][1] = {"type": "avatar", "avatar_id": "Yasmin_in_White_shirt_20231121", "scale_x": 1,
                               "scale_y": 1, "offset_x": 0, "offset_y": 0}
    assert code_of(client.post(path, json=official)) == 1000
    official["elements"][1]["avatar_id"] = "Nobody_2020"
    assert code_of(client.post(path, json=official)) == 1003
    missing_offset = copy.deepcopy(body)
    del missing_offset["elements"][1]["offset_x"]
    assert "offset_x" in client.post(path, json=missing_offset).json()["msg"]


def test_body_must_be_a_json_object(client: httpx.Client) -> None:
    path = EXAMPLES["tts"][0]
    assert "JSON" in client.post(path, content=b"{not json").json()["msg"]
    assert "object" in client.post(path, json=[1, 2]).json()["msg"]
    assert client.post(path, content=b"").json()["code"] == 1003


def test_v4_paging_is_validated(client: httpx.Client) -> None:
    assert code_of(client.get(f"{V4}/liveAvatar/session/list", params={"page": 0})) == 1003
    assert code_of(client.get(f"{V4}/liveAvatar/session/list", params={"status": 9})) == 1003
    assert code_of(client.get(f"{V3}/avatar/list", params={"size": "ten"})) == 1003
