"""The sandbox HTTP application (aiohttp.web): every documented endpoint plus ``/_sandbox`` admin.

Job routes are generated from the client registry (``akool_flows.api.kinds``): one create
route per kind, one status route per distinct status path (batch status where the registry
says ``batch_poll``), one cancel route per distinct cancel path. What happens behind them is
the kind's behaviour (``akool_flows.sandbox.kinds``); the other endpoints are in ``routes``.

Each API route goes through one wrapper that counts the request, applies the fixed
latency and any injected fault, authenticates, rate-limits and turns :class:`ApiError`
into Akool's envelope (HTTP 200 with a business ``code``). It is a closure rather than
aiohttp middleware because this is the hot path of every benchmark.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from aiohttp import web

from akool_flows.sandbox import validation as v
from akool_flows.sandbox.admin import add_admin_routes
from akool_flows.sandbox.config import SandboxConfig
from akool_flows.sandbox.envelope import JSON_HEADERS, json_body, json_response, ok
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.faults import FaultRule
from akool_flows.sandbox.files import content_type, file_bytes
from akool_flows.sandbox.jobs import COMPLETED
from akool_flows.sandbox.jobs import Job
from akool_flows.sandbox.kinds import BEHAVIOURS, Behaviour, by_path, image2video
from akool_flows.sandbox.kinds.base import Prepare
from akool_flows.sandbox.routes import Handler, add_routes
from akool_flows.sandbox.state import SandboxState
from akool_flows.sandbox.webhooks import WebhookDispatcher

__all__ = ["DISPATCHER_KEY", "STATE_KEY", "create_app"]

STATE_KEY: web.AppKey[SandboxState] = web.AppKey("akool_sandbox_state", SandboxState)
DISPATCHER_KEY: web.AppKey[WebhookDispatcher] = web.AppKey("akool_sandbox_webhooks", WebhookDispatcher)

FILES_PREFIX = "/_sandbox/files/"

_HTML_500 = (
    b"<html>\r\n<head><title>500 Internal Server Error</title></head>\r\n<body>\r\n"
    b"<center><h1>500 Internal Server Error</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_MALFORMED = b'{"code":1000,"msg":"OK","data":{"_id":"'


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
    add_admin_routes(app, state, dispatcher)
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
                return web.Response(body=_MALFORMED, headers=JSON_HEADERS)
            elif kind == "rate_limit":
                state.count_rejected(1005)
                return json_response(_error_envelope(ApiError(1005), detect))
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
        if rule is not None and rule.kind == "delay_after":
            await asyncio.sleep(rule.seconds)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result)

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

    def api(method: str, path: str, handler: Handler, *, auth: bool = True, poll: bool = False,
            detect: bool = False) -> None:
        r.add_route(method, path, _endpoint(state, handler, auth=auth, poll=poll, detect=detect))

    create_parts = _parts_creator(state, dispatcher)
    for behaviour in BEHAVIOURS.values():
        api("POST", behaviour.kind.create_path, _create(state, dispatcher, behaviour, create_parts))
    # Kinds that share a status or cancel path are served by the first one's behaviour
    # (kinds/__init__ checks at import that they all behave alike).
    for path, sharing in by_path("status_path").items():
        api(sharing[0].kind.status_method, path, _status(state, sharing[0]), poll=True)
    for path, sharing in by_path("cancel_path").items():
        api("POST", path, _cancel(state, dispatcher, sharing[0]))
    add_routes(api, state)
    image2video.add_routes(api, BEHAVIOURS["image_to_video"], create_parts)
    r.add_get(FILES_PREFIX + "{name}", _endpoint(state, _file_server(state), auth=False))


def _create(state: SandboxState, dispatcher: WebhookDispatcher, behaviour: Behaviour,
            create_parts: image2video.CreateParts) -> Handler:
    async def handler(request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        hook = body.get("webhookUrl")
        if hook not in (None, ""):
            if not isinstance(hook, str):
                raise param_error("webhookUrl must be a string URL")
            v.check_url("webhookUrl", hook)
        files_base = f"{request.scheme}://{request.host}{FILES_PREFIX}"
        parts = behaviour.split(body)
        if parts is None:
            job = state.create_job(behaviour, body, files_base)
            dispatcher.schedule(job)
            return ok(behaviour.create_data(job), behaviour.create_msg)
        # One job per part (a translation into "fr,de,ja"): ``data`` is the first job,
        # ``all_results`` one envelope per part, in order; a refused part has its own code.
        made = create_parts(behaviour, body, parts, None, request)
        results = [ok(behaviour.create_data(j), behaviour.create_msg) if isinstance(j, Job)
                   else {"code": j.code, "msg": j.msg} for j in made]
        first = next(j for j in made if isinstance(j, Job))
        return {**ok(behaviour.create_data(first), behaviour.create_msg), "all_results": results}

    return handler


def _parts_creator(state: SandboxState, dispatcher: WebhookDispatcher) -> image2video.CreateParts:
    def create_parts(behaviour: Behaviour, body: dict[str, Any], parts: list[dict[str, Any]],
                     prepare: Prepare | None, request: web.Request) -> list[Job | ApiError]:
        """One job per part of a request (or the part's error); nothing created: the first error."""
        files_base = f"{request.scheme}://{request.host}{FILES_PREFIX}"
        made: list[Job | ApiError] = []
        for part in parts:
            try:
                job = state.create_job(behaviour, part, files_base, received=body, prepare=prepare)
            except ApiError as exc:
                made.append(exc)
                continue
            dispatcher.schedule(job)
            made.append(job)
        errors = [e for e in made if isinstance(e, ApiError)]
        created = len(errors) < len(made)
        for exc in errors[0 if created else 1:]:  # the wrapper counts the one it answers
            state.count_rejected(exc.code)
        if not created:
            raise errors[0]
        return made

    return create_parts


def _status(state: SandboxState, behaviour: Behaviour) -> Handler:
    kind = behaviour.kind
    param = kind.status_id_param

    async def many(request: web.Request) -> dict[str, Any]:
        where = await json_body(request) if kind.status_method == "POST" else request.query
        ids = v.id_list(where.get(param), param)
        now = time.monotonic()
        jobs = [state.reported_job(kind.status_path, job_id) for job_id in ids]
        return ok({"result": [job.payload(now) for job in jobs if job is not None]})  # unknown ids are absent

    async def one(request: web.Request) -> dict[str, Any]:
        job_id = request.query.get(param)
        if not job_id:
            raise param_error(f"{param} is required")
        payload = behaviour.static_record(job_id)
        if payload is None:
            payload = state.find_job(kind.status_path, job_id).payload()
        return ok([payload] if kind.status_data_is_list else payload)

    return many if kind.batch_poll else one


def _cancel(state: SandboxState, dispatcher: WebhookDispatcher, behaviour: Behaviour) -> Handler:
    async def handler(request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        for job in behaviour.cancel(state, body):
            dispatcher.schedule(job)
        return ok()

    return handler


def _file_server(state: SandboxState) -> Handler:
    """Result files: public, like CloudFront links (no auth), 403 once expired."""

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

    return serve_file
