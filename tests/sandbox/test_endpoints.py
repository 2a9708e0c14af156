"""Every documented endpoint over a real socket with plain httpx: paths, fields, envelopes."""

from __future__ import annotations

import time

import httpx
import pytest

from akool_flows.sandbox import KIND_NAMES, Sandbox

from .conftest import EXAMPLES, FACESWAP_KINDS, V3, V4, code_of, ok_data, status_code, status_of, wait_for


def test_example_table_covers_every_kind() -> None:
    assert set(EXAMPLES) | {"image_button"} == set(KIND_NAMES)


@pytest.mark.parametrize("kind", sorted(EXAMPLES))
def test_create_then_status_reaches_completed(kind: str, sandbox: Sandbox, client: httpx.Client) -> None:
    path, body = EXAMPLES[kind]
    if kind == "live_session":
        sandbox.configure(session_time_scale=0.15 / 600)  # a 600 s session ends after 0.15 s
    response = client.post(path, json=body)
    data = ok_data(response)
    created = data[0] if isinstance(data, list) else data
    job_id = created["_id"]
    assert len(job_id) == 24 and int(job_id, 16) >= 0  # an ObjectId, like Akool's
    if kind in FACESWAP_KINDS:
        assert set(created) == {"_id", "url", "job_id"}
        assert response.json()["msg"].startswith("Please be patient!")
    else:
        assert status_code(kind, created) == 1

    assert status_code(kind, status_of(client, kind, job_id)) == 1
    wait_for(lambda: status_code(kind, status_of(client, kind, job_id)) == 3, timeout=3)
    payload = status_of(client, kind, job_id)
    assert payload["_id"] == job_id
    assert sandbox.create_count(kind) == 1

    result_field = {"tts": "url", "voice_clone": "url", "background_change": "image", "image_generate": "image",
                    "lipsync": "video", "talking_photo": "video", "video_translation": "video",
                    "talking_avatar": "video", "avatar_upload": "url", "image_to_video": "video_url"}.get(kind, "url")
    if kind in ("moderation", "live_session"):
        return
    url = payload[result_field]
    if kind == "avatar_upload":
        assert url == body["url"]
        return
    assert url.startswith(sandbox.base_url + "/_sandbox/files/")
    download = httpx.get(url)  # public, like a CDN link: no Authorization
    assert download.status_code == 200 and len(download.content) > 0


def test_tts_payload_fields(client: httpx.Client) -> None:
    path, body = EXAMPLES["tts"]
    data = ok_data(client.post(path, json=body))
    for field in ("_id", "create_time", "uid", "from", "input_text", "rate", "voice_model_id", "url", "status"):
        assert field in data
    assert data["input_text"] == body["input_text"] and data["url"] == ""


def test_video_credit_fields_follow_the_docs_blocks(client: httpx.Client) -> None:
    # Docs: video_lock_duration 11.7 -> deduction_lock_duration 20; 0.8 -> 10.
    path, body = EXAMPLES["lipsync"]
    data = ok_data(client.post(path, json=body))
    assert data["video_lock_duration"] == 11.7 and data["deduction_lock_duration"] == 20
    path, body = EXAMPLES["talking_photo"]
    data = ok_data(client.post(path, json=body))
    assert data["video_lock_duration"] == 0.8 and data["deduction_lock_duration"] == 10


def test_talking_avatar_create_answer_is_the_documented_subset(client: httpx.Client) -> None:
    path, body = EXAMPLES["talking_avatar"]
    data = ok_data(client.post(path, json=body))
    assert set(data) == {"_id", "uid", "video_id", "task_id", "video_status", "video", "create_time"}


def test_faceswap_list_by_ids_answers_many_ids_in_one_call(sandbox: Sandbox, client: httpx.Client) -> None:
    ids = []
    for kind in FACESWAP_KINDS:
        path, body = EXAMPLES[kind]
        ids.append(ok_data(client.post(path, json=body))["_id"])
    result = ok_data(client.get(f"{V3}/faceswap/result/listbyids",
                                params={"_ids": ",".join([*ids, "000000000000000000000000"])}))["result"]
    assert [r["_id"] for r in result] == ids  # unknown ids are simply absent
    for item in result:
        assert {"faceswap_status", "url", "createdAt", "deduction_duration", "video_duration"} <= set(item)
        assert item["createdAt"].endswith("Z")
    assert sandbox.stats()["polls_by_path"][f"{V3}/faceswap/result/listbyids"] == 1


