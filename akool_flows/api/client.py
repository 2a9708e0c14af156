"""`AkoolClient` (sync) and `AsyncAkoolClient` (async): one generic job interface over the registry.

    async with AsyncAkoolClient.from_env() as client:
        job = await client.submit("moderation", content="hello", type=4)
        status = await client.wait("moderation", job.job_id)

Both run the flows of `core.ClientCore` (retries, token refresh, rate limit, envelope checks,
the `wait` deadline); each only performs the effects those flows yield: blocking httpx and
`time.sleep` here, aiohttp (or an httpx transport) and `asyncio.sleep` there.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Generator, Iterable
from typing import Any

import httpx

from akool_flows.api.auth import Credentials
from akool_flows.api.core import (
    DEFAULT_BASE_URL,
    DEFAULT_DETECT_URL,
    USER_AGENT,
    AwaitEvent,
    ClientCore,
    Gather,
    ObtainToken,
    Send,
    Sleep,
)
from akool_flows.api.endpoints import Call
from akool_flows.api.jobs import JobStatus
from akool_flows.api.operations import Operations
from akool_flows.api.retry import RetryPolicy
from akool_flows.api.transport import AiohttpSender, HttpxAsyncSender, HttpxSyncSender

__all__ = ["DEFAULT_BASE_URL", "DEFAULT_DETECT_URL", "USER_AGENT", "AkoolClient", "AsyncAkoolClient",
           "Credentials", "RetryPolicy"]


class AsyncAkoolClient(Operations, ClientCore):
    """Async client. By default it sends over aiohttp (fast); pass `transport=` (an
    `httpx.AsyncBaseTransport`) or `http_client=` (an `httpx.AsyncClient`) to use httpx."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None,
                 http_client: httpx.AsyncClient | None = None, max_connections: int = 64,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if http_client is not None:
            self._sender: Any = HttpxAsyncSender(http_client, owned=False)
        elif transport is not None:
            self._sender = HttpxAsyncSender(httpx.AsyncClient(transport=transport, timeout=self.timeout),
                                            owned=True)
        else:
            self._sender = AiohttpSender(timeout=self.timeout, max_connections=max_connections)
        self._token_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncAkoolClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def _drive(self, flow: Generator[Any, Any, Any]) -> Any:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            try:
                reply = await self._perform(effect)
            except Exception as exc:  # noqa: BLE001 - the flow decides (retry, refresh, raise)
                error = exc

    async def _perform(self, effect: Any) -> Any:
        if isinstance(effect, Send):
            return await self._sender.send(effect.method, effect.url, params=effect.params, json=effect.json,
                                           headers=effect.headers, creates=effect.creates)
        if isinstance(effect, Sleep):
            await asyncio.sleep(effect.seconds)
        elif isinstance(effect, ObtainToken):
            if self._token_lock is None:
                self._token_lock = asyncio.Lock()
            async with self._token_lock:
                if self.credentials.needs_exchange:  # else another call exchanged while we queued
                    await self._drive(self.token_flow())
        elif isinstance(effect, AwaitEvent):
            return await effect.events.wait_for(effect.job_id, timeout=effect.timeout)
        elif isinstance(effect, Gather):
            sem = asyncio.Semaphore(effect.concurrency)

            async def one(flow: Generator[Any, Any, Any]) -> Any:
                async with sem:
                    return await self._drive(flow)

            return list(await asyncio.gather(*(one(f) for f in effect.flows)))
        else:  # pragma: no cover - a flow yielding something new must be taught here first
            raise TypeError(f"unknown effect {effect!r}")
        return None

    async def _run(self, call: Call) -> Any:
        return await self._drive(self.call_flow(call))

    async def statuses(self, kind: str, ids: Iterable[str], *, concurrency: int = 16) -> dict[str, JobStatus]:
        """Statuses of many jobs: one `listbyids` request per 100 ids where the API allows it,
        else concurrent single requests. Ids Akool does not know are absent from the result."""
        return await self._drive(self.statuses_flow(kind, ids, concurrency))

    async def wait(self, kind: str, job_id: str, *, poll_interval: float = 5.0, timeout: float | None = None,
                   events: Any = None, raise_on_failure: bool = False) -> JobStatus:
        """Wait until the job completes or fails. With `events` (a webhook event store) a job
        completes from its event; a status poll runs whenever no event arrived within
        `poll_interval`, so a lost webhook never hangs the wait. No poll is sent after `timeout`."""
        return await self._drive(self.wait_flow(kind, job_id, poll_interval=poll_interval, timeout=timeout,
                                                events=events, raise_on_failure=raise_on_failure))

    async def run(self, kind: str, /, *, poll_interval: float = 5.0, timeout: float | None = None,
                  **fields: Any) -> JobStatus:
        """Submit and wait: the finished job's status (raises `JobFailedError` on status 4)."""
        return await self._drive(self.run_flow(kind, fields, poll_interval=poll_interval, timeout=timeout))


