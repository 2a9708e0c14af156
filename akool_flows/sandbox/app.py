"""The sandbox HTTP application (aiohttp.web): every documented endpoint plus ``/_sandbox`` admin.

Each API route goes through one wrapper that counts the request, applies the fixed
latency and any injected fault, authenticates, rate-limits and turns :class:`ApiError`
into Akool's envelope (HTTP 200 with a business ``code``). It is a closure rather than
aiohttp middleware because this is the hot path of every benchmark.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from akool_flows.sandbox import catalog
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.config import RUNTIME_FIELDS, SandboxConfig
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.faults import FaultRule
from akool_flows.sandbox.files import content_type, file_bytes
from akool_flows.sandbox.jobs import COMPLETED
from akool_flows.sandbox.kinds import KINDS, KindSpec
from akool_flows.sandbox.state import FAIL_MARKER, SandboxState
from akool_flows.sandbox.webhooks import WebhookDispatcher

__all__ = ["DISPATCHER_KEY", "STATE_KEY", "create_app"]

STATE_KEY: web.AppKey[SandboxState] = web.AppKey("akool_sandbox_state", SandboxState)
DISPATCHER_KEY: web.AppKey[WebhookDispatcher] = web.AppKey("akool_sandbox_webhooks", WebhookDispatcher)

V3 = "/api/open/v3"
V4 = "/api/open/v4"
FILES_PREFIX = "/_sandbox/files/"

Handler = Callable[[web.Request], Awaitable[Any]]

_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
_HTML_500 = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_MALFORMED = b'{"code":1000,"msg":"OK","data":{"_id":"'


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _json(obj: Any, status: int = 200) -> web.Response:
    return web.Response(body=_dumps(obj), status=status, headers=_JSON_HEADERS)


def ok(data: Any = None, msg: str = "OK") -> dict[str, Any]:
    """Akool's success envelope."""
    envelope: dict[str, Any] = {"code": 1000, "msg": msg}
    if data is not None:
        envelope["data"] = data
    return envelope


async def _json_body(request: web.Request) -> dict[str, Any]:
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


def _drop(request: web.Request) -> web.Response:
    """Close the connection without an answer (the client sees a disconnect / reset)."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=204)  # never reaches the client


def create_app(config: SandboxConfig | None = None, *, state: SandboxState | None = None) -> web.Application:
    """Build the sandbox application.

    Pass a ``state`` to share it with the caller (as :class:`~akool_flows.sandbox.Sandbox`
    does); otherwise a fresh one is made from ``config``. Usable directly with
    ``aiohttp.test_utils.TestServer`` or ``web.run_app``.
    """
    if state is None:
        state = SandboxState(config or SandboxConfig())
    app = web.Application(client_max_size=64 * 1024**2)
    dispatcher = WebhookDispatcher(state)
    app[STATE_KEY] = state
    app[DISPATCHER_KEY] = dispatcher

    async def on_startup(_: web.Application) -> None:
        await dispatcher.start()

    async def on_cleanup(_: web.Application) -> None:
        await dispatcher.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    _add_api_routes(app, state, dispatcher)
    _add_admin_routes(app, state, dispatcher)
    return app


# ---------------------------------------------------------------------------------------
# the request wrapper
# ---------------------------------------------------------------------------------------
def _endpoint(state: SandboxState, handler: Handler, *, auth: bool = True, poll: bool = False,
              detect: bool = False) -> Handler:
    """Wrap ``handler`` with counting, latency, faults, auth, rate limiting and the envelope."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        path = request.path
        state.count_request(path, poll=poll)
        if request.body_exists:
            # Receive the whole request before any delay: a slow server has the request (a
            # create will happen) even if the client gives up waiting for the answer.
            try:
                await request.read()
            except (ConnectionError, asyncio.IncompleteReadError):
                return web.Response(status=400)  # the client left mid-body; nobody reads this
        latency = state.config.latency
        if latency:
            await asyncio.sleep(latency)
        rule: FaultRule | None = state.faults.pick(path) if state.faults else None
        if rule is not None:
            kind = rule.kind
            if kind == "delay":
                await asyncio.sleep(rule.seconds)
            elif kind == "drop":
                return _drop(request)
            elif kind == "http_500":
                return web.Response(body=_HTML_500, status=500, content_type="text/html")
            elif kind == "malformed_json":
                return web.Response(body=_MALFORMED, headers=_JSON_HEADERS)
            elif kind == "rate_limit":
                state.count_rejected(1005)
                return _json(_error_envelope(ApiError(1005), detect))
        try:
            if auth:
                credential = state.authenticate(request.headers)
                if not state.allow(credential):
                    raise ApiError(1005, "Operation is too frequent: rate limit exceeded for this credential")
            result = await handler(request)
        except ApiError as exc:
            state.count_rejected(exc.code)
            result = _error_envelope(exc, detect)
        if rule is not None and rule.kind == "drop_after":
            return _drop(request)
        if isinstance(result, web.StreamResponse):
            return result
        return _json(result)

    return wrapped