def test_listbyids_without_ids_is_1003(client: httpx.Client) -> None:
    assert code_of(client.get(f"{V3}/faceswap/result/listbyids")) == 1003
    assert code_of(client.get(f"{V3}/faceswap/result/listbyids", params={"_ids": " , "})) == 1003


def test_delete_results_hides_them(client: httpx.Client) -> None:
    path, body = EXAMPLES["faceswap_image"]
    job = ok_data(client.post(path, json=body))
    ok_data(client.post(f"{V3}/faceswap/result/delbyids", json={"_ids": job["_id"]}))
    assert ok_data(client.get(f"{V3}/faceswap/result/listbyids", params={"_ids": job["_id"]}))["result"] == []


def test_quota_info_reports_the_balance(sandbox: Sandbox, client: httpx.Client) -> None:
    assert ok_data(client.get(f"{V3}/faceswap/quota/info")) == {"credit": sandbox.credits}
    sandbox.set_credits(42.5)
    assert ok_data(client.get(f"{V3}/faceswap/quota/info")) == {"credit": 42.5}


def test_cancel_faceswap_job_fails_it_and_refunds(sandbox: Sandbox, client: httpx.Client) -> None:
    before = sandbox.credits
    path, body = EXAMPLES["faceswap_video"]
    job = ok_data(client.post(path, json=body))
    assert sandbox.credits == before - 20
    ok_data(client.post(f"{V3}/faceswap/job/del", json={"job_ids": job["job_id"]}))
    payload = status_of(client, "faceswap_video", job["_id"])
    assert payload["faceswap_status"] == 4 and payload["cancelled"] is True
    assert payload["deduction_credit"] == 0 and "cancelled" in payload["error_msg"]
    assert sandbox.credits == before
    time.sleep(0.2)  # still failed after its would-be completion time
    assert status_of(client, "faceswap_video", job["_id"])["faceswap_status"] == 4
    assert code_of(client.post(f"{V3}/faceswap/job/del", json={"job_ids": "nope"})) == 1008


def test_face_detect(sandbox: Sandbox) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    url = "https://cdn.example.com/group.jpg"
    one = httpx.post(sandbox.detect_url, headers=headers, json={"single_face": True, "image_url": url}).json()
    assert one["error_code"] == 0 and one["error_msg"] == "SUCCESS"
    assert len(one["landmarks"]) == len(one["landmarks_str"]) == len(one["region"]) == 1
    assert len(one["landmarks"][0]) == 6 and one["landmarks"][0][4:] == [[0, 0], [0, 0]]
    first4 = ":".join(f"{x},{y}" for x, y in one["landmarks"][0][:4])
    assert one["landmarks_str"][0] == first4
    assert {"seconds", "trx_id"} <= set(one)
    again = httpx.post(sandbox.detect_url, headers=headers, json={"single_face": True, "image_url": url}).json()
    assert again["landmarks"] == one["landmarks"]  # deterministic per image
    b64 = httpx.post(sandbox.detect_url, headers=headers, json={"img": "data:image/jpeg;base64,AAAA"}).json()
    assert b64["error_code"] == 0 and b64["landmarks_str"]
    none = httpx.post(sandbox.detect_url, headers=headers, json={"single_face": False}).json()
    assert none["error_code"] == 1003 and "image_url" in none["error_msg"]
    noauth = httpx.post(sandbox.detect_url, json={"image_url": url}).json()
    assert noauth["error_code"] == 1102
    noface = httpx.post(sandbox.detect_url, headers=headers, json={"image_url": url + "?sandbox-noface"}).json()
    assert noface["error_code"] == 0 and noface["landmarks_str"] == []


