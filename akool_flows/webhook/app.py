"""The ASGI receiver for Akool callbacks (Starlette).

Akool's scheme authenticates nothing (the sha1 "signature" has no secret, AES-CBC has no
MAC), and mounted inside Airflow the app gets no authentication from Airflow either. So the
receiver itself enforces, in this order:

1. an optional unguessable path segment (``/webhook/<path_token>``; anything else is 404);
2. a body size cap, checked on ``Content-Length`` and again while streaming (413);
3. ``Content-Type: application/json`` and strict JSON (no duplicate keys, no NaN);
4. the signature (constant time), the timestamp window, then decryption;
5. the job id must be one this installation submitted (``store.register_submitted``), or the
   callback came to a create's own path ``/webhook[/<path_token>]/<intent key>.<hmac>``
   (`intent_path`): the HMAC, keyed by the client secret, proves we issued that path, so the
   event names the job of that create even when the create's answer was lost; the store
   records (intent key -> job id) for the retry to attach.

Every rejection in 3-5 gets the same 400 response, byte for byte, so a sender learns
nothing about which check failed (no padding or signature oracle). The operator's log gets
a fixed reason phrase, never the secret, the body or the plaintext.
A good event answers 200 and is stored; a duplicate (Akool retries until it sees 200)
answers 200 and is not stored again.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections import Counter
from typing import Any
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from akool_flows.webhook.crypto import check_credentials
from akool_flows.webhook.errors import WebhookVerificationError
from akool_flows.webhook.events import WebhookEvent
# Re-exported: the receiver checks the paths these issue.
from akool_flows.webhook.intents import intent_path, intent_url, verify_intent
from akool_flows.webhook.store import WebhookEventStore
from akool_flows.webhook.verify import verify_and_decrypt_all

__all__ = ["DEFAULT_MAX_AGE_MS", "DEFAULT_MAX_BODY_BYTES", "create_webhook_app", "intent_path", "intent_url",
           "verify_intent"]

log = logging.getLogger(__name__)

DEFAULT_MAX_BODY_BYTES = 64 * 1024
DEFAULT_MAX_AGE_MS = 15 * 60 * 1000
_PATH_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{16,128}")

# The single answer to every rejected body. Built once so every rejection is identical.
_REJECTED_BODY = b'{"error":"rejected"}'


def _rejected() -> Response:
    return Response(_REJECTED_BODY, status_code=400, media_type="application/json")


def _too_large() -> Response:
    return Response(b'{"error":"body too large"}', status_code=413, media_type="application/json")


def _unavailable() -> Response:
    return Response(b'{"error":"unavailable"}', status_code=503, media_type="application/json")


def _not_found() -> Response:
    # Same as Starlette's own 404, so a wrong token looks like no route at all.
    return PlainTextResponse("Not Found", status_code=404)


class _BodyTooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isascii() or not declared.isdigit():
            raise WebhookVerificationError("bad Content-Length")
        if int(declared) > limit:
            raise _BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    # Count while streaming: a chunked body without Content-Length must not be buffered
    # whole before we notice it is too big.
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    return value.split(";", 1)[0].strip().lower() == "application/json"


class _GroupIngest:
    """Requests that arrive while a store write runs share the next one (group commit).

    Under load the receiver is bound by one lookup and one commit per event; batching them
    keeps every 200 answer after its event is durable, with no added delay when idle."""

    def __init__(self, store: Any, require_submitted: bool) -> None:
        self._store = store
        self._require_submitted = require_submitted
        self._pending: list[tuple[list[WebhookEvent], str | None, asyncio.Future]] = []
        self._running = False
        self._drainer: asyncio.Task | None = None  # held: the loop keeps only weak references

    async def submit(self, readings: list[WebhookEvent], intent: str | None = None
                     ) -> tuple[WebhookEvent | None, bool]:
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((readings, intent, future))
        if not self._running:
            self._running = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    results = await run_in_threadpool(
                        self._store.ingest_many, [r for r, _, _ in batch],
                        require_submitted=self._require_submitted, intents=[i for _, i, _ in batch])
                except Exception as exc:  # every waiter answers 503 and Akool retries
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                for (_, _, future), result in zip(batch, results):
                    if not future.done():
                        future.set_result(result)
        finally:
            self._running = False


def create_webhook_app(
    store: WebhookEventStore,
    client_id: str,
    client_secret: str,
    *,
    path_token: str | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    max_age_ms: int | None = DEFAULT_MAX_AGE_MS,
    require_submitted: bool = True,
) -> Starlette:
    """Build the ASGI app that receives Akool webhooks into ``store``.

    Routes: ``POST /webhook`` (or only ``POST /webhook/<path_token>`` when ``path_token``
    is set) and ``GET /healthz``. Point Akool's ``webhookUrl`` at the POST route.

    Args:
        store: where events are stored and submitted job ids are looked up.
        client_id, client_secret: the Akool key pair (IV and AES key of the scheme).
        path_token: 16-128 URL-safe characters (e.g. ``secrets.token_urlsafe(32)``) that
            make the callback URL unguessable.
        max_body_bytes: larger bodies get 413 (Akool's bodies are well under 4 KiB).
        max_age_ms: accepted distance between the body's timestamp and now, in ms; None
            disables the check.
        require_submitted: accept events only for job ids in ``store.is_submitted``.
    """
    if not isinstance(store, WebhookEventStore):
        raise TypeError("store must be a WebhookEventStore")
    # Fail at startup, not on the first callback, if the key pair cannot work.
    check_credentials(client_id, client_secret)
    if path_token is not None and not (
        isinstance(path_token, str) and _PATH_TOKEN_RE.fullmatch(path_token)
    ):
        raise ValueError(
            "path_token must be 16-128 characters from A-Z a-z 0-9 _ - "
            "(generate one with secrets.token_urlsafe(32))"
        )
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or max_body_bytes < 256
    ):
        raise ValueError(f"max_body_bytes must be an integer >= 256, got {max_body_bytes!r}")
    if max_age_ms is not None and (
        isinstance(max_age_ms, bool) or not isinstance(max_age_ms, int) or max_age_ms <= 0
    ):
        raise ValueError(
            f"max_age_ms must be a positive integer of milliseconds or None, got {max_age_ms!r}"
        )

    stats: Counter[str] = Counter()

    ingest = _GroupIngest(store, require_submitted)

    async def receive(request: Request) -> Response:
        if path_token is not None:
            given = request.path_params.get("token", "")
            if not hmac.compare_digest(given.encode("utf-8"), path_token.encode("utf-8")):
                return _not_found()
        intent = None
        if "intent" in request.path_params:
            intent = verify_intent(request.path_params["intent"], client_secret)
            if intent is None:  # a path we never issued: looks like no route at all
                return _not_found()
        try:
            body = await _read_capped(request, max_body_bytes)
        except _BodyTooLarge:
            stats["too_large"] += 1
            log.warning("akool webhook rejected: body larger than %d bytes", max_body_bytes)
            return _too_large()
        except WebhookVerificationError as exc:
            return _reject(exc.reason)
        if not _is_json_content_type(request.headers.get("content-type")):
            return _reject("Content-Type is not application/json")
        try:
            readings = verify_and_decrypt_all(
                body, client_id, client_secret, max_age_ms=max_age_ms
            )
        except WebhookVerificationError as exc:
            return _reject(exc.reason)
        try:
            event, is_new = await ingest.submit(readings, intent)
        except Exception as exc:
            # The database, not the sender: answer 503 so Akool retries later. Log the type
            # only, since driver messages embed the SQL parameters.
            stats["store_error"] += 1
            log.error("akool webhook not stored (%s); the sender will retry", type(exc).__name__)
            return _unavailable()
        if event is None:
            # A valid-looking event for a job we never created: forged or not ours.
            return _reject("job id was not submitted by this installation")
        stats["accepted" if is_new else "duplicate"] += 1
        log.info(
            "akool webhook %s: job %s status %d",
            "stored" if is_new else "duplicate",
            event.job_id,
            event.status,
        )
        return JSONResponse({})

    def _reject(reason: str) -> Response:
        stats["rejected"] += 1
        # `reason` is one of our fixed phrases; nothing from the body reaches the log.
        log.warning("akool webhook rejected: %s", reason)
        return _rejected()

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    path = "/webhook/{token}" if path_token is not None else "/webhook"
    app = Starlette(
        routes=[
            Route(path, receive, methods=["POST"]),
            Route(path + "/{intent}", receive, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
        ]
    )
    app.state.store = store
    # Counts of accepted / duplicate / rejected / too_large requests, for tests and metrics.
    app.state.stats = stats
    return app

