"""Image to video and the v4 catalogues through the real client against the sandbox over HTTP:
a job kind like any other (submit, wait, batched status polls, a published price), plus its
batch create, audio update, effects and models, the v4 voice lists and knowledge bases."""

from __future__ import annotations

import urllib.request

import pytest

from akool_flows.api import KINDS, BadRequestError, NotFoundError, ValidationError

from .sandbox_fixtures import drv, sandbox, sb  # noqa: F401 - fixtures

pytest.importorskip("akool_flows.sandbox")

POLL = 0.03
IMAGE = "https://cdn.example.com/portrait.png"
BASE = {"image_url": IMAGE, "prompt": "Slow push-in, hair moving", "resolution": "720p", "video_length": 5}


async def test_one_video_at_the_docs_price(drv, sandbox):
    kind = KINDS["image_to_video"]
    fields = {**BASE, "resolution": "1080p", "video_length": 10, "audio_type": 3}
    assert kind.estimate_credits(fields) == 50  # the docs' table: 1080p, 10 s
    job = await drv("submit", "image_to_video", **fields)
    status = await drv("wait", "image_to_video", job.job_id, poll_interval=POLL, timeout=10)
    assert status.ok and status.credits == 50 and status.duration == 10
    with urllib.request.urlopen(status.result_url, timeout=5) as resp:  # noqa: S310 - the local sandbox
        assert resp.status == 200 and resp.read()
    assert sandbox.credits == sandbox.config.credits - 50
    assert sandbox.stats()["polls_by_path"] == {kind.status_path: sandbox.stats()["polls"]}


async def test_audio_type_as_the_demo_sends_it_and_own_audio_needs_a_url(drv, sandbox):
    job = await drv("submit", "image_to_video", **BASE, audio_type="2", audio_url="https://cdn.example.com/a.mp3")
    assert sandbox.job_request(job.job_id)["audio_type"] == 2
    with pytest.raises(ValidationError, match="audio_type 2 .* needs audio_url"):
        await drv("submit", "image_to_video", **BASE, audio_type=2)
    with pytest.raises(ValidationError, match="audio_type"):
        await drv("submit", "image_to_video", **BASE)  # the docs make it required
    assert sandbox.create_count() == 1


async def test_batch_create_makes_count_videos_polled_in_one_request(drv, sandbox):
    models = await drv("ai_models")
    wan = next(m for m in models if m["value"].startswith("alibaba/"))
    res = wan["resolutionList"][-1]
    job = await drv("image_to_video_batch", **{**BASE, "resolution": res["value"], "video_length": 5},
                    model_name=wan["value"], count=3)
    assert len(job.jobs) == 3 and job.job_id == job.jobs[0].job_id and job.refused == ()
    before = sandbox.stats()["polls"]
    statuses = await drv("statuses", "image_to_video", [j.job_id for j in job.jobs])
    assert set(statuses) == {j.job_id for j in job.jobs} and sandbox.stats()["polls"] == before + 1
    for part in job.jobs:
        done = await drv("wait", "image_to_video", part.job_id, poll_interval=POLL, timeout=10)
        assert done.ok and done.credits == res["unit_credit"] * 5 and done.raw["model_name"] == wan["value"]
    assert KINDS["image_to_video"].estimate_credits({**BASE, "model_name": wan["value"]}) is None


async def test_batch_with_an_unknown_model_is_refused_by_akool(drv, sandbox):
    with pytest.raises(BadRequestError, match="model_name") as info:
        await drv("image_to_video_batch", **BASE, model_name="no-such-model", count=2)
    assert info.value.code == 1003 and sandbox.create_count() == 0
    with pytest.raises(ValidationError, match="count"):
        await drv("image_to_video_batch", **BASE, count=11)


async def test_update_video_audio_is_a_new_job_on_a_finished_video(drv, sandbox):
    job = await drv("submit", "image_to_video", **BASE, audio_type=3)
    with pytest.raises(BadRequestError, match="not completed"):
        await drv("update_video_audio", job.job_id, "https://cdn.example.com/a.mp3", 2)
    await drv("wait", "image_to_video", job.job_id, poll_interval=POLL, timeout=10)
    update = await drv("update_video_audio", job.job_id, "https://cdn.example.com/a.mp3", 2)
    assert update.kind == "image_to_video" and update.job_id != job.job_id
    done = await drv("wait", "image_to_video", update.job_id, poll_interval=POLL, timeout=10)
    assert done.ok and done.credits == 5 and done.raw["only_add_audio"] is True
    assert done.raw["pre_video_id"] == job.job_id and done.raw["audio_url"] == "https://cdn.example.com/a.mp3"
    with pytest.raises(NotFoundError):
        await drv("update_video_audio", "0" * 24, "https://cdn.example.com/a.mp3", 2)
    with pytest.raises(ValidationError, match="audio_type"):
        await drv("update_video_audio", job.job_id, "https://cdn.example.com/a.mp3", 3)


async def test_effects_drive_effect_code(drv, sandbox):
    effects = await drv("image_to_video_effects")
    assert effects and {"_id", "name", "logo", "video_url", "effect_code"} <= set(effects[0])
    job = await drv("submit", "image_to_video", **BASE, audio_type=3, effect_code=effects[1]["effect_code"])
    status = await drv("status", "image_to_video", job.job_id)
    assert status.raw["effect_name"] == effects[1]["name"]
    with pytest.raises(BadRequestError, match="effect_code"):
        await drv("submit", "image_to_video", **BASE, audio_type=3, effect_code="no-such-effect")


async def test_v4_voices_and_knowledge_bases_feed_a_live_session(drv, sandbox):
    french = await drv("translation_voices", "fr")
    assert french and all(v["language_code"] == "fr" for v in french)
    voices = await drv("streaming_voices", 2)
    assert voices and all(v["support_stream"] for v in voices)
    assert await drv("streaming_voices", 1) == []  # no voice clones on a fresh account
    bases = await drv("knowledge_bases")
    assert bases and all({"_id", "name"} <= set(b) for b in bases)
    assert [b["name"] for b in await drv("knowledge_bases", name="faq")] == ["Product FAQ"]
    session = await drv("submit", "live_session", avatar_id="dvp_Tristan_cloth2_1080P", duration=60,
                        knowledge_id=bases[0]["_id"], voice_id=voices[0]["voice_id"])
    sent = sandbox.job_request(session.job_id)
    assert (sent["knowledge_id"], sent["voice_id"]) == (bases[0]["_id"], voices[0]["voice_id"])
    job = await drv("submit", "video_translation", url="https://cdn.example.com/v.mp4", source_language="en",
                    language="fr", voices_map={"fr": {"voice_id": french[0]["voice_id"]}})
    assert sandbox.job_request(job.job_id)["voices_map"] == {"fr": {"voice_id": french[0]["voice_id"]}}


def test_the_cli_runs_a_catalog_of_images_at_the_published_price(tmp_path, monkeypatch, capsys):
    import pandas as pd

    from akool_flows.cli import main

    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"photo": [IMAGE, "https://cdn.example.com/b.png"]}).to_csv("in.csv", index=False)
    code = main(["batch", "image_to_video", "in.csv", "--map", "image_url=photo", "--set", "prompt=gentle wind",
                 "--set", "resolution=720p", "--set", "video_length=5", "--set", "audio_type=3", "--sandbox",
                 "--sandbox-job-seconds", "0.2", "--out", "out.csv", "--ledger", "l.sqlite", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "Estimated cost: 40.00 credits" in out
    res = pd.read_csv("out.csv")
    assert list(res["outcome"]) == ["completed", "completed"] and list(res["credits"]) == [20.0, 20.0]