def test_catalogue_endpoints(client: httpx.Client) -> None:
    voices = ok_data(client.get(f"{V3}/voice/list"))
    assert any(v["voice_id"] == "piTKgcLEGmPE4e6mEKli" for v in voices)
    assert all(v["from"] == 3 for v in ok_data(client.get(f"{V3}/voice/list", params={"from": 3})))
    assert code_of(client.get(f"{V3}/voice/list", params={"from": 5})) == 1003
    langs = ok_data(client.get(f"{V3}/language/list"))["lang_list"]
    assert {"en", "fr", "zh"} <= {lang["lang_code"] for lang in langs}
    avatars = ok_data(client.get(f"{V3}/avatar/list", params={"from": 2, "type": 1, "page": 1, "size": 2}))
    assert len(avatars) == 2 and all(a["from"] == 2 and a["type"] == 1 for a in avatars)
    live = ok_data(client.get(f"{V4}/liveAvatar/avatar/list", params={"page": 1, "size": 100}))
    assert live["count"] >= 1 and live["result"][0]["avatar_id"] == "dvp_Tristan_cloth2_1080P"
    assert code_of(client.get(f"{V4}/liveAvatar/avatar/list", params={"size": 101})) == 1003


def test_avatar_upload_then_detail_list_and_use(sandbox: Sandbox, client: httpx.Client) -> None:
    path, body = EXAMPLES["avatar_upload"]
    created = ok_data(client.post(path, json=body))
    assert isinstance(created, dict) and created["avatar_id"] == "myAvatar01"  # type 2 answers an object
    talking = ok_data(client.post(path, json={**body, "avatar_id": "myTalker", "type": "1"}))
    assert isinstance(talking, list) and talking[0]["type"] == 1  # type 1 answers an array, as documented
    assert code_of(client.post(path, json=body)) == 1222  # the avatar_id is taken
    detail = ok_data(client.get(f"{V3}/avatar/detail", params={"id": created["_id"]}))
    assert isinstance(detail, list) and detail[0]["status"] == 1
    session = {"avatar_id": "myAvatar01", "duration": 60}
    assert code_of(client.post(f"{V4}/liveAvatar/session/create", json=session)) == 1003  # not ready yet
    wait_for(lambda: ok_data(client.get(f"{V3}/avatar/detail", params={"id": created["_id"]}))[0]["status"] == 3)
    live = ok_data(client.get(f"{V4}/liveAvatar/avatar/list"))["result"]
    assert any(a["avatar_id"] == "myAvatar01" and a["available"] for a in live)
    assert ok_data(client.post(f"{V4}/liveAvatar/session/create", json=session))["status"] == 1
    uploaded = ok_data(client.get(f"{V3}/avatar/list", params={"from": 3}))
    assert {a["avatar_id"] for a in uploaded} == {"myAvatar01", "myTalker"}


def test_live_session_lifecycle(sandbox: Sandbox, client: httpx.Client) -> None:
    path, body = EXAMPLES["live_session"]
    created = ok_data(client.post(path, json=body))
    assert created["stream_type"] == "agora"
    assert {"agora_uid", "agora_app_id", "agora_channel", "agora_token"} == set(created["credentials"])
    wait_for(lambda: status_of(client, "live_session", created["_id"])["status"] == 2)
    listed = ok_data(client.get(f"{V4}/liveAvatar/session/list", params={"page": 1, "size": 10, "status": 2}))
    assert listed["count"] == 1 and listed["result"][0]["_id"] == created["_id"]
    ok_data(client.post(f"{V4}/liveAvatar/session/close", json={"id": created["_id"]}))
    detail = status_of(client, "live_session", created["_id"])
    assert detail["status"] == 3 and "agora_token" not in detail["credentials"]
    assert code_of(client.post(f"{V4}/liveAvatar/session/close", json={"id": created["_id"]})) == 1219
    assert code_of(client.post(f"{V4}/liveAvatar/session/close", json={"id": "0" * 24})) == 1008
    assert ok_data(client.get(f"{V4}/liveAvatar/session/list", params={"status": 2}))["count"] == 0


