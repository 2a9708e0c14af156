"""Test doubles for the API layer: a recording HTTP server on a real socket, an httpx mock
transport that records the same way, and one driver interface over the sync and async clients.

The scripted server is a deliberately tiny HTTP/1.1 server on raw asyncio streams, running in its
own thread and loop: it can misbehave in ways a framework would not let it (drop the connection
after reading a request, never answer, answer garbage), and the *sync* client can talk to it from
a test's event loop without deadlocking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from akool_flows.api import AkoolClient, AsyncAkoolClient, RetryPolicy

TOKEN = "tok-SECRET-3b9f0c"
API_KEY = "key-SECRET-77d1aa"
CLIENT_ID = "64db241f6d9e5c4bd136c187"
CLIENT_SECRET = "sec-SECRET-24chars-xxxxx"
SECRETS = (TOKEN, API_KEY, CLIENT_SECRET)

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002)


@dataclass
class Recorded:
    """One request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    host: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def flat_query(self) -> dict[str, str]:
        return {k: v[0] if len(v) == 1 else ",".join(v) for k, v in self.query.items()}


# An answer: ("json", http_status, payload[, headers]) | ("raw", http_status, bytes[, headers])
#   | ("drop",) | ("hang", seconds) | ("wire", bytes): the whole answer, verbatim, then close
Answer = tuple
Responder = Callable[[Recorded], Answer]


# --- a fake Akool: plausible documented answers for every endpoint ------------------------------

def akool_responder(req: Recorded) -> Answer:
    """Documented answer shapes for each endpoint (enough for the client to parse them)."""
    p = req.path
    ok = lambda data: ("json", 200, {"code": 1000, "msg": "OK", "data": data})  # noqa: E731
    body = req.json if req.body else {}
    q = req.flat_query
    if p == "/api/open/v3/getToken":
        return "json", 200, {"code": 1000, "token": TOKEN}
    if p == "/detect":
        return "json", 200, {"error_code": 0, "error_msg": "SUCCESS",
                             "landmarks": [[[238, 365], [386, 363], [318, 470], [267, 539], [0, 0], [0, 0]]],
                             "landmarks_str": ["238,365:386,363:318,470:267,539"],
                             "region": [[150, 195, 317, 429]]}
    if p == "/api/open/v3/faceswap/result/listbyids":
        return ok({"result": [{"_id": i, "faceswap_status": 3, "url": f"https://cdn.test/{i}.jpg",
                               "deduction_credit": 1} for i in q["_ids"].split(",")]})
    if p == "/api/open/v3/audio/infobymodelid":
        return ok({"_id": q["audio_model_id"], "status": 3, "url": "https://cdn.test/a.mp3"})
    if p == "/api/open/v3/content/image/infobymodelid":
        return ok({"_id": q["image_model_id"], "image_status": 3, "image": "https://cdn.test/i.png",
                   "deduction_credit": 2})
    if p == "/api/open/v3/content/video/infobymodelid":
        return ok({"_id": q["video_model_id"], "video_status": 3, "video": "https://cdn.test/v.mp4",
                   "video_duration": 7.9, "deduction_duration": 10})
    if p == "/api/open/v3/content/analysis/infobyid":
        return ok({"_id": q["_id"], "status": 3, "final_conclusion": "Compliant",
                   "result": "Result: Compliant", "deduction_credit": 0.1})
    if p == "/api/open/v3/avatar/detail":
        return ok([{"_id": q["id"], "status": 3, "avatar_id": "myavatar01", "url": "https://cdn.test/av.mp4"}])
    if p == "/api/open/v4/liveAvatar/session/detail":
        return ok({"_id": q["id"], "status": 3, "credentials": {"agora_uid": 1}})
    if p == "/api/open/v3/voice/list":
        return ok([{"voice_id": "v1", "preview": "https://cdn.test/v1.mp3"}])
    if p == "/api/open/v3/avatar/list":
        return ok([{"avatar_id": "a1", "url": "https://cdn.test/a1.mp4"}])
    if p == "/api/open/v4/liveAvatar/avatar/list":
        return ok({"count": 1, "result": [{"avatar_id": "dvp_Tristan_cloth2_1080P"}]})
    if p == "/api/open/v4/liveAvatar/session/list":
        return ok({"count": 1, "result": [{"_id": "s1", "status": 1}]})
    if p == "/api/open/v3/language/list":
        return ok({"lang_list": [{"lang_code": "en", "lang_name": "English", "url": "https://cdn.test/en.png"}]})
    if p == "/api/open/v3/faceswap/quota/info":
        return ok({"credit": 42.5})
    if p in ("/api/open/v3/faceswap/result/delbyids", "/api/open/v3/faceswap/job/del",
             "/api/open/v4/liveAvatar/session/close"):
        return "json", 200, {"code": 1000, "msg": "OK"}
    if p == "/api/open/v4/image2Video/resultsByIds":
        return ok({"result": [{"_id": i, "status": 3, "video_url": f"https://cdn.test/{i}.mp4",
                               "deduction_credit": 20, "video_duration": 5} for i in body["_ids"].split(",")]})
    if p == "/api/open/v4/image2Video/createBySourcePrompt/batch":
        return ok({"successList": [{"_id": f"68919a464b4dbdd4ab3d303{i}", "status": 1, "batch_count": 2}
                                   for i in range(2)], "errorList": []})
    if p == "/api/open/v4/image2Video/effects":
        return ok({"result": [{"_id": "e1", "name": "Squish", "effect_code": "squish"}]})
    if p == "/api/open/v4/aigModel/list":
        return ok([{"value": "AkoolImage2VideoFastV1", "type": 1501, "durationList": [5, 10]}])
    if p in ("/api/open/v4/voice/videoTranslation", "/api/open/v4/voice/list"):
        return ok({"result": [{"voice_id": "v-fr-1", "language_code": "fr"}]})
    if p == "/api/open/v4/knowledge/list":
        return ok({"knowledge_list": [{"_id": "kb1", "name": "FAQ"}]})
    if req.method == "POST":  # every create endpoint
        return ok({"_id": "65f8017f56559aa67f0ecde7", "job_id": "20240102082900592-5653", "status": 1,
                   "echo": body})
    return "json", 404, {"code": 1003, "msg": f"no such path {p}"}


