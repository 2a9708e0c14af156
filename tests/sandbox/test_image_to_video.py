"""Image to video and the v4 catalogues, asked the way Akool's own demos ask (plain HTTP):
AKOOL-Official/akool-image-to-video-demo's apiService.ts / useAnimatorLogic.ts and the
streaming-avatar demo's apiService.ts."""

from __future__ import annotations

import httpx

from .conftest import V4, code_of, ok_data, wait_for

I2V = f"{V4}/image2Video"
# What the demo's handleGenerate posts to createBySourcePrompt/batch (form defaults, a chosen model).
DEMO_BATCH = {"image_url": "https://cdn.example.com/cat.jpg", "prompt": "Animate this image with smooth camera movement",
              "model_name": "AkoolImage2VideoFastV1", "negative_prompt": "blurry, distorted hands",
              "resolution": "1080p", "audio_url": "", "audio_type": "1", "video_length": 5,
              "is_premium_model": False, "count": 2}


def _results(client: httpx.Client, ids: list[str]) -> list[dict]:
    return ok_data(client.post(f"{I2V}/resultsByIds", json={"_ids": ",".join(ids)}))["result"]


def test_the_demos_batch_create_and_polling(client, sandbox):
    data = ok_data(client.post(f"{I2V}/createBySourcePrompt/batch", json=DEMO_BATCH))
    assert set(data) == {"successList", "errorList"} and data["errorList"] == []
    ids = [item["_id"] for item in data["successList"]]
    assert len(set(ids)) == 2 and all(item["status"] == 1 for item in data["successList"])
    wait_for(lambda: all(r["status"] in (3, 4) for r in _results(client, ids)))  # the demo's "all done"
    done = _results(client, [*ids, "0" * 24])  # an unknown id is absent
    assert [r["_id"] for r in done] == ids
    for r in done:
        assert r["status"] == 3 and r["video_url"].startswith(sandbox.base_url)
        assert (r["audio_type"], r["resolution"], r["deduction_credit"], r["video_duration"]) == (1, "1080p", 25, 5)
        assert {"create_time", "uid", "team_id", "file_name", "effect_name", "effect_code", "image_url", "prompt",
                "audio_url", "only_add_audio", "webhookUrl", "update_time"} <= set(r)
    assert httpx.get(done[0]["video_url"]).status_code == 200
    assert sandbox.job_request(ids[0]) == DEMO_BATCH


def test_status_is_a_post_with_a_json_body(client, sandbox):
    assert client.get(f"{I2V}/resultsByIds", params={"_ids": "a"}).status_code == 405
    assert code_of(client.post(f"{I2V}/resultsByIds", json={})) == 1003


def test_a_batch_part_that_cannot_be_paid_is_in_the_error_list(client, sandbox):
    sandbox.set_credits(30)  # one 1080p 5 s video (25), not two
    data = ok_data(client.post(f"{I2V}/createBySourcePrompt/batch", json=DEMO_BATCH))
    assert len(data["successList"]) == 1 and [e["code"] for e in data["errorList"]] == [1006]
    sandbox.set_credits(0)
    assert code_of(client.post(f"{I2V}/createBySourcePrompt/batch", json=DEMO_BATCH)) == 1006


def test_model_limits_come_from_the_model_list(client, sandbox):
    models = ok_data(client.get(f"{V4}/aigModel/list", params={"types[]": 1501}))
    assert models and all(m["type"] == 1501 for m in models)
    assert ok_data(client.get(f"{V4}/aigModel/list", params={"types[]": 1502})) == []
    assert code_of(client.get(f"{V4}/aigModel/list")) == 1003
    lite = next(m for m in models if m["durationList"] == [5])
    body = {**DEMO_BATCH, "model_name": lite["value"], "resolution": lite["resolutionList"][0]["value"]}
    assert code_of(client.post(f"{I2V}/createBySourcePrompt/batch", json={**body, "video_length": 10})) == 1003
    assert code_of(client.post(f"{I2V}/createBySourcePrompt/batch", json={**body, "resolution": "4k"})) == 1003
    assert code_of(client.post(f"{I2V}/createBySourcePrompt/batch", json=body)) == 1000


def test_update_video_audio_answers_the_new_record(client, sandbox):
    [item] = ok_data(client.post(f"{I2V}/createBySourcePrompt/batch", json={**DEMO_BATCH, "count": 1}))["successList"]
    wait_for(lambda: _results(client, [item["_id"]])[0]["status"] == 3)
    body = {"pre_video_id": item["_id"], "audio_url": "https://cdn.example.com/a.mp3", "audio_type": 2}
    record = ok_data(client.post(f"{I2V}/updateVideoAudio", json=body))
    assert record["pre_video_id"] == item["_id"] and record["only_add_audio"] is True and record["status"] == 1
    assert code_of(client.post(f"{I2V}/updateVideoAudio", json={**body, "audio_type": 3})) == 1003
    assert code_of(client.post(f"{I2V}/updateVideoAudio", json={**body, "pre_video_id": "0" * 24})) == 1008


def test_effects_voices_and_knowledge_lists(client, sandbox):
    effects = ok_data(client.get(f"{I2V}/effects"))["result"]
    assert effects and all(set(e) == {"_id", "create_time", "logo", "name", "video_url", "effect_code"}
                           for e in effects)
    voices = ok_data(client.get(f"{V4}/voice/list", params={"support_stream": 1, "type": 2}))["result"]
    assert voices and all(v["support_stream"] is True and v["type"] == 2 for v in voices)
    assert {"voice_id", "name", "gender", "locale", "language", "preview", "voice_model_name"} <= set(voices[0])
    german = ok_data(client.get(f"{V4}/voice/videoTranslation",
                                params={"language_code": "de", "page": 1, "size": 100}))["result"]
    assert german and {v["language_code"] for v in german} == {"de"}
    bases = ok_data(client.get(f"{V4}/knowledge/list"))["knowledge_list"]
    assert bases and all({"_id", "name"} <= set(b) for b in bases)
