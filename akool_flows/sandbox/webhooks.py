"""Webhook callbacks, sent the way the docs' Webhook page describes.

When a create request carried ``webhookUrl``, the sandbox POSTs
``{"signature", "dataEncrypt", "timestamp", "nonce"}`` (built by
:func:`akool_flows.webhook.build_webhook_body`) whose decrypted payload is
``{"_id", "status", "type", "url"}``, when the job enters processing (optional) and when
it ends. Like Akool, it retries with exponential backoff until the receiver answers
HTTP 200, up to ``webhook_max_attempts`` attempts.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from akool_flows.sandbox.jobs import COMPLETED, PROCESSING, Job
from akool_flows.webhook.crypto import build_webhook_body

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["WebhookDispatcher"]

log = logging.getLogger("akool_flows.sandbox.webhooks")

# Timers may fire a hair before the job's clock says the status changed (event-loop
# clocks round); re-check this much later instead of sending a stale status.
_CLOCK_SLACK = 0.002


class WebhookDispatcher:
    """Schedules and delivers the callbacks of one sandbox; lives on the server's event loop."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # A private connector: callbacks must not compete with anything else for sockets.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))

    async def close(self) -> None:
        self.cancel_all()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    def cancel_all(self) -> None:
        """Cancel pending timers and in-flight deliveries (on reset and shutdown). Loop thread only."""
        with self.state.lock:
            for job in self.state.jobs.values():
                for timer in job.timers:
                    timer.cancel()
                job.timers.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- scheduling -----------------------------------------------------------------------
    def schedule(self, job: Job) -> None:
        """(Re)arm the timers that notify ``job``'s webhook. Call after create, cancel or close."""
        if not job.webhook_url or self._loop is None:
            return
        for timer in job.timers:
            timer.cancel()
        job.timers.clear()
        now = time.monotonic()
        wants_processing = self.state.config.webhook_on_processing and job.queued_until < job.done_at
        if wants_processing and PROCESSING not in job.notified:
            job.timers.append(self._loop.call_later(max(0.0, job.queued_until - now), self._fire, job, PROCESSING))
        job.timers.append(self._loop.call_later(max(0.0, job.done_at - now), self._fire, job, COMPLETED))

    def _fire(self, job: Job, expected: int) -> None:
        if self.state.jobs.get(job.id) is not job:  # the sandbox was reset
            return
        status = job.status()
        if status < expected:
            assert self._loop is not None
            job.timers.append(self._loop.call_later(_CLOCK_SLACK, self._fire, job, expected))
            return
        if expected == PROCESSING and status != PROCESSING:
            return  # ended before anyone was told it started: only the final status is sent
        if status in job.notified:
            return
        job.notified.add(status)
        task = asyncio.ensure_future(self._deliver(job, status))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- delivery -------------------------------------------------------------------------
    async def _deliver(self, job: Job, status: int) -> None:
        config = self.state.config
        payload = {
            "_id": job.id,
            "status": status,
            "type": job.behaviour.kind.webhook_type,
            "url": job.behaviour.webhook_url_field(job, status),
        }
        entry: dict[str, Any] = {
            "_id": job.id,
            "kind": job.kind,
            "status": status,
            "target": job.webhook_url,
            "attempts": 0,
            "delivered": False,
            "http_status": None,
            "error": None,
        }
        # One body for all attempts: a retry is the same event, so receivers can dedupe it.
        body = build_webhook_body(payload, config.client_id, config.client_secret)
        delay = config.webhook_retry_seconds
        timeout = aiohttp.ClientTimeout(total=config.webhook_timeout)
        assert self._session is not None and job.webhook_url
        for attempt in range(1, config.webhook_max_attempts + 1):
            entry["attempts"] = attempt
            with self.state.lock:
                self.state.webhook_attempts += 1
            try:
                async with self._session.post(job.webhook_url, json=body, timeout=timeout) as resp:
                    entry["http_status"] = resp.status
                    entry["error"] = None
                    await resp.read()
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                entry["http_status"] = None
                entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
            if entry["http_status"] == 200:
                entry["delivered"] = True
                break
            if attempt < config.webhook_max_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        if not entry["delivered"]:
            log.info("sandbox webhook for job %s status %s gave up after %d attempts (%s)",
                     job.id, status, entry["attempts"], entry["error"] or entry["http_status"])
        self.state.record_webhook(entry)
