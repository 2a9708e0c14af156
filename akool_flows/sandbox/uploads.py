"""Staged input files: the sandbox stands in for the bucket a batch stages local files to.

``PUT /_sandbox/uploads/<name>`` stores the request body; ``POST /_sandbox/uploads/<name>``
signs the stored file again (404 when it is not there). Both answer ``{"url", "expires_at",
"size", "sha256"}``: ``url`` is ``GET /_sandbox/uploads/<name>?expires=...&signature=...``,
which serves the bytes until ``expires`` (403 after, or with a wrong signature), like a
presigned S3 URL. ``expires_in`` (seconds, query) sets the lifetime, 24 h by default. ``GET /_sandbox/uploads``
lists the files, how often each was fetched and how many uploads there were.

Files live in memory (a sandbox is for demos and tests), at most `MAX_TOTAL_BYTES` in all.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import Any
from urllib.parse import quote

from aiohttp import web

from akool_flows.sandbox.envelope import json_response
from akool_flows.sandbox.files import content_type

__all__ = ["MAX_TOTAL_BYTES", "UPLOADS_PREFIX", "Uploads", "add_upload_routes"]

UPLOADS_PREFIX = "/_sandbox/uploads/"
MAX_TOTAL_BYTES = 512 * 1024**2
_DEFAULT_EXPIRY = 24 * 3600


class Uploads:
    """The files staged to one sandbox, and the key its signed URLs are made with."""

    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.puts = 0
        self.gets: dict[str, int] = {}

    def clear(self) -> None:
        with self._lock:
            self.files.clear()
            self.gets.clear()
            self.puts = 0

    def signature(self, name: str, expires: int) -> str:
        return hmac.new(self._key, f"{name}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def signed(self, request: web.Request, name: str, data: bytes) -> dict[str, Any]:
        try:
            seconds = int(request.query.get("expires_in", _DEFAULT_EXPIRY))
        except ValueError:
            raise web.HTTPBadRequest(text="expires_in must be a whole number of seconds") from None
        if seconds < 1:
            raise web.HTTPBadRequest(text="expires_in must be >= 1")
        expires = int(time.time()) + seconds
        url = (f"{request.scheme}://{request.host}{UPLOADS_PREFIX}{quote(name)}"
               f"?expires={expires}&signature={self.signature(name, expires)}")
        return {"url": url, "expires_at": expires, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def add_upload_routes(app: web.Application, uploads: Uploads) -> None:
    route = UPLOADS_PREFIX + "{name:.+}"

    async def put(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        data = await request.read()
        with uploads._lock:
            total = sum(len(v) for n, v in uploads.files.items() if n != name) + len(data)
            if total > MAX_TOTAL_BYTES:
                return json_response({"error": f"the sandbox holds at most {MAX_TOTAL_BYTES} bytes of uploads"},
                                     status=413)
            uploads.files[name] = data
            uploads.puts += 1
        return json_response(uploads.signed(request, name, data), status=201)

    async def sign(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        data = uploads.files.get(name)
        if data is None:
            return json_response({"error": f"no uploaded file {name!r}"}, status=404)
        return json_response(uploads.signed(request, name, data))

    async def get(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        expires, given = request.query.get("expires", ""), request.query.get("signature", "")
        if not expires.isdigit() or not hmac.compare_digest(given, uploads.signature(name, int(expires))):
            return _denied("Invalid signature")
        if int(expires) < time.time():
            return _denied("Request has expired")
        data = uploads.files.get(name)
        if data is None:
            return web.Response(status=404, text="Not Found")
        with uploads._lock:
            uploads.gets[name] = uploads.gets.get(name, 0) + 1
        ctype = content_type(name) or "application/octet-stream"
        return web.Response(body=data, headers={"Content-Type": ctype})

    async def listing(request: web.Request) -> web.Response:
        with uploads._lock:
            files = [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(), "gets": uploads.gets.get(n, 0)}
                     for n, d in uploads.files.items()]
            return json_response({"puts": uploads.puts, "files": files})

    app.router.add_get(UPLOADS_PREFIX.rstrip("/"), listing)
    app.router.add_put(route, put)
    app.router.add_post(route, sign)
    app.router.add_get(route, get)


def _denied(message: str) -> web.Response:
    # What S3 answers for a presigned URL it will not honour.
    return web.Response(status=403, content_type="application/xml",
                        body=(f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                              f"<Message>{message}</Message></Error>").encode())
