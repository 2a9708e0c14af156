"""Every job kind end to end through the real client against the sandbox over a real socket.

Sync client (httpx) and async client (default aiohttp sender), token / API key / client
credentials auth. Jobs complete on the sandbox's clock (0.08 s) so the module runs in seconds.
"""

from __future__ import annotations

import itertools
import urllib.request

import pytest

from akool_flows.api import KINDS, AkoolClient, AsyncAkoolClient, JobFailedError, RetryPolicy
from akool_flows.api.errors import (
    ConnectionDroppedError,
    MalformedResponseError,
    QuotaError,
    RateLimitError,
    ServerError,
)

from .helpers import Driver

sandbox_mod = pytest.importorskip("akool_flows.sandbox")
Sandbox, SandboxConfig = sandbox_mod.Sandbox, sandbox_mod.SandboxConfig

MODES = ("sync", "async")
POLL = 0.03
_unique = itertools.count()


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig(queue_seconds=0.02, job_seconds=0.08, session_time_scale=0.0005, seed=0)) as box:
        yield box


@pytest.fixture
def sandbox(sb):
    sb.reset()
    yield sb
    sb.faults.clear()


def _client(mode: str, sb, auth: str = "token", **kwargs) -> Driver:
    kwargs.setdefault("retry", RetryPolicy(max_attempts=4, initial_backoff=0.005, max_backoff=0.01))
    if mode == "sync":
        return Driver(mode, AkoolClient.from_env(sb.env(auth), **kwargs))
    return Driver(mode, AsyncAkoolClient.from_env(sb.env(auth), **kwargs))


@pytest.fixture(params=MODES)
async def drv(request, sandbox):
    d = _client(request.param, sandbox)
    yield d
    await d.close()


async def _fields_for(drv: Driver, kind: str) -> dict:
    """Valid create fields for `kind` (image_button needs a finished generated image)."""
    fields = dict(KINDS[kind].example)
    if kind == "image_button":
        gen = await drv("run", "image_generate", poll_interval=POLL, timeout=10, **KINDS["image_generate"].example)
        fields["_id"] = gen.job_id
    if kind == "avatar_upload":
        fields["avatar_id"] = f"e2eavatar{next(_unique)}"
    return fields


