"""``Sandbox``: run the sandbox app on a real localhost socket, in a thread or in your loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from akool_flows.sandbox.admin import apply_config, set_balance
from akool_flows.sandbox.app import DISPATCHER_KEY, create_app
from akool_flows.sandbox.config import SandboxConfig
from akool_flows.sandbox.faults import Faults
from akool_flows.sandbox.kinds import check_kind_name
from akool_flows.sandbox.state import SandboxState

__all__ = ["Sandbox"]

_STOP_TIMEOUT = 10.0


def _new_loop() -> asyncio.AbstractEventLoop:
    # uvloop roughly doubles the request rate of an aiohttp server; use it when installed.
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


class Sandbox:
    """An Akool-compatible server on ``127.0.0.1:<free port>``.

    Use it as a context manager (a background thread runs the server)::

        with Sandbox(SandboxConfig(job_seconds=0.5)) as sb:
            os.environ.update(sb.env())
            ...

    or inside a running event loop with ``await sb.astart()`` / ``await sb.astop()``
    (``async with Sandbox() as sb:`` does the same).

    Keyword arguments override fields of ``config``: ``Sandbox(job_seconds=0.1)``.
    """

    def __init__(self, config: SandboxConfig | None = None, **overrides: Any) -> None:
        config = config or SandboxConfig()
        if overrides:
            config = config.replace(**overrides)
        self._state = SandboxState(config)
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not started"
        return f"<Sandbox {where}>"

    # -- lifecycle ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._port is not None

    def start(self) -> Sandbox:
        """Start the server in a daemon thread; returns once it accepts connections."""
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("this Sandbox is already running")
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = _new_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._shutdown())
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

        self._thread = threading.Thread(target=run, name="akool-sandbox", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            self._loop = None
            raise RuntimeError(f"the sandbox could not start: {failure[0]}") from failure[0]
        return self

    def stop(self) -> None:
        """Stop a server started with :meth:`start` (idempotent)."""
        thread, loop = self._thread, self._loop
        if thread is None and self._runner is not None:
            raise RuntimeError("this Sandbox runs on your event loop (astart): use `await astop()`")
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)
        self._thread = None
        self._loop = None

    async def astart(self) -> Sandbox:
        """Start the server on the running event loop (for async tests and the CLI)."""
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("this Sandbox is already running")
        self._loop = asyncio.get_running_loop()
        await self._serve()
        return self

    async def astop(self) -> None:
        """Stop a server started with :meth:`astart` (idempotent)."""
        if self._thread is not None:
            raise RuntimeError("this Sandbox runs in a thread: use stop()")
        await self._shutdown()
        self._loop = None

    async def _serve(self) -> None:
        config = self._state.config
        app = create_app(state=self._state)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, backlog=1024, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = runner.addresses[0][1]

    async def _shutdown(self) -> None:
        runner, self._runner = self._runner, None
        self._port = None
        if runner is not None:
            await runner.cleanup()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    async def __aenter__(self) -> Sandbox:
        return await self.astart()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.astop()

    # -- where and who --------------------------------------------------------------------
    @property
    def config(self) -> SandboxConfig:
        """The current configuration (runtime changes included)."""
        return self._state.config

    @property
    def state(self) -> SandboxState:
        """The server's state (jobs, counters); prefer the methods below in tests."""
        return self._state

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the sandbox is not running: call start() or use `with Sandbox() as sb`")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` - the value for ``AKOOL_BASE_URL``."""
        host = self._state.config.host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def detect_url(self) -> str:
        """``http://127.0.0.1:PORT/detect`` - the value for ``AKOOL_DETECT_URL``."""
        return f"{self.base_url}/detect"

    @property
    def client_id(self) -> str:
        return self._state.config.client_id

    @property
    def client_secret(self) -> str:
        """The clientSecret: 24 characters by default, 16 or 32 if configured (the AES key of the webhooks)."""
        return self._state.config.client_secret

    @property
    def token(self) -> str:
        """A bearer token that is valid from the start (getToken issues more)."""
        return self._state.config.token

    @property
    def api_key(self) -> str:
        """A valid ``x-api-key`` value."""
        return self._state.config.api_key

    def env(self, auth: str = "token") -> dict[str, str]:
        """``AKOOL_*`` environment variables pointing a client at this sandbox.

        ``auth`` picks the credentials: ``"token"`` (``AKOOL_API_TOKEN``), ``"api_key"``
        (``AKOOL_API_KEY``) or ``"client"`` (``AKOOL_CLIENT_ID`` + ``AKOOL_CLIENT_SECRET``).
        """
        env = {"AKOOL_BASE_URL": self.base_url, "AKOOL_DETECT_URL": self.detect_url}
        if auth == "token":
            env["AKOOL_API_TOKEN"] = self.token
        elif auth == "api_key":
            env["AKOOL_API_KEY"] = self.api_key
        elif auth == "client":
            env["AKOOL_CLIENT_ID"] = self.client_id
            env["AKOOL_CLIENT_SECRET"] = self.client_secret
        else:
            raise ValueError(f"auth must be 'token', 'api_key' or 'client', got {auth!r}")
        return env

    # -- observing --------------------------------------------------------------------------
    @property
    def faults(self) -> Faults:
        """Fault injection rules: ``sb.faults.http_500(next=3, path_prefix=...)``, ``.clear()``..."""
        return self._state.faults

    def create_count(self, kind: str | None = None) -> int:
        """Create calls accepted (jobs created), in total or for one kind (e.g. ``"moderation"``)."""
        return self._state.create_count(kind)

    def duplicate_creates(self) -> dict[str, int]:
        """``{input_hash: count}`` for create inputs (body minus ``webhookUrl``) accepted more than once."""
        return self._state.duplicate_creates()

    def stats(self) -> dict[str, Any]:
        """Every counter: requests, creates per kind, polls per path, webhooks, credits, faults."""
        return self._state.stats()

    def jobs(self, kind: str | None = None) -> list[dict[str, Any]]:
        """A summary of every job (optionally of one kind): id, kind, status, cost, input hash..."""
        check_kind_name(kind)
        with self._state.lock:
            return [job.summary() for job in self._state.jobs.values() if kind is None or job.kind == kind]

    def job_payload(self, job_id: str) -> dict[str, Any]:
        """The status payload of job ``job_id`` right now (``KeyError`` if unknown)."""
        with self._state.lock:
            return self._state.jobs[job_id].payload()

    def job_request(self, job_id: str) -> dict[str, Any]:
        """The body of the create request that made job ``job_id``, as received (``KeyError`` if unknown)."""
        with self._state.lock:
            return dict(self._state.jobs[job_id].request)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Every webhook delivery (one entry per event, with attempts and the final HTTP status)."""
        with self._state.lock:
            return list(self._state.webhook_log)

    @property
    def credits(self) -> float:
        """The current account balance."""
        return self._state.balance

    # -- steering ---------------------------------------------------------------------------
    def set_credits(self, credits: float) -> None:
        """Set the account balance (create calls answer 1006 once it cannot cover a job)."""
        set_balance(self._state, credits)

    def configure(self, **changes: Any) -> SandboxConfig:
        """Change runtime settings (job times, latency, rate limit, webhook retries...)."""
        apply_config(self._state, changes)
        return self._state.config

    def reset(self) -> None:
        """Forget jobs, counters and faults and restore the starting balance; credentials stay valid."""
        self._call_in_loop(self._cancel_webhooks)
        self._state.reset()

    def _cancel_webhooks(self) -> None:
        runner = self._runner
        if runner is not None:
            runner.app[DISPATCHER_KEY].cancel_all()

    def _call_in_loop(self, fn: Callable[[], None]) -> None:
        loop = self._loop
        if loop is None or not loop.is_running():
            fn()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            fn()
            return
        done = threading.Event()

        def call() -> None:
            try:
                fn()
            finally:
                done.set()

        loop.call_soon_threadsafe(call)
        done.wait(_STOP_TIMEOUT)