@pytest.mark.parametrize("field", ["id", "session_id"])  # the docs' field, the LiveKit plugin's field
def test_close_session_by_either_field(client: httpx.Client, field: str) -> None:
    path, body = EXAMPLES["live_session"]
    created = ok_data(client.post(path, json=body))
    ok_data(client.post(f"{V4}/liveAvatar/session/close", json={field: created["_id"]}))
    assert status_of(client, "live_session", created["_id"])["status"] == 3
    assert code_of(client.post(f"{V4}/liveAvatar/session/close", json={field: created["_id"]})) == 1219
    assert code_of(client.post(f"{V4}/liveAvatar/session/close", json={field: "0" * 24})) == 1008


def test_close_session_without_an_id_is_1003(client: httpx.Client) -> None:
    answer = client.post(f"{V4}/liveAvatar/session/close", json={}).json()
    assert answer["code"] == 1003 and "id" in answer["msg"]


def test_image_button_needs_a_completed_grid_and_each_button_once(client: httpx.Client) -> None:
    origin = ok_data(client.post(*EXAMPLES["image_generate"][:1], json=EXAMPLES["image_generate"][1]))
    button = f"{V3}/content/image/createbybutton"
    assert code_of(client.post(button, json={"_id": origin["_id"], "button": "U1"})) == 1010  # not done yet
    wait_for(lambda: ok_data(client.get(f"{V3}/content/image/infobymodelid",
                                        params={"image_model_id": origin["_id"]}))["image_status"] == 3)
    done = ok_data(client.get(f"{V3}/content/image/infobymodelid", params={"image_model_id": origin["_id"]}))
    assert done["buttons"] == ["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]
    up = ok_data(client.post(button, json={"_id": origin["_id"], "button": "U2"}))
    assert up["image_content_model_id"] == origin["_id"] and up["op_button"] == "U2" and up["image_status"] == 1
    assert code_of(client.post(button, json={"_id": origin["_id"], "button": "U2"})) == 1011
    info = ok_data(client.get(f"{V3}/content/image/infobymodelid", params={"image_model_id": origin["_id"]}))
    assert info["used_buttons"] == ["U2"]
    assert code_of(client.post(button, json={"_id": "0" * 24, "button": "U1"})) == 1008


def test_video_translation_lipsync_twice_is_1202(client: httpx.Client) -> None:
    path, body = EXAMPLES["video_translation"]
    ok_data(client.post(path, json=body))
    assert code_of(client.post(path, json=body)) == 1202
    ok_data(client.post(path, json={**body, "language": "fr"}))  # another language is fine
    ok_data(client.post(path, json={**body, "lipsync": False}))  # and without lipsync


def test_get_token(sandbox: Sandbox) -> None:
    url = f"{sandbox.base_url}{V3}/getToken"
    answer = httpx.post(url, json={"clientId": sandbox.client_id, "clientSecret": sandbox.client_secret}).json()
    assert set(answer) == {"code", "token"} and answer["code"] == 1000
    voices = httpx.get(f"{sandbox.base_url}{V3}/voice/list", headers={"Authorization": f"Bearer {answer['token']}"})
    assert voices.json()["code"] == 1000
    bad = httpx.post(url, json={"clientId": sandbox.client_id, "clientSecret": "x" * 24}).json()
    assert bad["code"] == 1101 and "token" not in bad
    assert httpx.post(url, json={}).json()["code"] == 1102


def test_unknown_ids_are_1008_on_every_status_endpoint(client: httpx.Client) -> None:
    for path, param in ((f"{V3}/audio/infobymodelid", "audio_model_id"),
                        (f"{V3}/content/image/infobymodelid", "image_model_id"),
                        (f"{V3}/content/analysis/infobyid", "_id"),
                        (f"{V3}/content/video/infobymodelid", "video_model_id"),
                        (f"{V3}/avatar/detail", "id"),
                        (f"{V4}/liveAvatar/session/detail", "id")):
        assert code_of(client.get(path, params={param: "0" * 24})) == 1008, path
        assert code_of(client.get(path)) == 1003, path


def test_an_id_is_only_found_by_its_own_status_endpoint(client: httpx.Client) -> None:
    audio = ok_data(client.post(*EXAMPLES["tts"][:1], json=EXAMPLES["tts"][1]))
    assert code_of(client.get(f"{V3}/content/video/infobymodelid", params={"video_model_id": audio["_id"]})) == 1008
