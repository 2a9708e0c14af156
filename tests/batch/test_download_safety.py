"""Result downloads against servers that misbehave on purpose: redirects to other hosts, a body
that trickles forever, hostile file names. Nothing may leave the host unasked, hang, or be saved
under an extension taken from the URL."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager

import aiohttp
import pandas as pd
import pytest
from aiohttp import web

from akool_flows.batch.artifacts import ArtifactDownloader, DownloadError, extension_for
from akool_flows.cli import main
from akool_flows.sandbox import Sandbox, SandboxConfig
from akool_flows.sandbox.files import file_bytes

PNG = b"\x89PNG\r\n\x1a\n" + b"x" * 100


async def _trickle(request: web.Request, content_type: str = "video/mp4") -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": content_type})
    await resp.prepare(request)
    end = time.monotonic() + 30
    while time.monotonic() < end:
        await resp.write(b"x")  # raises once the client has gone
        await asyncio.sleep(0.2)
    return resp


@asynccontextmanager
async def serve(routes: dict[str, object]):
    """An aiohttp server on 127.0.0.1; yields (base URL, Counter of paths requested)."""
    hits: Counter[str] = Counter()

    async def handle(request: web.Request) -> web.StreamResponse:
        hits[request.path] += 1
        answer = routes[request.path](request)  # a new response each time: one is sent only once
        return await answer if asyncio.iscoroutine(answer) else answer

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


def _redirect(to: str):
    return lambda request: web.Response(status=302, headers={"Location": to})


def _png(request: web.Request) -> web.Response:
    return web.Response(body=PNG, headers={"Content-Type": "image/png"})


def _body(data: bytes, content_type: str):
    return lambda request: web.Response(body=data, headers={"Content-Type": content_type})


async def test_redirects_stay_on_the_host_unless_allowed(tmp_path):
    async with serve({"/cdn/file.png": _png}) as (cdn, cdn_hits):
        port = cdn.rsplit(":", 1)[1]
        routes = {"/file.png": _png, "/same": _redirect("/file.png"),
                  "/other-port": _redirect(f"{cdn}/cdn/file.png?signature=SECRET-TOKEN"),
                  "/other-host": _redirect(f"http://localhost:{port}/cdn/file.png")}
        async with serve(routes) as (api, _):
            d = ArtifactDownloader(tmp_path / "d", media="image")
            try:
                same = await d.download("same", f"{api}/same")
                other_port = await d.download("port", f"{api}/other-port")
                other_host = await d.download("host", f"{api}/other-host")
            finally:
                await d.aclose()
            assert same.error is None and same.sha256 == hashlib.sha256(PNG).hexdigest()
            for art in (other_port, other_host):
                assert art.path is None and "redirect to another host or port" in art.error
                assert "--download-follow-redirects" in art.error
            assert "SECRET-TOKEN" not in other_port.error  # a signed CDN link is not copied into the results
            assert cdn_hits["/cdn/file.png"] == 0
            assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["same.png"]

            d = ArtifactDownloader(tmp_path / "e", media="image", allow_cross_host_redirects=True)
            try:
                followed = await d.download("cdn", f"{api}/other-port")
            finally:
                await d.aclose()
            assert followed.error is None and followed.bytes == len(PNG) and cdn_hits["/cdn/file.png"] == 1


def test_https_to_http_is_never_followed(tmp_path):
    d = ArtifactDownloader(tmp_path, allow_cross_host_redirects=True)
    with pytest.raises(DownloadError, match="https to plain http"):
        d._check_redirect("https://a.example/x", "https://a.example/x", "http://a.example/x")
    with pytest.raises(DownloadError, match="file URL refused"):
        d._check_redirect("https://a.example/x", "https://a.example/x", "file:///etc/passwd")
    asyncio.run(d.aclose())


async def test_a_trickling_body_is_cut_at_the_deadline(tmp_path):
    async with serve({"/slow.mp4": _trickle}) as (api, _):
        d = ArtifactDownloader(tmp_path, media="video", deadline=1.0)
        t0 = time.monotonic()
        try:
            art = await asyncio.wait_for(d.download("slow", f"{api}/slow.mp4"), 10)
        finally:
            await d.aclose()
        assert time.monotonic() - t0 < 3
        assert art.path is None and "1 s deadline" in art.error and "result URL is kept" in art.error
        assert list(tmp_path.iterdir()) == []  # no partial file left


async def test_cancelling_a_download_is_prompt(tmp_path):
    async with serve({"/slow.mp4": _trickle}) as (api, hits):
        stop = threading.Event()
        d = ArtifactDownloader(tmp_path, media="video", deadline=60, cancel=stop)
        try:
            task = asyncio.ensure_future(d.download("a", f"{api}/slow.mp4"))
            while not hits["/slow.mp4"]:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
            t0 = time.monotonic()
            stop.set()  # what the CLI's first Ctrl-C does
            art = await asyncio.wait_for(task, 5)
            assert time.monotonic() - t0 < 1 and "the run was stopped" in art.error
            stop.clear()
            task = asyncio.ensure_future(d.download("b", f"{api}/slow.mp4"))
            await asyncio.sleep(0.5)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert time.monotonic() - t0 < 1
        finally:
            await d.aclose()
        assert list(tmp_path.iterdir()) == []


async def test_extension_comes_from_the_content_type_never_the_url(tmp_path):
    routes = {"/evil.exe": _body(b"ID3 audio", "audio/mpeg"), "/evil.hta": _body(b"<script>", "application/hta"),
              "/x.png": _body(b"video", "video/mp4; codecs=avc1"), "/y.wav": _body(b"RIFF", "audio/wav"),
              "/z.jpeg.exe": _body(b"jpg", "image/jpeg")}
    async with serve(routes) as (api, _):
        d = ArtifactDownloader(tmp_path / "img", media="image")
        n = ArtifactDownloader(tmp_path / "none")
        try:
            got = [await d.download(f"r{i}", f"{api}{path}") for i, path in enumerate(routes)]
            unknown = await n.download("u", f"{api}/evil.hta")
        finally:
            await d.aclose()
            await n.aclose()
    assert [a.path.rsplit("/", 1)[-1] for a in got] == ["r0.mp3", "r1.png", "r2.mp4", "r3.wav", "r4.jpg"]
    assert unknown.path.endswith("/u.bin")
    assert extension_for("text/html", "audio") == ".mp3" and extension_for(None, "none") == ".bin"


# --- the same through the CLI, with a front server between it and a sandbox ---------------------------

class Front:
    """Stands in front of a sandbox as "the API": every call is passed on (with its own Host, so
    result URLs point here), result files misbehave as ``mode`` says."""

    def __init__(self, sandbox: Sandbox, mode: str) -> None:
        self.sb, self.mode = sandbox, mode
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_sandbox/files/"):
            name = request.path.rsplit("/", 1)[-1]
            if self.mode == "redirect":
                return _redirect(f"{self.sb.base_url}{request.path}")(request)  # another port: "the CDN"
            if self.mode == "trickle":
                return await _trickle(request, "audio/mpeg")
            if self.mode == "exe":
                return web.Response(body=file_bytes(name.replace(".exe", ".mp3")),
                                    headers={"Content-Type": "audio/mpeg"})
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() not in ("content-length", "transfer-encoding", "connection", "accept-encoding")}
        async with self.session.request(request.method, f"{self.sb.base_url}{request.path_qs}", headers=headers,
                                        data=await request.read(), allow_redirects=False) as r:
            body = await r.read()
            if self.mode == "exe":
                body = body.replace(b'.mp3"', b'.exe"')
            return web.Response(status=r.status, body=body,
                                headers={"Content-Type": r.headers.get("Content-Type", "application/json")})

    async def _start(self) -> str:
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, shutdown_timeout=0.1)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        return f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]

    async def _stop(self) -> None:
        await self.runner.cleanup()
        await self.session.close()

    def __enter__(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def front(monkeypatch, tmp_path) -> Iterator:
    monkeypatch.chdir(tmp_path)
    for name in ("AKOOL_API_TOKEN", "AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "lines.csv").write_text("line\nHello there\nGood morning\n")
    with Sandbox(SandboxConfig(queue_seconds=0.05, job_seconds=0.1)) as sb:
        def start(mode: str) -> str:
            stack.append(Front(sb, mode))
            base = stack[-1].__enter__()
            for name, value in sb.env().items():
                monkeypatch.setenv(name, value)
            monkeypatch.setenv("AKOOL_BASE_URL", base)
            return base

        stack: list[Front] = []
        yield start, sb
        for f in stack:
            f.__exit__()


TTS = ["batch", "tts", "lines.csv", "--map", "input_text=line", "--set", "voice_id=LcfcDJNUP1GQjkzn1xUU",
       "--quiet", "--show", "0", "--poll-interval", "0.1", "--download", "media"]


def _results(path="r.csv") -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def test_cli_refuses_cross_host_redirects_unless_told(front, tmp_path, capsys):
    start, sb = front
    base = start("redirect")
    assert main([*TTS, "--out", "r.csv", "--ledger", "l.sqlite"]) == 0
    res = _results()
    assert (res["outcome"] == "completed").all() and res["result_url"].str.startswith(base).all()
    assert res["artifact_sha256"].eq("").all()
    assert res["note"].str.contains("redirect to another host or port").all()
    assert not (tmp_path / "media").exists() or not list((tmp_path / "media").iterdir())
    files = sum(n for p, n in sb.stats()["requests_by_path"].items() if p.startswith("/_sandbox/files/"))
    assert files == 0  # the "CDN" was never asked
    # Opted in: the same command (same ledger: nothing is created again) downloads through the redirect.
    assert main([*TTS, "--out", "r.csv", "--ledger", "l.sqlite", "--download-follow-redirects"]) == 0
    res = _results()
    for path, url, digest in zip(res["artifact_paths"], res["result_url"], res["artifact_sha256"]):
        data = (tmp_path / path).read_bytes() if not path.startswith("/") else open(path, "rb").read()
        assert data == file_bytes(url.rsplit("/", 1)[-1]) and hashlib.sha256(data).hexdigest() == digest
    assert sb.create_count() == 2
    capsys.readouterr()


def test_cli_download_deadline_keeps_the_run_moving(front, tmp_path, capsys):
    start, _ = front
    start("trickle")
    t0 = time.monotonic()
    assert main([*TTS, "--out", "r.csv", "--ledger", "l.sqlite", "--download-deadline", "1"]) == 0
    assert time.monotonic() - t0 < 15
    res = _results()
    assert (res["outcome"] == "completed").all() and res["result_url"].str.startswith("http").all()
    assert res["note"].str.contains("1 s deadline").all()
    assert not list((tmp_path / "media").iterdir())
    capsys.readouterr()


def test_cli_names_files_by_content_type(front, tmp_path, capsys):
    start, _ = front
    start("exe")
    assert main([*TTS, "--out", "r.csv", "--ledger", "l.sqlite"]) == 0
    res = _results()
    assert res["result_url"].str.endswith(".exe").all()
    names = sorted(p.name for p in (tmp_path / "media").iterdir())
    assert len(names) == 2 and all(n.endswith(".mp3") for n in names), names
    capsys.readouterr()
