"""The sandbox answers what Akool's own code sends the way Akool does: unknown fields accepted
and echoed, ``source_language: "DEFAULT"``, and ``language: "fr,de,ja"`` as one job per
language in ``all_results`` (AKOOL-Official/akool-video-translation-demo reads that shape)."""

from __future__ import annotations

import httpx

from .conftest import V3, code_of, ok_data, status_of, wait_for

TRANSLATE = f"{V3}/content/video/createbytranslate"
BODY = {"url": "https://cdn.example.com/v.mp4", "source_language": "DEFAULT", "language": "fr,de,ja",
        "lipsync": True, "speaker_num": 0, "remove_bgm": True, "caption_type": 0, "dynamic_duration": False,
        "voices_map": {"fr": {"voice_id": ""}, "de": {"voice_id": ""}, "ja": {"voice_id": ""}}, "webhookUrl": ""}


def test_several_languages_answer_one_envelope_per_language_in_all_results(client, sandbox):
    answer = client.post(TRANSLATE, json=BODY).json()
    assert answer["code"] == 1000 and set(answer) == {"code", "msg", "data", "all_results"}
    results = answer["all_results"]
    assert [(r["code"], r["data"]["language"]) for r in results] == [(1000, "fr"), (1000, "de"), (1000, "ja")]
    assert answer["data"] == results[0]["data"]
    ids = [r["data"]["_id"] for r in results]
    assert len(set(ids)) == 3 and sorted(ids) == sorted(j["_id"] for j in sandbox.jobs())
    for r in results:  # each language is its own job: own status, own result, own price
        assert r["data"]["video_status"] == 1 and r["data"]["source_language"] == "DEFAULT"
        assert sandbox.job_request(r["data"]["_id"]) == BODY
    wait_for(lambda: all(status_of(client, "video_translation", i)["video_status"] == 3 for i in ids))
    assert len({status_of(client, "video_translation", i)["video"] for i in ids}) == 3
    assert sandbox.stats()["credits_charged"] == 3 * sandbox.jobs()[0]["cost"]


def test_a_refused_language_has_its_own_code_and_no_job(client, sandbox):
    ok_data(client.post(TRANSLATE, json={**BODY, "language": "de"}))
    answer = client.post(TRANSLATE, json=BODY).json()
    assert [r["code"] for r in answer["all_results"]] == [1000, 1202, 1000]
    assert "data" not in answer["all_results"][1] and answer["data"]["language"] == "fr"
    assert sandbox.create_count() == 3 and sandbox.stats()["rejected_by_code"] == {"1202": 1}


def test_every_language_refused_is_the_first_refusal(client, sandbox):
    answer = client.post(TRANSLATE, json={**BODY, "language": "xx,yy"}).json()
    assert answer["code"] == 1003 and "all_results" not in answer and "xx" in answer["msg"]
    assert sandbox.create_count() == 0 and sandbox.stats()["rejected_by_code"] == {"1003": 2}
    # fr twice: the second one is the same lip-synced translation again.
    answer = client.post(TRANSLATE, json={**BODY, "language": "fr,fr"}).json()
    assert [r["code"] for r in answer["all_results"]] == [1000, 1202] and sandbox.create_count() == 1


def test_unknown_fields_are_accepted_echoed_and_kept(client, sandbox):
    body = {**BODY, "language": "fr", "some_future_field": {"a": [1, 2]}}
    data = ok_data(client.post(TRANSLATE, json=body))
    assert "all_results" not in client.post(TRANSLATE, json={**body, "language": "de"}).json()
    payload = status_of(client, "video_translation", data["_id"])
    assert payload["some_future_field"] == {"a": [1, 2]} and payload["remove_bgm"] is True
    assert payload["language"] == "fr" and "webhookUrl" not in payload
    admin = httpx.get(f"{sandbox.base_url}/_sandbox/jobs/{data['_id']}").json()
    assert admin["request"] == body and admin["payload"]["some_future_field"] == {"a": [1, 2]}
    assert admin["webhook"] is False
    assert httpx.get(f"{sandbox.base_url}/_sandbox/jobs/nope").status_code == 404


def test_default_source_language_is_auto_detect_and_other_codes_still_checked(client, sandbox):
    assert code_of(client.post(TRANSLATE, json={**BODY, "language": "fr", "source_language": "default"})) == 1003
    assert code_of(client.post(TRANSLATE, json={**BODY, "language": "DEFAULT"})) == 1003
