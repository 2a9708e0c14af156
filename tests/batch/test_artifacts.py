"""Result downloads: files with checksums, resumed on rerun, size limit, expiry, fsspec targets."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import pandas as pd
import pytest

from akool_flows.batch import run_batch
from akool_flows.batch.artifacts import ArtifactDownloader
from akool_flows.sandbox.files import file_bytes

VOICE = "LcfcDJNUP1GQjkzn1xUU"


def _tts(n: int) -> pd.DataFrame:
    return pd.DataFrame({"input_text": [f"Line number {i}" for i in range(n)], "voice_id": [VOICE] * n})


def _file_requests(sandbox) -> int:
    return sum(v for k, v in sandbox.stats()["requests_by_path"].items() if k.startswith("/_sandbox/files/"))


def test_downloads_with_checksums_and_no_second_download(sandbox, client, ledger_path, tmp_path):
    out = tmp_path / "media"
    r = run_batch(_tts(4), "tts", client=client, ledger=ledger_path, poll_interval=0.1, download_dir=out)
    res = r.results
    assert set(res["outcome"]) == {"completed"}
    for _, row in res.iterrows():
        path = Path(row["artifact_paths"])
        assert path.parent == out and path.suffix == ".mp3"
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == row["artifact_sha256"]
        assert data == file_bytes(row["result_url"].rsplit("/", 1)[-1])  # exactly what the server sent
    assert _file_requests(sandbox) == 4
    again = run_batch(_tts(4), "tts", client=client, ledger=ledger_path, poll_interval=0.1, download_dir=out)
    assert list(again.results["artifact_sha256"]) == list(res["artifact_sha256"])
    assert _file_requests(sandbox) == 4  # already downloaded: not fetched again


def test_rerun_downloads_what_an_earlier_run_did_not(sandbox, client, ledger_path, tmp_path):
    run_batch(_tts(2), "tts", client=client, ledger=ledger_path, poll_interval=0.1)
    r = run_batch(_tts(2), "tts", client=client, ledger=ledger_path, poll_interval=0.1, download_dir=tmp_path / "d")
    assert r.results["artifact_sha256"].notna().all() and sandbox.create_count() == 2


def test_size_limit_and_expired_results_are_reported_not_raised(sandbox, client, ledger_path, tmp_path):
    r = run_batch(_tts(2), "tts", client=client, ledger=ledger_path, poll_interval=0.1, download_dir=tmp_path / "d",
                  download_max_bytes=100)
    assert set(r.results["outcome"]) == {"completed"}
    assert r.results["note"].str.contains("100-byte limit").all()
    assert not list((tmp_path / "d").iterdir())  # no partial files left behind
    sandbox.configure(result_ttl_seconds=0.0)
    r2 = run_batch(_tts(3), "tts", client=client, ledger=tmp_path / "l2.sqlite", poll_interval=0.1,
                   download_dir=tmp_path / "e")
    assert r2.results["note"].str.contains("the result is gone").all()


def test_fsspec_target(sandbox, client, ledger_path):
    fsspec = pytest.importorskip("fsspec")
    r = run_batch(_tts(2), "tts", client=client, ledger=ledger_path, poll_interval=0.1,
                  download_dir="memory://akool-test/out")
    fs = fsspec.filesystem("memory")
    for path, digest in zip(r.results["artifact_paths"], r.results["artifact_sha256"]):
        assert path.startswith("memory://akool-test/out/")
        assert hashlib.sha256(fs.cat(path)).hexdigest() == digest


def test_only_http_urls_and_safe_names(tmp_path):
    async def go():
        d = ArtifactDownloader(tmp_path, media="image")
        try:
            a = await d.download("x", "file:///etc/passwd")
            b = await d.download("y", "javascript:alert(1)")
        finally:
            await d.aclose()
        return a, b

    a, b = asyncio.run(go())
    assert a.error and b.error and a.path is None
    assert list(tmp_path.iterdir()) == []