def _error_envelope(exc: ApiError, detect: bool) -> dict[str, Any]:
    if detect:  # the face-detect host speaks error_code / error_msg, not code / msg
        return {"error_code": exc.code, "error_msg": exc.msg}
    return {"code": exc.code, "msg": exc.msg}


# ---------------------------------------------------------------------------------------
# API routes
# ---------------------------------------------------------------------------------------
def _add_api_routes(app: web.Application, state: SandboxState, dispatcher: WebhookDispatcher) -> None:
    r = app.router

    def api(method: str, path: str, handler: Handler, **kw: bool) -> None:
        r.add_route(method, path, _endpoint(state, handler, **kw))

    def files_base(request: web.Request) -> str:
        return f"{request.scheme}://{request.host}{FILES_PREFIX}"

    # -- auth -------------------------------------------------------------------------------
    async def get_token(request: web.Request) -> dict[str, Any]:
        body = await _json_body(request)
        token = state.issue_token(body.get("clientId"), body.get("clientSecret"))
        return {"code": 1000, "token": token}  # the docs' shape: no msg, no data

    api("POST", f"{V3}/getToken", get_token, auth=False)

    # -- every create endpoint --------------------------------------------------------------
    def create(spec: KindSpec) -> Handler:
        async def handler(request: web.Request) -> dict[str, Any]:
            body = await _json_body(request)
            hook = body.get("webhookUrl")
            if hook not in (None, ""):
                if not isinstance(hook, str):
                    raise param_error("webhookUrl must be a string URL")
                v.check_url("webhookUrl", hook)
            job = state.create_job(spec, body, files_base(request))
            dispatcher.schedule(job)
            return ok(spec.create_data(job), spec.create_msg)

        return handler

    for spec in KINDS.values():
        api("POST", spec.path, create(spec))

    # -- status endpoints -------------------------------------------------------------------
    def status(group: str, param: str) -> Handler:
        async def handler(request: web.Request) -> dict[str, Any]:
            job_id = request.query.get(param)
            if not job_id:
                raise param_error(f"{param} is required")
            return ok(state.find_job(group, job_id).payload())

        return handler

    api("GET", f"{V3}/audio/infobymodelid", status("audio", "audio_model_id"), poll=True)
    api("GET", f"{V3}/content/image/infobymodelid", status("image", "image_model_id"), poll=True)
    api("GET", f"{V3}/content/analysis/infobyid", status("analysis", "_id"), poll=True)
    api("GET", f"{V3}/content/video/infobymodelid", status("video", "video_model_id"), poll=True)
    api("GET", f"{V3}/avatar/detail", avatar_detail(state), poll=True)
    api("GET", f"{V4}/liveAvatar/session/detail", status("session", "id"), poll=True)

    async def faceswap_list(request: web.Request) -> dict[str, Any]:
        ids = _split_ids(request.query.get("_ids"), "_ids")
        now = time.monotonic()
        result = []
        for job_id in ids:
            job = state.jobs.get(job_id)
            if job is not None and job.spec.group == "faceswap" and not job.deleted:
                result.append(job.payload(now))
        return ok({"result": result})

    api("GET", f"{V3}/faceswap/result/listbyids", faceswap_list, poll=True)

    # -- faceswap account and housekeeping ---------------------------------------------------
    async def quota_info(request: web.Request) -> dict[str, Any]:
        return ok({"credit": state.balance})

    async def delete_results(request: web.Request) -> dict[str, Any]:
        body = await _json_body(request)
        ids = _split_ids(body.get("_ids"), "_ids")
        with state.lock:
            for job_id in ids:
                job = state.jobs.get(job_id)
                if job is not None and job.spec.group == "faceswap":
                    job.deleted = True
        return ok()

    async def cancel_jobs(request: web.Request) -> dict[str, Any]:
        body = await _json_body(request)
        task_ids = _split_ids(body.get("job_ids"), "job_ids")
        known = [t for t in task_ids if t in state.task_ids]
        if not known:
            raise ApiError(1008, f"The content you get does not exist: no faceswap job_id in {task_ids!r}")
        for job in state.cancel_tasks(known):
            dispatcher.schedule(job)
        return ok()

    api("GET", f"{V3}/faceswap/quota/info", quota_info)
    api("POST", f"{V3}/faceswap/result/delbyids", delete_results)
    api("POST", f"{V3}/faceswap/job/del", cancel_jobs)

    # -- face detect (another host in production: https://sg3.akool.com/detect) --------------
    api("POST", "/detect", detect_handler, detect=True)

    # -- catalogues -------------------------------------------------------------------------
    async def voice_list(request: web.Request) -> dict[str, Any]:
        source = _query_choice(request, "from", (3, 4))
        voices: list[dict[str, Any]] = []
        if source in (None, 3):
            voices.extend(catalog.VOICES)
        if source in (None, 4):
            for voice_id, voice in list(state.user_voices.items()):
                job = voice["job"]
                if job.status() == COMPLETED:
                    voices.append({"_id": voice["_id"], "create_time": job.created_ms, "uid": 101690, "from": 4,
                                   "voice_id": voice_id, "name": voice_id, "type": 1,
                                   "preview": job.result_url, "__v": 0})
        return ok(voices)

    async def language_list(request: web.Request) -> dict[str, Any]:
        return ok({"lang_list": list(catalog.LANGUAGES)})

    async def avatar_list(request: web.Request) -> dict[str, Any]:
        source = _query_choice(request, "from", (2, 3))
        kind = _query_choice(request, "type", (1, 2))
        page = v.query_int(request.query, "page", default=1, minimum=1)
        size = v.query_int(request.query, "size", default=100, minimum=1, maximum=1000)
        assert page is not None and size is not None
        items: list[dict[str, Any]] = [dict(a) for a in catalog.TALKING_AVATARS]
        items += [{**a, "status": 3} for a in catalog.LIVE_AVATARS]
        items += [job.payload() for job in list(state.avatars.values())]
        items = [a for a in items if (source is None or a["from"] == source) and (kind is None or a["type"] == kind)]
        return ok(items[(page - 1) * size: page * size])

    async def live_avatar_list(request: web.Request) -> dict[str, Any]:
        page = v.query_int(request.query, "page", default=1, minimum=1)
        size = v.query_int(request.query, "size", default=100, minimum=1, maximum=100)
        assert page is not None and size is not None
        items: list[dict[str, Any]] = [dict(a) for a in catalog.LIVE_AVATARS]
        for job in list(state.avatars.values()):
            if job.extra.get("avatar_type") == 2:
                p = job.payload()
                items.append({k: p[k] for k in ("_id", "uid", "type", "from", "avatar_id", "name", "url",
                                                "thumbnailUrl", "gender")}
                             | {"voice_id": "", "available": p["status"] == COMPLETED})
        return ok({"count": len(items), "result": items[(page - 1) * size: page * size]})

    api("GET", f"{V3}/voice/list", voice_list)
    api("GET", f"{V3}/language/list", language_list)
    api("GET", f"{V3}/avatar/list", avatar_list)
    api("GET", f"{V4}/liveAvatar/avatar/list", live_avatar_list)

    # -- live sessions ----------------------------------------------------------------------
    async def session_close(request: web.Request) -> dict[str, Any]:
        body = await _json_body(request)
        session_id = v.string(body, "id")
        assert session_id is not None
        with state.lock:
            job = state.find_job("session", session_id)
            if job.status() >= COMPLETED:
                raise ApiError(1219, f"liveAvatar closed: session {session_id} has already ended")
            job.end_now("close", None)
        dispatcher.schedule(job)
        return ok()

    async def session_list(request: web.Request) -> dict[str, Any]:
        page = v.query_int(request.query, "page", default=1, minimum=1)
        size = v.query_int(request.query, "size", default=100, minimum=1, maximum=1000)
        wanted = _query_choice(request, "status", (1, 2, 3, 4))
        assert page is not None and size is not None
        now = time.monotonic()
        with state.lock:
            sessions = [job for job in state.jobs.values() if job.spec.group == "session"]
        sessions.sort(key=lambda j: j.created, reverse=True)
        items = [job.payload(now) for job in sessions]
        if wanted is not None:
            items = [p for p in items if p["status"] == wanted]
        return ok({"count": len(items), "result": items[(page - 1) * size: page * size]})

    api("POST", f"{V4}/liveAvatar/session/close", session_close)
    api("GET", f"{V4}/liveAvatar/session/list", session_list)

    # -- result files (public, like CloudFront links: no auth) --------------------------------
    async def serve_file(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        ctype = content_type(name)
        job = state.jobs.get(name[:24])
        if ctype is None or job is None or job.deleted:
            return web.Response(status=404, text="Not Found")
        if job.status() != COMPLETED:
            return web.Response(status=404, text="Not Found: the result is not ready")
        ttl = state.config.result_ttl_seconds
        if ttl is not None and time.monotonic() - job.created > ttl:
            return web.Response(
                status=403,
                body=b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code>'
                     b"<Message>Request has expired</Message></Error>",
                content_type="application/xml",
            )
        data = file_bytes(name)
        return web.Response(body=data, headers={"Content-Type": ctype, "ETag": f'"{hashlib.md5(data).hexdigest()}"'})

    r.add_get(FILES_PREFIX + "{name}", _endpoint(state, serve_file, auth=False))


def avatar_detail(state: SandboxState) -> Handler:
    async def handler(request: web.Request) -> dict[str, Any]:
        avatar_id = request.query.get("id")
        if not avatar_id:
            raise param_error("id is required")
        for official in catalog.TALKING_AVATARS:
            if official["_id"] == avatar_id:
                return ok([dict(official)])
        return ok([state.find_job("avatar", avatar_id).payload()])

    return handler


async def detect_handler(request: web.Request) -> dict[str, Any]:
    """Face detect: deterministic landmarks from the image reference (URL or base64)."""
    started = time.perf_counter()
    body = await _json_body(request)
    image_url = v.string(body, "image_url", required=False)
    img = v.string(body, "img", required=False)
    single_face = body.get("single_face", False)
    if not isinstance(single_face, bool):
        raise param_error(f"single_face must be true or false, got {single_face!r}")
    if not image_url and not img:
        raise param_error("image_url or img is required (a link or a base64 image)")
    if image_url:
        v.check_url("image_url", image_url)
    source = image_url or img or ""
    if FAIL_MARKER in source:
        raise ApiError(1108, "image processing error: the image could not be decoded")
    digest = hashlib.sha256(source.encode()).digest()
    faces = 0 if "sandbox-noface" in source else (1 if single_face else 1 + digest[0] % 3)
    landmarks, strings, regions = [], [], []
    for i in range(faces):
        x0 = 100 + 400 * i + digest[1 + i] % 80
        y0 = 150 + digest[4 + i] % 80
        points = [[x0 + 40, y0 + 60], [x0 + 150, y0 + 60], [x0 + 95, y0 + 120], [x0 + 60, y0 + 170]]
        landmarks.append([*points, [0, 0], [0, 0]])
        strings.append(":".join(f"{x},{y}" for x, y in points))
        regions.append([x0, y0, x0 + 190, y0 + 240])
    return {
        "error_code": 0,
        "error_msg": "SUCCESS",
        "landmarks": landmarks,
        "landmarks_str": strings,
        "region": regions,
        "seconds": round(time.perf_counter() - started, 6),
        "trx_id": str(uuid.uuid4()),
    }


def _split_ids(raw: Any, name: str) -> list[str]:
    if isinstance(raw, list) and all(isinstance(x, str) for x in raw):
        parts = raw
    elif isinstance(raw, str):
        parts = raw.split(",")
    elif raw is None:
        parts = []
    else:
        raise param_error(f"{name} must be a comma-separated string of ids")
    ids = [p.strip() for p in parts if p.strip()]
    if not ids:
        raise param_error(f"{name} is required (ids separated by commas)")
    return ids


def _query_choice(request: web.Request, name: str, allowed: tuple[int, ...]) -> int | None:
    value = v.query_int(request.query, name)
    if value is not None and value not in allowed:
        raise param_error(f"{name} must be one of {', '.join(map(str, allowed))}; got {value}")
    return value


# ---------------------------------------------------------------------------------------
# admin routes (no Akool auth; the server only listens on localhost by default)
# ---------------------------------------------------------------------------------------
def _add_admin_routes(app: web.Application, state: SandboxState, dispatcher: WebhookDispatcher) -> None:
    r = app.router

    def bad(message: str) -> web.Response:
        return _json({"error": message}, status=400)

    async def admin_body(request: web.Request) -> Any:
        raw = await request.read()
        return json.loads(raw) if raw.strip() else {}

    async def health(request: web.Request) -> web.Response:
        return _json({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return _json(state.stats())

    async def faults_get(request: web.Request) -> web.Response:
        return _json({"rules": state.faults.rules(), "injected": dict(state.faults.injected)})

    async def faults_post(request: web.Request) -> web.Response:
        try:
            body = await admin_body(request)
            cleared = isinstance(body, dict) and bool(body.get("clear"))
            if isinstance(body, dict):
                specs = body.get("rules", []) if ("rules" in body or "clear" in body) else [body]
            else:
                specs = body
            well_formed = isinstance(specs, list) and all(isinstance(s, dict) for s in specs)
            if not well_formed or (not specs and not cleared):
                return bad('expected a rule like {"kind": "http_500", "next": 3, "path_prefix": "/api/open"}, '
                           'a list of rules, or {"clear": true, "rules": [...]}')
            if cleared:
                state.faults.clear()
            for spec in specs:
                state.faults.add_from_dict(spec)
        except (ValueError, TypeError) as exc:
            return bad(str(exc))
        return _json({"rules": state.faults.rules()})

    async def faults_delete(request: web.Request) -> web.Response:
        state.faults.clear()
        return _json({"rules": []})

    async def config_get(request: web.Request) -> web.Response:
        return _json(state.config.public_dict() | {"credits_balance": state.balance})

    async def config_post(request: web.Request) -> web.Response:
        try:
            body = await admin_body(request)
            if not isinstance(body, dict):
                return bad("expected a JSON object of configuration fields")
            apply_config(state, body)
        except (ValueError, TypeError) as exc:
            return bad(str(exc))
        return _json(state.config.public_dict() | {"credits_balance": state.balance})

    async def credits_post(request: web.Request) -> web.Response:
        try:
            body = await admin_body(request)
            credits = body.get("credits") if isinstance(body, dict) else None
            set_balance(state, credits)
        except (ValueError, TypeError) as exc:
            return bad(str(exc))
        return _json({"credits": state.balance})

    async def reset(request: web.Request) -> web.Response:
        dispatcher.cancel_all()
        state.reset()
        return _json({"ok": True})

    async def jobs(request: web.Request) -> web.Response:
        kind = request.query.get("kind")
        now = time.monotonic()
        with state.lock:
            items = [job.summary(now) for job in state.jobs.values() if kind is None or job.kind == kind]
        return _json({"count": len(items), "jobs": items})

    async def webhooks(request: web.Request) -> web.Response:
        with state.lock:
            return _json({"deliveries": list(state.webhook_log)})

    r.add_get("/_sandbox/health", health)
    r.add_get("/_sandbox/stats", stats)
    r.add_get("/_sandbox/faults", faults_get)
    r.add_post("/_sandbox/faults", faults_post)
    r.add_delete("/_sandbox/faults", faults_delete)
    r.add_get("/_sandbox/config", config_get)
    r.add_post("/_sandbox/config", config_post)
    r.add_post("/_sandbox/credits", credits_post)
    r.add_post("/_sandbox/reset", reset)
    r.add_get("/_sandbox/jobs", jobs)
    r.add_get("/_sandbox/webhooks", webhooks)


def apply_config(state: SandboxState, changes: dict[str, Any]) -> None:
    """Apply runtime configuration ``changes``; ``credits`` also sets the current balance."""
    fixed = set(changes) - RUNTIME_FIELDS
    if fixed:
        raise ValueError(
            f"cannot change {sorted(fixed)} while running; runtime fields: {', '.join(sorted(RUNTIME_FIELDS))}"
        )
    new = state.config.replace(**changes)  # validates
    with state.lock:
        state.config = new
        if "credits" in changes:
            state.balance = float(new.credits)


def set_balance(state: SandboxState, credits: Any) -> None:
    """Set the current account balance (``ValueError`` unless a number >= 0)."""
    if isinstance(credits, bool) or not isinstance(credits, (int, float)) or credits < 0:
        raise ValueError(f"credits must be a number >= 0, got {credits!r}")
    with state.lock:
        state.balance = float(credits)