# --- scripted server -------------------------------------------------------------------------

class ScriptedServer:
    """HTTP/1.1 on 127.0.0.1 in a background thread. Records every request; `responder` decides
    the answer. `script` (a list of answers) overrides the responder for the next requests."""

    def __init__(self, responder: Responder = akool_responder) -> None:
        self.responder = responder
        self.requests: list[Recorded] = []
        self.script: list[Answer] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._closing = threading.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ScriptedServer:
        self._thread.start()
        fut = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop)
        self._server = fut.result(5)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._closing.set()

        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def then(self, *answers: Answer) -> ScriptedServer:
        with self._lock:
            self.script.extend(answers)
        return self

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r.path == path)

    def _answer_for(self, req: Recorded) -> Answer:
        with self._lock:
            self.requests.append(req)
            if self.script:
                return self.script.pop(0)
        return self.responder(req)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, target, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                parts = urlsplit(target)
                req = Recorded(method, parts.path, parse_qs(parts.query, keep_blank_values=True), headers, body,
                               headers.get("host", ""))
                answer = self._answer_for(req)
                if answer[0] == "drop":
                    return
                if answer[0] == "hang":
                    await asyncio.sleep(answer[1])
                    return
                if answer[0] == "wire":
                    writer.write(answer[1])
                    await writer.drain()
                    return
                status = answer[1]
                payload = answer[2] if answer[0] == "raw" else json.dumps(answer[2]).encode()
                extra = "".join(f"{k}: {v}\r\n" for k, v in (answer[3] if len(answer) > 3 else {}).items())
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}"
                             f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
                await writer.drain()
        except asyncio.CancelledError:
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()