def _download(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - a 127.0.0.1 sandbox URL
        return resp.read()


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_every_kind_completes_with_results(drv, sandbox, kind):
    k = KINDS[kind]
    fields = await _fields_for(drv, kind)
    job = await drv("submit", kind, **fields)
    assert job.kind == kind and len(job.job_id) == 24
    st = await drv("wait", kind, job.job_id, poll_interval=POLL, timeout=10)
    assert st.state == "completed" and st.ok and st.status_code == 3 and st.job_id == job.job_id
    if k.result_media in ("image", "video", "audio"):
        assert st.result_urls, st.raw
        if st.result_url.startswith(sandbox.base_url):
            assert len(_download(st.result_url)) > 0  # real bytes served by the sandbox
    if kind == "moderation":
        assert st.conclusion == "Compliant" and "Compliant" in (st.detail or "")
        assert st.credits == pytest.approx(0.1)
    if k.credit_fields:
        assert st.credits is not None and st.credits >= 0
    assert sandbox.create_count(kind) == 1 and sandbox.duplicate_creates() == {}


# kind -> field overrides that carry the sandbox's failure marker
FAILING = {
    "tts": {"input_text": "sandbox-fail please"},
    "voice_clone": {"input_text": "sandbox-fail please"},
    "background_change": {"origin_img": "https://example.com/sandbox-fail.png"},
    "image_generate": {"prompt": "sandbox-fail lighthouse"},
    "faceswap_image": {"modifyImage": "https://example.com/sandbox-fail.jpg"},
    "faceswap_video": {"modifyVideo": "https://example.com/sandbox-fail.mp4"},
    "reage_image": {"modifyImage": "https://example.com/sandbox-fail.jpg"},
    "reage_video": {"modifyVideo": "https://example.com/sandbox-fail.mp4"},
    "moderation": {"content": "sandbox-fail please"},
    "lipsync": {"video_url": "https://example.com/sandbox-fail.mp4"},
    "talking_photo": {"talking_photo_url": "https://example.com/sandbox-fail.jpg"},
    "talking_avatar": {"elements": [{**KINDS["talking_avatar"].example["elements"][0],
                                     "url": "https://example.com/sandbox-fail.mp4"},
                                    KINDS["talking_avatar"].example["elements"][1]]},
    "video_translation": {"url": "https://example.com/sandbox-fail.mp4"},
    "avatar_upload": {"url": "https://example.com/sandbox-fail.mp4"},
}


# image_button (an id and a button) and live_session (a catalogue avatar id and a number) have no
# free-text field that could carry the marker.
@pytest.mark.parametrize("kind", sorted(FAILING))
async def test_failure_marker_ends_in_failed_with_akools_message(drv, sandbox, kind):
    fields = {**(await _fields_for(drv, kind)), **FAILING[kind]}
    job = await drv("submit", kind, **fields)
    st = await drv("wait", kind, job.job_id, poll_interval=POLL, timeout=10)
    assert st.state == "failed" and st.status_code == 4 and not st.ok
    assert st.error_code and st.error_message, st.raw
    assert st.error_message == st.raw.get("error_msg")
    # run() turns the failure into JobFailedError carrying the status.
    with pytest.raises(JobFailedError) as info:
        await drv("run", kind, poll_interval=POLL, timeout=10,
                  **{**fields, **({"avatar_id": f"e2eavatar{next(_unique)}"} if kind == "avatar_upload" else {})})
    assert info.value.status.state == "failed" and info.value.code == st.error_code
    assert st.error_message in str(info.value)


async def test_statuses_polls_many_faceswap_jobs_in_one_request(drv, sandbox):
    jobs = [await drv("submit", "faceswap_image", **{**KINDS["faceswap_image"].example,
                                                     "modifyImage": f"https://example.com/p{i}.jpg"})
            for i in range(25)]
    before_client, before_server = drv.client.request_count, sandbox.stats()["polls"]
    out = await drv("statuses", "faceswap_image", [j.job_id for j in jobs])
    assert drv.client.request_count - before_client == 1
    assert sandbox.stats()["polls_by_path"] == {"/api/open/v3/faceswap/result/listbyids": 1}
    assert sandbox.stats()["polls"] - before_server == 1
    assert set(out) == {j.job_id for j in jobs}
    assert {s.state for s in out.values()} <= {"queued", "processing", "completed"}


async def test_statuses_for_other_kinds_poll_each_id(drv, sandbox):
    jobs = [await drv("submit", "moderation", content=f"comment {i}", type=4) for i in range(5)]
    out = await drv("statuses", "moderation", [j.job_id for j in jobs])
    assert set(out) == {j.job_id for j in jobs}
    assert sandbox.stats()["polls_by_path"] == {"/api/open/v3/content/analysis/infobyid": 5}


@pytest.mark.parametrize("kind", ["faceswap_video", "reage_video"])
async def test_cancel_faceswap_task(drv, sandbox, kind):
    job = await drv("submit", kind, **KINDS[kind].example)
    assert job.task_id  # Akool's job_id, which the cancel endpoint takes
    await drv("cancel", kind, job)
    st = await drv("status", kind, job.job_id)
    assert st.state == "failed" and "cancel" in (st.error_message or "")
    assert st.credits == 0  # refunded


async def test_live_session_lifecycle_and_close(drv, sandbox):
    job = await drv("create_session", "dvp_Tristan_cloth2_1080P", 600)
    detail = await drv("session_detail", job.job_id)
    assert detail["_id"] == job.job_id and detail["credentials"]["agora_channel"]
    listed = await drv("list_sessions", page=1, size=10)
    assert [s["_id"] for s in listed["result"]] == [job.job_id]
    await drv("close_session", job.job_id)
    st = await drv("status", "live_session", job.job_id)
    assert st.done
    # cancel() on a live session closes it the same way.
    other = await drv("submit", "live_session", avatar_id="dvp_Tristan_cloth2_1080P", duration=600)
    await drv("cancel", "live_session", other)
    assert (await drv("status", "live_session", other.job_id)).done


async def test_face_detect_opts_feed_a_faceswap(drv, sandbox):
    det = await drv("face_detect", image_url="https://example.com/group.jpg")
    assert det.landmarks_str and det.opts == det.landmarks_str[0]
    assert len(det.opts.split(":")) == 4
    face = det.face("https://example.com/crop0.png")
    st = await drv("run", "faceswap_image", poll_interval=POLL, timeout=10, sourceImage=[face], targetImage=[face],
                   modifyImage="https://example.com/group.jpg")
    assert st.ok


async def test_helper_endpoints(drv, sandbox):
    voices = await drv("voices")
    assert voices and all("voice_id" in v for v in voices)
    assert all(v["from"] == 3 for v in await drv("voices", 3))
    avatars = await drv("avatars", from_=2, type_=1)
    assert avatars and all(a["from"] == 2 and a["type"] == 1 for a in avatars)
    live = await drv("live_avatars", page=1, size=100)
    assert any(a["avatar_id"] == "dvp_Tristan_cloth2_1080P" for a in live["result"])
    langs = await drv("languages")
    assert {"lang_code": "en", "lang_name": "English"}.items() <= langs[0].items()
    balance = await drv("credit_info")
    assert balance == pytest.approx(sandbox.credits)
    up = await drv("submit", "avatar_upload", **{**KINDS["avatar_upload"].example, "avatar_id": f"help{next(_unique)}"})
    detail = await drv("avatar_detail", up.job_id)
    assert detail["_id"] == up.job_id
    swap = await drv("run", "faceswap_image", poll_interval=POLL, timeout=10, **KINDS["faceswap_image"].example)
    await drv("delete_results", [swap.job_id])
    assert await drv("statuses", "faceswap_image", [swap.job_id]) == {}  # deleted results are gone
    job = await drv("submit", "faceswap_video", **KINDS["faceswap_video"].example)
    await drv("cancel_faceswap_jobs", [job.task_id])
    assert (await drv("status", "faceswap_video", job.job_id)).state == "failed"


@pytest.mark.parametrize("mode", MODES)
async def test_client_credentials_exchange_once_and_cache(sandbox, mode):
    d = _client(mode, sandbox, auth="client")
    try:
        for _ in range(3):
            await d("status", "moderation", (await d("submit", "moderation", content="hi", type=4)).job_id)
    finally:
        await d.close()
    assert sandbox.stats()["requests_by_path"]["/api/open/v3/getToken"] == 1


@pytest.mark.parametrize("mode", MODES)
async def test_api_key_auth(sandbox, mode):
    d = _client(mode, sandbox, auth="api_key")
    try:
        st = await d("run", "moderation", poll_interval=POLL, timeout=10, content="lovely day", type=4)
    finally:
        await d.close()
    assert st.conclusion == "Compliant"
    assert "/api/open/v3/getToken" not in sandbox.stats()["requests_by_path"]


async def test_wrong_token_is_an_authentication_error(sandbox):
    from akool_flows.api import AuthenticationError

    async with AsyncAkoolClient(base_url=sandbox.base_url, token="not-the-token") as c:
        with pytest.raises(AuthenticationError) as info:
            await c.voices()
    assert info.value.code == 1101


async def test_sandbox_faults_surface_as_the_right_classes(drv, sandbox):
    create = "/api/open/v3/content/analysis/sentiment"
    sandbox.faults.http_500(next=1, path_prefix=create)
    with pytest.raises(ServerError):
        await drv("submit", "moderation", content="hi", type=4)
    sandbox.faults.malformed_json(next=1, path_prefix=create)
    with pytest.raises(MalformedResponseError):
        await drv("submit", "moderation", content="hi", type=4)
    sandbox.faults.drop_after_create(next=1, path_prefix=create)
    with pytest.raises(ConnectionDroppedError) as info:
        await drv("submit", "moderation", content="dropped after create", type=4)
    assert info.value.may_have_created and sandbox.create_count("moderation") == 1  # created, not resubmitted
    # 1005 is retried (nothing was created), then succeeds.
    sandbox.faults.rate_limit(next=2, path_prefix=create)
    job = await drv("submit", "moderation", content="after rate limit", type=4)
    assert job.job_id and sandbox.create_count("moderation") == 2
    sandbox.faults.rate_limit(next=10, path_prefix=create)
    with pytest.raises(RateLimitError):
        await drv("submit", "moderation", content="still limited", type=4)
    sandbox.faults.clear()
    # Status polls ride out transient faults.
    sandbox.faults.http_500(next=2, path_prefix="/api/open/v3/content/analysis/infobyid")
    st = await drv("wait", "moderation", job.job_id, poll_interval=POLL, timeout=10)
    assert st.ok and sandbox.duplicate_creates() == {}


async def test_quota_exhausted(drv, sandbox):
    sandbox.set_credits(0.05)
    with pytest.raises(QuotaError) as info:
        await drv("submit", "moderation", content="hello", type=4)
    assert info.value.code == 1006 and not info.value.retryable
    assert sandbox.create_count() == 0
