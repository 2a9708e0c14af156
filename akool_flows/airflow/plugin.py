"""`AkoolPlugin`: mounts the Akool webhook receiver in the Airflow API server at ``/akool``.

Akool POSTs an encrypted callback to a job's ``webhookUrl`` when it changes state. With this
plugin the Airflow API server receives them at::

    https://<airflow>/akool/webhook/<path token>      (GET /akool/healthz for probes)

verifies and decrypts them with the ``akool`` connection's Client ID / Client Secret, and
stores them in the webhook event store, where `AkoolJobTrigger` (on the triggerer) and the
batch engine pick them up: a job completes from its callback, polling is only a fallback.

Airflow gives a mounted app no authentication; the receiver checks every request itself
(path token, size cap, signature, timestamp window, and that the job id is one this
installation submitted). Configuration (``airflow.cfg`` section ``[akool]`` or
``AIRFLOW__AKOOL__*`` variables):

``webhook_conn_id``     connection with the Client ID / Client Secret (default ``akool_default``)
``webhook_store_url``   event store URL (default: the connection's ``webhook_store_url`` extra,
                        else ``sqlite:///$AIRFLOW_HOME/akool-webhooks.sqlite``)
``webhook_path_token``  the secret path segment (``python -c "import secrets;
                        print(secrets.token_urlsafe(32))"``); strongly recommended

Operators send ``webhookUrl`` only when the connection has both the ``webhook_url`` extra
(this route's public URL) and ``webhook_store_url`` (the same store).

The receiver is built on its first request, not at import: every Airflow process imports
plugins, and only the API server should read the connection or open the store.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from typing import Any

from airflow.plugins_manager import AirflowPlugin

from akool_flows.airflow.api_server import AkoolRootMiddleware

log = logging.getLogger(__name__)

__all__ = ["AkoolPlugin", "WebhookReceiver", "build_receiver_app"]

URL_PREFIX = "/akool"
#: After a failed build (connection missing, bad secret) the next request retries after this long.
_RETRY_BUILD_SECONDS = 30.0


class ReceiverNotConfigured(Exception):
    """The receiver cannot run with the current configuration; the message says what to set."""


def _conf(option: str, default: str = "") -> str:
    from airflow.configuration import conf

    return (conf.get("akool", option, fallback=default) or default).strip()


def _connection(conn_id: str) -> Any:
    try:
        from airflow.models.connection import Connection

        return Connection.get_connection_from_secrets(conn_id)
    except Exception as exc:  # AirflowNotFoundException and friends
        raise ReceiverNotConfigured(f"connection {conn_id!r} is not available: {type(exc).__name__}") from None


def build_receiver_app() -> Any:
    """The configured Starlette receiver (blocking: reads the connection, opens the store)."""
    from akool_flows.webhook.app import create_webhook_app
    from akool_flows.webhook.store import WebhookEventStore

    conn_id = _conf("webhook_conn_id", "akool_default")
    conn = _connection(conn_id)
    if not (conn.login and conn.password):
        raise ReceiverNotConfigured(
            f"connection {conn_id!r} needs Client ID (login) and Client Secret (password): Akool encrypts "
            "callbacks with them")
    extra = conn.extra_dejson if conn.extra else {}
    home = os.environ.get("AIRFLOW_HOME") or os.path.expanduser("~/airflow")
    store_url = (_conf("webhook_store_url") or extra.get("webhook_store_url")
                 or f"sqlite:///{os.path.join(home, 'akool-webhooks.sqlite')}")
    token = _conf("webhook_path_token") or None
    if token is not None:
        from airflow.sdk.log import mask_secret

        mask_secret(token)  # any log line of this process that quotes the callback URL
    else:
        log.warning("akool webhook receiver has no [akool] webhook_path_token: anyone who can reach the API "
                    "server can post to /akool/webhook (bodies are still verified)")
    try:
        store = WebhookEventStore(store_url)
        return create_webhook_app(store, conn.login, conn.password, path_token=token)
    except ValueError as exc:
        raise ReceiverNotConfigured(str(exc)) from None


class WebhookReceiver:
    """ASGI app that builds the receiver on first use and answers 503 while it cannot."""

    def __init__(self, build: Any = build_receiver_app) -> None:
        self._build = build
        self._app: Any = None
        self._error: str | None = None
        self._failed_at = 0.0
        self._lock = threading.Lock()

    def _get(self) -> Any:
        with self._lock:
            if self._app is not None:
                return self._app
            if self._error is not None and time.monotonic() - self._failed_at < _RETRY_BUILD_SECONDS:
                return None
            try:
                self._app = self._build()
                self._error = None
                log.info("akool webhook receiver ready at %s/webhook", URL_PREFIX)
            except ReceiverNotConfigured as exc:
                self._error, self._failed_at = str(exc), time.monotonic()
                log.error("akool webhook receiver not configured: %s", exc)
            return self._app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # mounted apps get no lifespan events; websockets are not served
        app = self._app or await asyncio.to_thread(self._get)
        if app is None:
            body = json.dumps({"error": "akool webhook receiver not configured", "detail": self._error}).encode()
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)


class AkoolPlugin(AirflowPlugin):
    """Mounts the Akool webhook receiver at ``/akool`` in the API server."""

    name = "akool"
    fastapi_apps = [{"app": WebhookReceiver(), "url_prefix": URL_PREFIX, "name": "Akool webhook receiver"}]
    # Fixes the connection list's Test button for akool connections and keeps the webhook
    # path token out of the access log (see akool_flows.airflow.api_server).
    fastapi_root_middlewares = [{"middleware": AkoolRootMiddleware, "name": "akool"}]