@contextlib.contextmanager
def scripted_server(responder: Responder = akool_responder) -> Iterator[ScriptedServer]:
    server = ScriptedServer(responder).start()
    try:
        yield server
    finally:
        server.stop()


def refused_url() -> str:
    """A 127.0.0.1 URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- mock transport recording the same way -----------------------------------------------------

@dataclass
class MockAkool:
    """An `httpx.MockTransport` handler answering like `ScriptedServer` (no socket)."""

    responder: Responder = akool_responder
    requests: list[Recorded] = field(default_factory=list)
    script: list[Answer] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        req = Recorded(request.method, request.url.path, parse_qs(request.url.query.decode(), keep_blank_values=True),
                       {k.lower(): v for k, v in request.headers.items()}, request.read(), request.url.host)
        self.requests.append(req)
        answer = self.script.pop(0) if self.script else self.responder(req)
        if answer[0] == "drop":
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.", request=request)
        if answer[0] == "hang":
            raise httpx.ReadTimeout("timed out", request=request)
        headers = answer[3] if len(answer) > 3 else None
        if answer[0] == "raw":
            return httpx.Response(answer[1], content=answer[2], headers=headers)
        return httpx.Response(answer[1], json=answer[2], headers=headers)

    def then(self, *answers: Answer) -> MockAkool:
        self.script.extend(answers)
        return self

    def count(self, path: str | None = None) -> int:
        return sum(1 for r in self.requests if path is None or r.path == path)


# --- one interface over the three ways to send -------------------------------------------------

DRIVERS = ("sync-httpx", "async-httpx", "async-aiohttp")


class Driver:
    """Calls a client operation the same way whether the client is sync or async."""

    def __init__(self, name: str, client: AkoolClient | AsyncAkoolClient) -> None:
        self.name = name
        self.client = client
        self.is_async = isinstance(client, AsyncAkoolClient)

    async def __call__(self, op: str, *args: Any, **kwargs: Any) -> Any:
        result = getattr(self.client, op)(*args, **kwargs)
        return await result if self.is_async else result

    async def close(self) -> None:
        if self.is_async:
            await self.client.aclose()
        else:
            self.client.close()


def make_client(driver: str, base_url: str, *, detect_url: str | None = None, **kwargs: Any) -> Driver:
    """A client of the given driver kind over real sockets (httpx's own transports or aiohttp)."""
    kwargs.setdefault("retry", FAST_RETRY)
    if not {"token", "api_key", "client_id"} & kwargs.keys():
        kwargs["token"] = TOKEN
    detect_url = detect_url or f"{base_url}/detect"
    if driver == "sync-httpx":
        return Driver(driver, AkoolClient(base_url=base_url, detect_url=detect_url, **kwargs))
    if driver == "async-httpx":
        return Driver(driver, AsyncAkoolClient(base_url=base_url, detect_url=detect_url,
                                               transport=httpx.AsyncHTTPTransport(), **kwargs))
    if driver == "async-aiohttp":
        return Driver(driver, AsyncAkoolClient(base_url=base_url, detect_url=detect_url, **kwargs))
    raise ValueError(driver)


def make_mock_client(driver: str, mock: MockAkool, *, base_url: str = "https://openapi.akool.test",
                     detect_url: str = "https://sg3.akool.test/detect", **kwargs: Any) -> Driver:
    kwargs.setdefault("retry", FAST_RETRY)
    if not {"token", "api_key", "client_id"} & kwargs.keys():
        kwargs["token"] = TOKEN
    transport = httpx.MockTransport(mock)
    if driver == "sync-httpx":
        return Driver(driver, AkoolClient(base_url=base_url, detect_url=detect_url, transport=transport, **kwargs))
    if driver == "async-httpx":
        return Driver(driver, AsyncAkoolClient(base_url=base_url, detect_url=detect_url, transport=transport,
                                               **kwargs))
    raise ValueError(f"{driver} cannot use a mock transport")
