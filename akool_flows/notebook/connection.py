"""Where the notebook apps send their requests: an explicit client, the environment, or the sandbox.

Order of precedence:

1. an explicit client passed to the app (``ModerationApp(df, client=...)``);
2. ``AKOOL_*`` credentials in the environment (``AKOOL_API_TOKEN``, ``AKOOL_API_KEY`` or
   ``AKOOL_CLIENT_ID`` + ``AKOOL_CLIENT_SECRET``, with ``AKOOL_BASE_URL``);
3. otherwise the local sandbox, started once per kernel in this process, so a notebook runs top to
   bottom with no account and spends nothing.

The connection knows whether requests go to a sandbox (a loopback server answering
``/_sandbox/stats``) so the apps can show a SANDBOX badge. It never holds or shows secrets in its
repr: credentials stay inside the client objects and the environment mapping.
"""

from __future__ import annotations

import atexit
import contextlib
import ipaddress
import os
import threading
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from akool_flows.api import AkoolClient, AsyncAkoolClient, RetryPolicy

__all__ = ["Connection", "resolve_connection", "shared_sandbox", "stop_shared_sandbox"]

_sandbox_lock = threading.Lock()
_sandbox: Any = None


def _has_credentials(env: Mapping[str, str]) -> bool:
    def present(name: str) -> bool:
        return bool((env.get(name) or "").strip())
    return present("AKOOL_API_TOKEN") or present("AKOOL_API_KEY") or (
        present("AKOOL_CLIENT_ID") and present("AKOOL_CLIENT_SECRET"))


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _answers_as_sandbox(base_url: str) -> bool:
    """True when `base_url` is a loopback server with the sandbox's admin endpoint.

    Only loopback hosts are probed: a remote host is never a local sandbox, and probing it would
    send a request somewhere the user did not ask for.
    """
    if not _is_loopback(base_url):
        return False
    try:
        response = httpx.get(base_url.rstrip("/") + "/_sandbox/stats", timeout=1.0)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def shared_sandbox(config: Any = None) -> Any:
    """The kernel's in-process sandbox, started on first use and stopped when the process exits.

    Every app in the kernel shares it, so jobs submitted by one app can be polled by the next
    (and a re-created app resumes from the ledger against the same server).
    """
    global _sandbox
    with _sandbox_lock:
        if _sandbox is None:
            from akool_flows.sandbox import Sandbox, SandboxConfig

            sandbox = Sandbox(config or SandboxConfig())
            sandbox.start()
            atexit.register(stop_shared_sandbox)
            _sandbox = sandbox
        return _sandbox


def stop_shared_sandbox() -> None:
    """Stop the kernel's sandbox (if one was started). Safe to call twice."""
    global _sandbox
    with _sandbox_lock:
        sandbox, _sandbox = _sandbox, None
    if sandbox is not None:
        sandbox.stop()


@dataclass
class Connection:
    """How an app reaches Akool. Build one with :func:`resolve_connection`."""

    #: Where requests go (a base URL), for display.
    target: str
    #: True when the target is an Akool sandbox (no real credits are spent).
    sandbox: bool
    #: The client the user passed, used as is and never closed by the apps.
    client: AkoolClient | AsyncAkoolClient | None = field(default=None, repr=False)
    #: AKOOL_* variables to build clients from when no client was passed.
    env: Mapping[str, str] | None = field(default=None, repr=False)
    #: The in-process sandbox object when the connection started one (for its stats in tests).
    sandbox_server: Any = field(default=None, repr=False)

    @contextlib.asynccontextmanager
    async def run_client(self, max_connections: int = 64) -> AsyncIterator[AsyncAkoolClient | AkoolClient]:
        """The client for one run: the user's as is, else a fresh async client closed after it.

        Fresh per run, because an aiohttp session belongs to the event loop it was made on, and
        a run may be on the kernel's loop or on a worker thread's loop.
        """
        if self.client is not None:
            yield self.client
            return
        client = AsyncAkoolClient.from_env(self.env or {}, max_connections=max_connections)
        try:
            yield client
        finally:
            await client.aclose()

    def sync_client(self) -> tuple[AkoolClient, bool] | None:
        """A blocking client for quick look-ups (the language list) and whether to close it;
        None when the user passed an async client (use it on its own loop instead).

        Look-ups happen while a form is being built, so they get a short timeout and one retry:
        an unreachable API must not freeze the cell for the full backoff of a batch client.
        """
        if isinstance(self.client, AkoolClient):
            return self.client, False
        if self.client is not None:
            return None
        return AkoolClient.from_env(self.env or {}, timeout=10.0,
                                    retry=RetryPolicy(max_attempts=2, initial_backoff=0.2, max_backoff=1.0)), True


def resolve_connection(client: AkoolClient | AsyncAkoolClient | None = None, *,
                       env: Mapping[str, str] | None = None, sandbox_config: Any = None) -> Connection:
    """Pick the connection an app uses (see the module docstring for the order)."""
    if client is not None:
        if not isinstance(client, (AkoolClient, AsyncAkoolClient)):
            raise TypeError(f"client must be an AkoolClient or AsyncAkoolClient, got {type(client).__name__}")
        return Connection(target=client.base_url, sandbox=_answers_as_sandbox(client.base_url), client=client)
    env = dict(os.environ if env is None else env)
    if _has_credentials(env):
        akool_env = {k: v for k, v in env.items() if k.startswith("AKOOL_")}
        probe = AkoolClient.from_env(akool_env)  # validates the variables now, not at Run time
        probe.close()
        return Connection(target=probe.base_url, sandbox=_answers_as_sandbox(probe.base_url), env=akool_env)
    sandbox = shared_sandbox(sandbox_config)
    return Connection(target=sandbox.base_url, sandbox=True, env=dict(sandbox.env()), sandbox_server=sandbox)
