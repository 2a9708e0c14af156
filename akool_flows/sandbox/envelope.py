"""JSON in and out: Akool's success envelope, compact JSON responses, request bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from akool_flows.sandbox.errors import param_error

__all__ = ["JSON_HEADERS", "json_body", "json_response", "ok"]

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


def json_response(obj: Any, status: int = 200) -> web.Response:
    body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(body=body, status=status, headers=JSON_HEADERS)


def ok(data: Any = None, msg: str = "OK") -> dict[str, Any]:
    """Akool's success envelope."""
    envelope: dict[str, Any] = {"code": 1000, "msg": msg}
    if data is not None:
        envelope["data"] = data
    return envelope


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object ({} for an empty body); 1003 for anything else."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise param_error("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise param_error("the request body must be a JSON object")
    return body
