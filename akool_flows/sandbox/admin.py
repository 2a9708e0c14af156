"""The ``/_sandbox`` admin API: health, counters, faults, runtime configuration, credits, reset,
and the files a batch stages to the sandbox (``/_sandbox/uploads``, see `uploads`).

No Akool auth: the server only listens on localhost by default.
"""

from __future__ import annotations

import json
import time
from typing import Any

from aiohttp import web

from akool_flows.sandbox.config import RUNTIME_FIELDS
from akool_flows.sandbox.envelope import json_response
from akool_flows.sandbox.state import SandboxState
from akool_flows.sandbox.uploads import Uploads, add_upload_routes
from akool_flows.sandbox.webhooks import WebhookDispatcher

__all__ = ["add_admin_routes", "apply_config", "set_balance"]


def add_admin_routes(app: web.Application, state: SandboxState, dispatcher: WebhookDispatcher) -> None:
    r = app.router
    uploads = Uploads()  # files a batch stages here instead of a bucket (see uploads.py)
    add_upload_routes(app, uploads)

    def bad(message: str) -> web.Response:
        return json_response({"error": message}, status=400)

    async def admin_body(request: web.Request) -> Any:
        raw = await request.read()
        return json.loads(raw) if raw.strip() else {}

    async def health(request: web.Request) -> web.Response:
        return json_response({"ok": True})

    async def stats(request: web.Request) -> web.Response:
        return json_response(state.stats())

    async def faults_get(request: web.Request) -> web.Response:
        return json_response({"rules": state.faults.rules(), "injected": dict(state.faults.injected)})

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
        return json_response({"rules": state.faults.rules()})

    async def faults_delete(request: web.Request) -> web.Response:
        state.faults.clear()
        return json_response({"rules": []})

    async def config_get(request: web.Request) -> web.Response:
        return json_response(state.config.public_dict() | {"credits_balance": state.balance})

    async def config_post(request: web.Request) -> web.Response:
        try:
            body = await admin_body(request)
            if not isinstance(body, dict):
                return bad("expected a JSON object of configuration fields")
            apply_config(state, body)
        except (ValueError, TypeError) as exc:
            return bad(str(exc))
        return json_response(state.config.public_dict() | {"credits_balance": state.balance})

    async def credits_post(request: web.Request) -> web.Response:
        try:
            body = await admin_body(request)
            credits = body.get("credits") if isinstance(body, dict) else None
            set_balance(state, credits)
        except (ValueError, TypeError) as exc:
            return bad(str(exc))
        return json_response({"credits": state.balance})

    async def reset(request: web.Request) -> web.Response:
        dispatcher.cancel_all()
        state.reset()
        uploads.clear()
        return json_response({"ok": True})

    async def jobs(request: web.Request) -> web.Response:
        kind = request.query.get("kind")
        now = time.monotonic()
        with state.lock:
            items = [job.summary(now) for job in state.jobs.values() if kind is None or job.kind == kind]
        return json_response({"count": len(items), "jobs": items})

    async def job(request: web.Request) -> web.Response:
        with state.lock:
            found = state.jobs.get(request.match_info["job_id"])
            if found is None:
                return json_response({"error": "no such job"}, status=404)
            return json_response({**found.summary(), "request": found.request, "payload": found.payload()})

    async def webhooks(request: web.Request) -> web.Response:
        with state.lock:
            return json_response({"deliveries": list(state.webhook_log)})

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
    r.add_get("/_sandbox/jobs/{job_id}", job)
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
