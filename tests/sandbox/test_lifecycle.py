"""Clock-driven job lifecycle, deterministic failure/slow markers and result files."""

from __future__ import annotations

import struct
import time
import zlib

import httpx
import pytest

from akool_flows.sandbox import Sandbox, SandboxConfig
from akool_flows.sandbox.files import file_bytes

from .conftest import EXAMPLES, V3, ok_data, status_code, status_of, wait_for


def _timeline(client: httpx.Client, kind: str, job_id: str, origin: float, seconds: float
              ) -> list[tuple[float, float, int]]:
    """(time before the request, time after the answer, status) samples, times since ``origin``."""
    seen: list[tuple[float, float, int]] = []
    while time.monotonic() - origin < seconds:
        before = time.monotonic() - origin
        status = status_code(kind, status_of(client, kind, job_id))
        seen.append((before, time.monotonic() - origin, status))
        time.sleep(0.01)
    return seen


def test_status_follows_the_clock_not_the_polls(client: httpx.Client) -> None:
    # FAST: queued 0.05 s, done 0.15 s after creation.
    path, body = EXAMPLES["tts"]
    job = ok_data(client.post(path, json=body))
    time.sleep(0.3)  # nobody polls meanwhile
    assert status_of(client, "tts", job["_id"])["status"] == 3


