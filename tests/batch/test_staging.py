"""Staging local files: uploaded to a real S3-compatible server (moto) or to the sandbox, sent as
signed URLs that download, remembered in the ledger so a rerun uploads nothing."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections import Counter

import httpx
import pandas as pd
import pytest

from akool_flows.api.kinds import KINDS, get_kind
from akool_flows.batch import BatchInputError, Ledger, plan_batch, run_batch
from akool_flows.batch.staging import Stager
from akool_flows.cli import main
from akool_flows.sandbox.state import input_hash

from .conftest import free_port

moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server")
pytest.importorskip("s3fs")

FACE = json.dumps([{"path": "https://example.com/face.png", "opts": "262,175:363,175:313,215:272,279"}])
KIND = "faceswap_image"


class CountingMoto(moto_server.ThreadedMotoServer):
    """moto's S3 server, counting the requests it answers by method (PUT = an upload)."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=free_port(), verbose=False)
        self.methods: Counter[str] = Counter()
        self.lock = threading.Lock()

    def _server_entry(self) -> None:
        from werkzeug.serving import make_server

        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        moto_app = DomainDispatcherApplication(create_backend_app)

        def app(environ, start_response):
            with self.lock:
                self.methods[environ["REQUEST_METHOD"]] += 1
            return moto_app(environ, start_response)

        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


@pytest.fixture
def s3(monkeypatch):
    """A moto S3 server on a free loopback port with an empty ``bucket``; AWS_* point at it."""
    server = CountingMoto()
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()
    s3fs.S3FileSystem().call_s3("create_bucket", Bucket="bucket")
    server.methods.clear()
    yield server
    s3fs.S3FileSystem.clear_instance_cache()
    server.stop()


def _images(folder, n: int, start: int = 0) -> list[str]:
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = folder / f"photo {i}.png"  # a space: object names and URLs must cope
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(64) + bytes([i]))
        paths.append(str(path))
    return paths


def _faces(paths: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"modifyImage": paths, "sourceImage": [FACE] * len(paths), "targetImage": [FACE] * len(paths)})


def _staged(ledger_path) -> dict[str, dict]:
    with sqlite3.connect(ledger_path) as conn:
        conn.row_factory = sqlite3.Row
        return {r["source"]: dict(r) for r in conn.execute("SELECT * FROM staged_files")}


def _check_jobs_got_signed_urls(sandbox, ledger_path, paths: list[str]) -> None:
    """Each sandbox job's stored request is the row's body with the file's signed URL, and the
    URL downloads the file's bytes."""
    staged = _staged(ledger_path)
    hashes = Counter(job["input_hash"] for job in sandbox.jobs(KIND))
    for path in paths:
        url = staged[os.path.abspath(path)]["signed_url"]
        assert url.startswith("http") and "sign" in url.lower()
        body = {"sourceImage": json.loads(FACE), "targetImage": json.loads(FACE), "modifyImage": url}
        assert hashes[input_hash(KIND, body)] == 1, "the job was not created with the staged URL"
        got = httpx.get(url)
        assert got.status_code == 200 and got.content == open(path, "rb").read()


