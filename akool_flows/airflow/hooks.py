"""`AkoolHook`: an Airflow connection of type ``akool`` turned into Akool clients.

Connection fields (the form is declared in ``provider_info.py``):

==================  ===========================================================
login               clientId
password            clientSecret (also the key that decrypts webhooks)
host                base URL override (sandbox, proxy); empty = the real API
extra.token         a bearer token instead of clientId/clientSecret
extra.api_key       an API key (``x-api-key``) instead of either
extra.detect_url    face detect endpoint override
extra.webhook_url   public URL of the webhook receiver (the plugin's route)
extra.webhook_store_url  SQLAlchemy URL of the webhook event store
==================  ===========================================================

As an environment variable::

    AIRFLOW_CONN_AKOOL_DEFAULT='{"conn_type": "akool", "host": "http://127.0.0.1:8765",
                                 "login": "<clientId>", "password": "<clientSecret>"}'

Every secret is registered with Airflow's masker before it can reach a log line.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.log import amask_secret, mask_secret

from akool_flows.api.errors import AkoolError, ValidationError

if TYPE_CHECKING:
    from akool_flows.api.client import AkoolClient, AsyncAkoolClient, RetryPolicy
    from akool_flows.webhook.store import WebhookEventStore

__all__ = ["AkoolHook", "client_kwargs_from_connection"]

#: Extra keys the hook understands; anything else in ``extra`` is refused with this list.
EXTRA_KEYS = ("token", "api_key", "detect_url", "webhook_url", "webhook_store_url", "max_requests_per_second",
              "timeout")
# Masked in logs: credentials, the receiver URL (its path token is the secret) and the store
# URL (it may carry a database password).
_SECRET_EXTRAS = ("token", "api_key", "webhook_url", "webhook_store_url")
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")

# One `Credentials` per (API, clientId, clientSecret) in this process, backed by a token file per
# machine (`token_cache`): the tasks a worker (or triggerer) runs - one after another in one
# process, or each in its own process as Celery runs them - share one getToken exchange instead
# of one each (302 getToken calls for 300 mapped tasks before). A revoked token still
# re-exchanges: the client forgets an exchanged token on 1101, and the file drops it.
_SHARED_CREDENTIALS: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()


def _share_credentials(client: Any) -> Any:
    creds = client.credentials
    if creds.mode != "client_credentials":
        return client
    key = hashlib.sha256("\0".join((client.base_url, creds.client_id or "", creds.client_secret or ""))
                         .encode()).hexdigest()
    with _SHARED_LOCK:
        shared = _SHARED_CREDENTIALS.get(key)
        if shared is None:
            shared = _SHARED_CREDENTIALS[key] = _machine_shared(client.base_url, creds)
    client.credentials, lock = shared
    if lock is not None and isinstance(getattr(client, "_token_lock", None), type(threading.Lock())):
        client._token_lock = lock  # blocking clients: one exchange across this machine's processes
    return client


def _machine_shared(base_url: str, creds: Any) -> tuple[Any, Any]:
    from akool_flows.airflow.machine_cache import cache_dir
    from akool_flows.airflow.token_cache import MachineCachedCredentials, TokenFile, machine_token_lock

    folder = cache_dir("tokens")
    if folder is None:  # AKOOL_FLOWS_STATE_DIR unusable: share within this process only
        return creds, None
    file = TokenFile(folder, base_url, creds.client_id, creds.client_secret)
    return (MachineCachedCredentials(file, client_id=creds.client_id, client_secret=creds.client_secret),
            machine_token_lock(file))


def _base_url(host: str | None, schema: str | None, port: int | None) -> str | None:
    """The API base URL from the connection's host.

    A JSON connection keeps ``host`` whole (``http://127.0.0.1:8765``): take it as is. A URI
    connection (``akool://id:secret@127.0.0.1:8765``) splits scheme and port off, so rebuild:
    the scheme from ``schema`` when it is http/https, plain http only for loopback hosts.
    """
    host = (host or "").strip()
    if not host:
        return None
    if "://" in host:
        return host.rstrip("/")
    scheme = (schema or "").strip().lower()
    if scheme not in ("http", "https"):
        scheme = "http" if host.split(":")[0] in _LOCAL_HOSTS else "https"
    netloc = host if port is None or ":" in host.split("/")[0] else f"{host}:{port}"
    return f"{scheme}://{netloc}".rstrip("/")


def client_kwargs_from_connection(conn: Any, extra: Mapping[str, Any]) -> dict[str, Any]:
    """Client constructor arguments from an Airflow ``Connection`` and its parsed extra.

    Raises `ValidationError` naming the field when the connection cannot work (unknown extra
    key, no credentials), so a typo in the form fails with a message, not a 401 later.
    """
    unknown = sorted(set(extra) - set(EXTRA_KEYS))
    if unknown:
        raise ValidationError(
            f"connection {conn.conn_id!r}: unknown extra field(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(EXTRA_KEYS)})", field="extra")
    kwargs: dict[str, Any] = {
        "base_url": _base_url(conn.host, getattr(conn, "schema", None), conn.port),
        "detect_url": extra.get("detect_url") or None,
        "client_id": conn.login or None,
        "client_secret": conn.password or None,
        "token": extra.get("token") or None,
        "api_key": extra.get("api_key") or None,
    }
    rps = extra.get("max_requests_per_second")
    if rps not in (None, ""):
        try:
            kwargs["max_requests_per_second"] = float(rps)
        except (TypeError, ValueError):
            raise ValidationError(f"connection {conn.conn_id!r}: max_requests_per_second must be a number, "
                                  f"got {rps!r}", field="max_requests_per_second") from None
    timeout = extra.get("timeout")
    if timeout not in (None, ""):
        try:
            kwargs["timeout"] = float(timeout)
        except (TypeError, ValueError):
            raise ValidationError(f"connection {conn.conn_id!r}: timeout must be a number of seconds, "
                                  f"got {timeout!r}", field="timeout") from None
    if not (kwargs["token"] or kwargs["api_key"] or (kwargs["client_id"] and kwargs["client_secret"])):
        raise ValidationError(
            f"connection {conn.conn_id!r} has no Akool credentials: set Client ID (login) and Client Secret "
            "(password), or the token or api_key extra", field="credentials")
    return kwargs


class AkoolHook(BaseHook):
    """Interact with the Akool API through an ``akool`` connection.

    :param akool_conn_id: the connection id (default ``akool_default``).
    :param timeout: HTTP timeout per request, seconds (the connection's ``timeout`` extra wins).
    :param retry: a `akool_flows.api.RetryPolicy` for transient failures.
    :param max_requests_per_second: client-side rate limit (the connection's extra wins).

    ``get_conn()`` / ``client`` give a blocking `AkoolClient` (worker side); triggers call
    ``await hook.aget_async_client()`` for an `AsyncAkoolClient` built without blocking the
    event loop.
    """

    conn_name_attr = "akool_conn_id"
    default_conn_name = "akool_default"
    conn_type = "akool"
    hook_name = "Akool"

    def __init__(self, akool_conn_id: str = default_conn_name, *, timeout: float = 30.0,
                 retry: RetryPolicy | None = None, max_requests_per_second: float | None = None,
                 logger_name: str | None = None) -> None:
        super().__init__(logger_name=logger_name)
        if not isinstance(akool_conn_id, str) or not akool_conn_id:
            raise ValidationError("akool_conn_id must be a non-empty connection id", field="akool_conn_id")
        self.akool_conn_id = akool_conn_id
        self.timeout = timeout
        self.retry = retry
        self.max_requests_per_second = max_requests_per_second
        self._extra: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"AkoolHook(akool_conn_id={self.akool_conn_id!r})"

    # --- connection -------------------------------------------------------------------------

    def _defaults(self) -> dict[str, Any]:
        out: dict[str, Any] = {"timeout": self.timeout}
        if self.retry is not None:
            out["retry"] = self.retry
        if self.max_requests_per_second is not None:
            out["max_requests_per_second"] = self.max_requests_per_second
        return out

    @cached_property
    def client_kwargs(self) -> dict[str, Any]:
        """Constructor arguments for either client, read once from the connection (blocking)."""
        conn = self.get_connection(self.akool_conn_id)
        mask_secret(conn.password)
        extra = dict(conn.extra_dejson)
        for key in _SECRET_EXTRAS:
            if extra.get(key):
                mask_secret(extra[key])
        self._extra = extra
        return {**self._defaults(), **client_kwargs_from_connection(conn, extra)}

    async def aclient_kwargs(self) -> dict[str, Any]:
        """`client_kwargs` for async code: the connection is read with ``aget_connection``."""
        if "client_kwargs" in self.__dict__:
            return self.__dict__["client_kwargs"]
        conn = await self.aget_connection(self.akool_conn_id)
        await amask_secret(conn.password)
        extra = dict(await conn.aextra_dejson())
        for key in _SECRET_EXTRAS:
            if extra.get(key):
                await amask_secret(extra[key])
        self._extra = extra
        kwargs = {**self._defaults(), **client_kwargs_from_connection(conn, extra)}
        self.__dict__["client_kwargs"] = kwargs
        return kwargs

    @property
    def webhook_url(self) -> str | None:
        """The receiver URL Akool should call back (connection extra ``webhook_url``), if any."""
        _ = self.client_kwargs
        return self._extra.get("webhook_url") or None

    @property
    def webhook_store_url(self) -> str | None:
        """The webhook event store's SQLAlchemy URL (connection extra ``webhook_store_url``), if any."""
        _ = self.client_kwargs
        return self._extra.get("webhook_store_url") or None

    async def awebhook_store_url(self) -> str | None:
        await self.aclient_kwargs()
        return self._extra.get("webhook_store_url") or None

    # --- clients ----------------------------------------------------------------------------

    def get_client(self, **overrides: Any) -> AkoolClient:
        """A new blocking client (close it, or use it in a ``with`` block)."""
        from akool_flows.api.client import AkoolClient

        return _share_credentials(AkoolClient(**{**self.client_kwargs, **overrides}))

    @cached_property
    def client(self) -> AkoolClient:
        """A blocking client shared by this hook's calls (closed with the hook's process)."""
        return self.get_client()

    def get_conn(self) -> AkoolClient:
        """The hook's blocking client (Airflow's conventional accessor)."""
        return self.client

    async def aget_async_client(self, **overrides: Any) -> AsyncAkoolClient:
        """A new async client; the caller closes it (``async with`` or ``await c.aclose()``)."""
        from akool_flows.api.client import AsyncAkoolClient

        return _share_credentials(AsyncAkoolClient(**{**(await self.aclient_kwargs()), **overrides}))

    def get_event_store(self) -> WebhookEventStore | None:
        """The webhook event store named by the connection, or None when webhooks are not set up."""
        url = self.webhook_store_url
        if not url:
            return None
        from akool_flows.webhook.store import WebhookEventStore

        return WebhookEventStore(url)

    # --- UI ---------------------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Called by the UI's Test button: read the credit balance (authenticates, spends nothing)."""
        from akool_flows.api.client import RetryPolicy

        try:
            # One attempt, short timeout: the user is waiting on the button.
            with self.get_client(retry=RetryPolicy(max_attempts=1), timeout=10.0) as client:
                credits = client.credit_info()
                return True, f"Connected to {client.base_url} ({client.credentials.mode}); " \
                             f"credit balance {credits:g}"
        except AkoolError as exc:
            # AkoolError messages carry Akool's code and text, never the credentials.
            return False, f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the UI shows the message; keep it to the type and text
            return False, f"{type(exc).__name__}: {exc}"