class AkoolClient(Operations, ClientCore):
    """Blocking client over httpx. Same operations as `AsyncAkoolClient`."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, http_client: httpx.Client | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if http_client is not None:
            self._sender: Any = HttpxSyncSender(http_client, owned=False)
        else:
            self._sender = HttpxSyncSender(httpx.Client(transport=transport, timeout=self.timeout), owned=True)
        self._token_lock = threading.Lock()

    def __enter__(self) -> AkoolClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._sender.close()

    def _drive(self, flow: Generator[Any, Any, Any]) -> Any:
        reply: Any = None
        error: Exception | None = None
        while True:
            try:
                effect = flow.send(reply) if error is None else flow.throw(error)
            except StopIteration as stop:
                return stop.value
            reply, error = None, None
            try:
                reply = self._perform(effect)
            except Exception as exc:  # noqa: BLE001 - the flow decides (retry, refresh, raise)
                error = exc

    def _perform(self, effect: Any) -> Any:
        if isinstance(effect, Send):
            return self._sender.send(effect.method, effect.url, params=effect.params, json=effect.json,
                                     headers=effect.headers, creates=effect.creates)
        if isinstance(effect, Sleep):
            time.sleep(effect.seconds)
        elif isinstance(effect, ObtainToken):
            with self._token_lock:
                if self.credentials.needs_exchange:  # else another thread exchanged while we queued
                    self._drive(self.token_flow())
        elif isinstance(effect, AwaitEvent):
            return effect.events.latest(effect.job_id)  # the flow's own sleep spaces the checks
        elif isinstance(effect, Gather):
            return [self._drive(flow) for flow in effect.flows]
        else:  # pragma: no cover - a flow yielding something new must be taught here first
            raise TypeError(f"unknown effect {effect!r}")
        return None

    def _run(self, call: Call) -> Any:
        return self._drive(self.call_flow(call))

    def statuses(self, kind: str, ids: Iterable[str]) -> dict[str, JobStatus]:
        """Statuses of many jobs (batched `listbyids` where the API allows it)."""
        return self._drive(self.statuses_flow(kind, ids, 1))

    def wait(self, kind: str, job_id: str, *, poll_interval: float = 5.0, timeout: float | None = None,
             events: Any = None, raise_on_failure: bool = False) -> JobStatus:
        """Block until the job completes or fails (see `AsyncAkoolClient.wait`). With `events`,
        the store's latest event is checked before each poll."""
        return self._drive(self.wait_flow(kind, job_id, poll_interval=poll_interval, timeout=timeout,
                                          events=events, raise_on_failure=raise_on_failure))

    def run(self, kind: str, /, *, poll_interval: float = 5.0, timeout: float | None = None,
            **fields: Any) -> JobStatus:
        """Submit and wait: the finished job's status (raises `JobFailedError` on status 4)."""
        return self._drive(self.run_flow(kind, fields, poll_interval=poll_interval, timeout=timeout))