def test_statuses_move_1_2_3_at_the_configured_times(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.configure(queue_seconds=0.1, job_seconds=0.3)
    path, body = EXAMPLES["talking_photo"]
    origin = time.monotonic()
    job = ok_data(client.post(path, json=body))
    created_within = time.monotonic() - origin  # the job was created somewhere in [0, created_within]
    seen = _timeline(client, "talking_photo", job["_id"], origin, 0.5)
    statuses = [s for _, _, s in seen]
    assert statuses == sorted(statuses) and set(statuses) == {1, 2, 3}  # monotonic, all three seen
    eps = 0.005
    # Bounds that hold however slow the machine is: a status is only possible in its window.
    for before, after, status in seen:
        if status == 1:
            assert before < 0.1 + created_within + eps
        elif status == 2:
            assert after >= 0.1 - eps and before < 0.3 + created_within + eps
        else:
            assert after >= 0.3 - eps


@pytest.mark.parametrize("kind", ["tts", "image_generate", "faceswap_image", "moderation", "lipsync", "avatar_upload"])
def test_sandbox_fail_marker_ends_in_status_4_with_an_error(sandbox: Sandbox, client: httpx.Client, kind: str) -> None:
    path, body = EXAMPLES[kind]
    body = dict(body)
    field = {"tts": "input_text", "image_generate": "prompt", "faceswap_image": "modifyImage",
             "moderation": "content", "lipsync": "video_url", "avatar_upload": "url"}[kind]
    body[field] = body[field] + ("?x=sandbox-fail" if body[field].startswith("http") else " sandbox-fail")
    before = sandbox.credits
    data = ok_data(client.post(path, json=body))
    created = data[0] if isinstance(data, list) else data
    assert sandbox.credits == before  # failed jobs are not charged
    wait_for(lambda: status_code(kind, status_of(client, kind, created["_id"])) == 4)
    payload = status_of(client, kind, created["_id"])
    assert isinstance(payload["error_code"], int) and payload["error_msg"]
    if kind == "image_generate":
        assert payload["error_reasons"] == [{"error_code": payload["error_code"], "error_msg": payload["error_msg"]}]


def test_fail_marker_deep_inside_arrays(client: httpx.Client) -> None:
    path, body = EXAMPLES["faceswap_image"]
    face = {"path": "https://cdn.example.com/sandbox-fail.png", "opts": "1,2:3,4:5,6:7,8"}
    job = ok_data(client.post(path, json={**body, "targetImage": [face]}))
    wait_for(lambda: status_of(client, "faceswap_image", job["_id"])["faceswap_status"] == 4)


def test_fail_marker_in_webhook_url_alone_does_not_fail(client: httpx.Client) -> None:
    path, body = EXAMPLES["tts"]
    job = ok_data(client.post(path, json={**body, "webhookUrl": "http://127.0.0.1:9/sandbox-fail"}))
    wait_for(lambda: status_of(client, "tts", job["_id"])["status"] >= 3)
    assert status_of(client, "tts", job["_id"])["status"] == 3


def test_sandbox_slow_doubles_the_job_time(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.configure(queue_seconds=0.05, job_seconds=0.2)
    path, body = EXAMPLES["tts"]
    origin = time.monotonic()
    slow = ok_data(client.post(path, json={**body, "input_text": "sandbox-slow please"}))["_id"]
    seen = _timeline(client, "tts", slow, origin, 0.6)
    assert [s for _, _, s in seen][-1] == 3
    first_done = min(after for _, after, s in seen if s == 3)
    assert first_done >= 0.4 - 0.005  # 2 x job_seconds
    assert all(after >= 0.1 - 0.005 for _, after, s in seen if s == 2)  # queued 2 x queue_seconds


def test_result_files_are_real_media(client: httpx.Client) -> None:
    urls = {}
    for kind, field in (("tts", "url"), ("image_generate", "image"), ("lipsync", "video")):
        path, body = EXAMPLES[kind]
        job = ok_data(client.post(path, json=body))
        urls[kind] = (job["_id"], field)
    files = {}
    for kind, (job_id, field) in urls.items():
        wait_for(lambda: status_code(kind, status_of(client, kind, job_id)) == 3)  # noqa: B023
        files[kind] = httpx.get(status_of(client, kind, job_id)[field])
    png = files["image_generate"]
    assert png.headers["content-type"] == "image/png"
    data = png.content
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (256, 256)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert len(zlib.decompress(data[41:41 + idat_len])) == height * (1 + 3 * width)
    mp3 = files["tts"]
    assert mp3.headers["content-type"] == "audio/mpeg" and mp3.content[:3] == b"ID3"
    assert b"\xff\xfb\x90\x00" in mp3.content  # MPEG-1 Layer III frame header
    mp4 = files["lipsync"]
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    assert b"moov" in mp4.content and b"mvhd" in mp4.content


def test_media_files_differ_per_name_and_are_stable() -> None:
    assert file_bytes("a.png") == file_bytes("a.png") != file_bytes("b.png")
    assert file_bytes("a.mp4") != file_bytes("b.mp4")
    with pytest.raises(ValueError, match="unsupported file extension"):
        file_bytes("a.exe")


def test_result_file_is_404_until_the_job_completes() -> None:
    # Jobs long enough that a loaded machine still asks before they finish.
    with Sandbox(SandboxConfig(queue_seconds=1.0, job_seconds=1.0)) as sb, \
            httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.token}"}) as client:
        path, body = EXAMPLES["faceswap_image"]
        job = ok_data(client.post(path, json=body))
        assert httpx.get(job["url"]).status_code == 404  # the URL is known at creation, the file is not there yet
        wait_for(lambda: httpx.get(job["url"]).status_code == 200)


def test_result_files_expire_after_the_ttl() -> None:
    with Sandbox(SandboxConfig(queue_seconds=0.0, job_seconds=0.0, result_ttl_seconds=1.5)) as sb, \
            httpx.Client(base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.token}"}) as client:
        path, body = EXAMPLES["faceswap_image"]
        job = ok_data(client.post(path, json=body))
        assert httpx.get(job["url"]).status_code == 200
        time.sleep(1.6)
        expired = httpx.get(job["url"])
        assert expired.status_code == 403 and b"AccessDenied" in expired.content


def test_deleted_results_are_no_longer_served(client: httpx.Client) -> None:
    path, body = EXAMPLES["faceswap_image"]
    job = ok_data(client.post(path, json=body))
    wait_for(lambda: httpx.get(job["url"]).status_code == 200)
    ok_data(client.post(f"{V3}/faceswap/result/delbyids", json={"_ids": job["_id"]}))
    assert httpx.get(job["url"]).status_code == 404
