"""What the akool plugin adds to the Airflow API server besides the receiver.

* `AkoolRootMiddleware` (a ``fastapi_root_middlewares`` entry):

  - **The connection list's Test button.** The 3.3 UI posts the row it shows, and turns the
    stored ``port: null`` into ``port: 0`` (``Number(null)``). The API then sees a port that
    "differs from the stored connection" and answers 400 before our hook runs. An ``akool``
    connection has no port (the form hides it), so the middleware drops ``port`` from an
    ``akool`` test request; every other connection type is passed through untouched.
  - **The webhook path token in the access log.** Airflow's access log middleware sits
    outside every plugin middleware and logs ``scope["path"]`` after the response. The
    receiver gets the real path; the access log sees ``/akool/webhook/***``.

* `install_access_log_filter`: the same redaction for record-based access logs
  (``uvicorn.access``, ``gunicorn.access``, Airflow's ``http.access``), for deployments that
  run the API server with those loggers enabled.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

__all__ = ["AkoolRootMiddleware", "install_access_log_filter", "redact_webhook_path"]

#: The receiver's route under the plugin's prefix; anything after it is the path token (and the
#: signed intent key), which are secrets.
_WEBHOOK_PATH = re.compile(r"(/akool/webhook/)[^\s?\"']+")
_TEST_PATH = "/api/v2/connections/test"
_MAX_TEST_BODY = 256 * 1024
ACCESS_LOGGERS = ("uvicorn.access", "gunicorn.access", "http.access")


def redact_webhook_path(text: str) -> str:
    """``/akool/webhook/<token>[/<intent>]`` -> ``/akool/webhook/***`` anywhere in `text`."""
    return _WEBHOOK_PATH.sub(r"\1***", text)


class _AccessLogRedactor(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and "/akool/webhook/" in record.msg:
            record.msg = redact_webhook_path(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_webhook_path(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_webhook_path(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


_REDACTOR = _AccessLogRedactor()


def install_access_log_filter() -> None:
    """Add the redacting filter to the access loggers (idempotent)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


class AkoolRootMiddleware:
    """ASGI middleware on the API server's root app (see the module docstring)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        # Built when the API server builds its app: after Airflow configured logging, in the
        # one process whose access log sees the callback URLs.
        install_access_log_filter()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if "/akool/webhook/" in path:
            # The receiver gets its own copy with the real path; the shared scope, which the
            # outer access log middleware reads once the response is sent, gets the redacted one.
            inner = dict(scope)
            try:
                await self.app(inner, receive, send)
            finally:
                scope["path"] = redact_webhook_path(path)
                if isinstance(scope.get("raw_path"), bytes):
                    scope["raw_path"] = scope["path"].encode("latin-1", "replace")
            return
        if scope.get("method") == "POST" and path.rstrip("/").endswith(_TEST_PATH):
            receive = await _drop_akool_port(scope, receive)
        await self.app(scope, receive, send)


async def _drop_akool_port(scope: dict[str, Any], receive: Any) -> Any:
    """Read the test request's body; for an ``akool`` connection drop ``port``; replay it."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            return _replay(b"".join(chunks), receive, first=message)
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > _MAX_TEST_BODY or not message.get("more_body"):
            break
    body = b"".join(chunks)
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict) and data.get("conn_type") == "akool" and "port" in data:
        del data["port"]
        body = json.dumps(data).encode()
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope["headers"].append((b"content-length", str(len(body)).encode()))
    return _replay(body, receive)


def _replay(body: bytes, original: Any, *, first: dict[str, Any] | None = None) -> Any:
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return first or {"type": "http.request", "body": body, "more_body": False}
        return await original()  # later reads (disconnect checks) go to the server

    return receive