def test_cli_stages_five_images_to_s3_and_a_rerun_uploads_nothing(s3, sandbox, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AKOOL_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("AKOOL_API_TOKEN", sandbox.token)
    paths = _images(tmp_path / "photos", 5)
    # Relative paths, as a CSV next to its images would have them.
    _faces([os.path.relpath(p, tmp_path) for p in paths]).to_csv(tmp_path / "faces.csv", index=False)
    argv = ["batch", KIND, "faces.csv", "--stage", "s3://bucket/staged", "--out", "r.csv", "--ledger", "l.sqlite",
            "--poll-interval", "0.1", "--quiet"]
    assert main(argv) == 0
    assert "Staged files (s3://bucket/staged): 5 uploaded, 0 signed again, 0 reused" in capsys.readouterr().out
    assert s3.methods["PUT"] == 5
    results = pd.read_csv(tmp_path / "r.csv")
    assert results["outcome"].tolist() == ["completed"] * 5
    _check_jobs_got_signed_urls(sandbox, tmp_path / "l.sqlite", paths)
    staged = _staged(tmp_path / "l.sqlite")
    assert all(r["staged_uri"].startswith("s3://bucket/staged/") for r in staged.values())
    assert all(r["expires_at"] > time.time() + 23 * 3600 for r in staged.values())

    puts, creates = s3.methods["PUT"], sandbox.create_count()
    assert main(argv) == 0
    assert s3.methods["PUT"] == puts and sandbox.create_count() == creates


def test_rows_sent_by_a_later_batch_reuse_the_staged_files(s3, sandbox, client, tmp_path):
    """A second batch over the same files (and two new ones) uploads only the new ones."""
    paths = _images(tmp_path / "photos", 5)
    ledger = tmp_path / "l.sqlite"
    opts = dict(client=client, ledger=ledger, stage="s3://bucket/p", poll_interval=0.1)
    first = run_batch(_faces(paths[:3]), KIND, **opts)
    assert first.counts["completed"] == 3 and s3.methods["PUT"] == 3
    # Other faces make new requests (new row keys) over the same files: they must not move again.
    other = _faces(paths)
    other["sourceImage"] = FACE.replace("262,175", "260,170")
    second = run_batch(other, KIND, **opts)
    assert second.counts["completed"] == 5
    assert second.summary["staged_files"] == {"target": "s3://bucket/p", "uploaded": 2, "signed": 0, "reused": 3}
    assert s3.methods["PUT"] == 5, "files staged by the first batch were uploaded again"
    assert sandbox.create_count() == 8


def test_changed_file_is_uploaded_again_touched_file_is_not_and_old_urls_are_resigned(s3, tmp_path):
    [path] = _images(tmp_path / "photos", 1)
    with Ledger(tmp_path / "l.sqlite") as led:
        stager = Stager(get_kind(KIND), "s3://bucket/p", led, expiry=3600)
        url1 = stager.stage_file(path)
        assert s3.methods["PUT"] == 1
        assert stager.stage_file(path) == url1 and s3.methods["PUT"] == 1

        os.utime(path, (time.time() + 5, time.time() + 5))  # touched, same bytes
        assert stager.stage_file(path) == url1 and s3.methods["PUT"] == 1

        # Close to expiry (under half its life left): a new signature, no upload.
        led.conn.execute("UPDATE staged_files SET expires_at=?", (time.time() + 600,))
        time.sleep(1.1)  # signatures carry whole seconds
        url2 = stager.stage_file(path)
        assert url2 != url1 and s3.methods["PUT"] == 1
        assert _staged(tmp_path / "l.sqlite")[os.path.abspath(path)]["expires_at"] > time.time() + 3000

        with open(path, "ab") as f:
            f.write(b"changed")
        url3 = stager.stage_file(path)
        assert s3.methods["PUT"] == 2
        assert httpx.get(url3).content.endswith(b"changed")
        # The object a running job may still fetch is untouched (content-addressed names).
        assert not httpx.get(url2).content.endswith(b"changed")

        # Deleted from the bucket (a lifecycle rule): staged again rather than sent dead.
        import s3fs

        s3fs.S3FileSystem().rm("bucket/p", recursive=True)
        stager.stage_file(path)
        assert s3.methods["PUT"] == 3
        stager.close()


def test_sandbox_staging_needs_no_bucket(sandbox, client, tmp_path):
    paths = _images(tmp_path / "photos", 5)
    ledger = tmp_path / "l.sqlite"
    result = run_batch(_faces(paths), KIND, client=client, ledger=ledger, stage="sandbox:", poll_interval=0.1)
    assert result.counts["completed"] == 5
    uploads = httpx.get(f"{sandbox.base_url}/_sandbox/uploads").json()
    assert uploads["puts"] == 5
    _check_jobs_got_signed_urls(sandbox, ledger, paths)
    url = next(iter(_staged(ledger).values()))["signed_url"]
    assert httpx.get(url.replace("signature=", "signature=0")).status_code == 403
    expired = httpx.post(url.split("?")[0], params={"expires_in": 1}).json()["url"]
    time.sleep(2.1)
    assert httpx.get(expired).status_code == 403


def test_cli_with_sandbox_stages_automatically(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("AKOOL_API_TOKEN", "AKOOL_API_KEY", "AKOOL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    paths = _images(tmp_path / "photos", 2)
    _faces(paths).to_csv(tmp_path / "faces.csv", index=False)
    code = main(["batch", KIND, "faces.csv", "--sandbox", "--sandbox-job-seconds", "0.2", "--out", "r.csv",
                 "--ledger", "l.sqlite", "--quiet"])
    assert code == 0, capsys.readouterr()
    assert pd.read_csv(tmp_path / "r.csv")["outcome"].tolist() == ["completed"] * 2
    assert {r["target"].split(":")[0] for r in _staged(tmp_path / "l.sqlite").values()} == {"sandbox"}


def test_files_without_stage_are_rejected_with_the_hint_and_nothing_is_uploaded(s3, sandbox, client, tmp_path):
    paths = _images(tmp_path / "photos", 2)
    df = _faces([paths[0], str(tmp_path / "photos" / "missing.png"), paths[1]])
    df.loc[2, "targetImage"] = "[]"  # invalid for another reason
    plan = plan_batch(df, KIND)
    assert plan.valid == [False, False, False]
    assert "modifyImage" in plan.errors[0] and "pass --stage" in plan.errors[0]

    staged_plan = plan_batch(df, KIND, stage="s3://bucket/p")
    assert staged_plan.valid == [True, False, False]
    assert "modifyImage: no such file" in staged_plan.errors[1]
    assert staged_plan.bodies[0]["modifyImage"] == paths[0]  # the plan keeps the path
    result = run_batch(staged_plan, client=client, ledger=tmp_path / "l.sqlite", stage="s3://bucket/p",
                       poll_interval=0.1)
    assert result.results["outcome"].tolist() == ["completed", "rejected", "rejected"]
    assert s3.methods["PUT"] == 1  # only the row that was sent

    # A plan made for staging, run without a target: refused before anything is sent.
    with pytest.raises(BatchInputError, match="no stage target"):
        run_batch(staged_plan, client=client, ledger=tmp_path / "l2.sqlite")


def test_a_target_that_cannot_sign_is_refused_before_anything_is_sent(sandbox, client, tmp_path):
    paths = _images(tmp_path / "photos", 1)
    with pytest.raises(BatchInputError, match="cannot make signed URLs"):
        run_batch(_faces(paths), KIND, client=client, ledger=tmp_path / "l.sqlite", stage=str(tmp_path / "out"))
    assert sandbox.create_count() == 0


def test_a_file_gone_before_its_create_fails_that_row_only_and_a_rerun_sends_it(s3, sandbox, client, tmp_path):
    paths = _images(tmp_path / "photos", 3)
    ledger = tmp_path / "l.sqlite"
    plan = plan_batch(_faces(paths), KIND, stage="s3://bucket/p")
    data = open(paths[1], "rb").read()
    os.remove(paths[1])
    result = run_batch(plan, client=client, ledger=ledger, stage="s3://bucket/p", poll_interval=0.1)
    assert result.results["outcome"].tolist() == ["completed", "failed", "completed"]
    assert "staging failed" in result.results["error_message"][1]
    assert sandbox.create_count() == 2
    open(paths[1], "wb").write(data)
    again = run_batch(plan, client=client, ledger=ledger, stage="s3://bucket/p", poll_interval=0.1)
    assert again.results["outcome"].tolist() == ["completed"] * 3 and sandbox.create_count() == 3


def test_url_fields_come_from_the_request_models():
    assert get_kind("faceswap_image").url_fields == ("modifyImage",)
    assert get_kind("lipsync").url_fields == ("video_url", "audio_url")
    assert get_kind("tts").url_fields == ()
    for kind in KINDS.values():
        assert "webhookUrl" not in kind.url_fields
        for name in kind.url_fields:
            assert name in kind.field_names


def test_objects_already_in_a_bucket_are_staged_like_files(s3, sandbox, client, tmp_path):
    """An s3:// URI in a URL field (a private bucket) is copied to the stage and signed."""
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.pipe("bucket/private/cat.png", b"\x89PNG cat")
    ledger = tmp_path / "l.sqlite"
    opts = dict(client=client, ledger=ledger, stage="s3://bucket/public", poll_interval=0.1)
    result = run_batch(_faces(["s3://bucket/private/cat.png"]), KIND, **opts)
    assert result.counts["completed"] == 1
    [record] = _staged(ledger).values()
    assert record["source"] == "s3://bucket/private/cat.png" and record["staged_uri"].startswith("s3://bucket/public/")
    assert httpx.get(record["signed_url"]).content == b"\x89PNG cat"
    puts = s3.methods["PUT"]
    other = _faces(["s3://bucket/private/cat.png"])
    other["sourceImage"] = FACE.replace("262,175", "260,170")
    assert run_batch(other, KIND, **opts).counts["completed"] == 1
    assert s3.methods["PUT"] == puts


def test_a_target_that_refuses_uploads_stops_the_batch_before_any_create(s3, sandbox, client, tmp_path):
    paths = _images(tmp_path / "photos", 4)
    result = run_batch(_faces(paths), KIND, client=client, ledger=tmp_path / "l.sqlite",
                       stage="s3://no-such-bucket/p", poll_interval=0.1, concurrency=2)
    assert result.summary["stopped_by"] == "error"
    assert "staging to s3://no-such-bucket/p failed" in result.summary["stop_message"]
    assert set(result.results["outcome"]) == {"cancelled"}
    assert sandbox.create_count() == 0
    assert s3.methods["PUT"] >= 1


def test_stage_options_stay_out_of_reprs():
    from akool_flows.batch import BatchOptions

    opts = BatchOptions(stage="s3://bucket/p", stage_options={"secret": "wJalrXUtnFEMI/K7MDENG"}).checked()
    assert "wJalrXUtnFEMI" not in repr(opts)
    with pytest.raises(BatchInputError, match="stage"):
        BatchOptions(stage="  ").checked()


def test_sandbox_stage_is_refused_against_the_real_api(tmp_path):
    from akool_flows.api.client import DEFAULT_BASE_URL

    with Ledger(tmp_path / "l.sqlite") as led, pytest.raises(BatchInputError, match="stage to a bucket"):
        Stager(get_kind(KIND), "sandbox:", led, base_url=DEFAULT_BASE_URL)


def test_a_multi_language_translation_stages_its_video_once_for_one_create(s3, sandbox, client, tmp_path):
    """A video for two languages is one create (`batch.groups`): its file is staged once, after
    the group is taken (two workers staging its two rows would send two creates)."""
    video = tmp_path / "talk.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(64))
    df = pd.DataFrame({"url": [str(video)], "source_language": ["en"], "language": ["fr,de"], "lipsync": [False]})
    run_batch(df, "video_translation", client=client, ledger=tmp_path / "l.sqlite", stage="s3://bucket/p",
              poll_interval=0.1, concurrency=4)
    # (Whether this sandbox accepts "fr,de" in one create is the sandbox's business, not staging's.)
    creates = sandbox.stats()["requests_by_path"][get_kind("video_translation").create_path]
    assert creates == 1 and s3.methods["PUT"] == 1
    [record] = _staged(tmp_path / "l.sqlite").values()
    assert httpx.get(record["signed_url"]).content == video.read_bytes()
