"""Waiting for jobs' terminal webhook events, cheaply enough for thousands of waiters.

Each waiter is one future. An event stored in this process resolves its waiters at once
(`EventWaiters.notify`); one background task per event loop checks the database for all pending
ids in batched queries, for events written by a receiver running in another process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

from akool_flows.webhook.events import WebhookEvent

__all__ = ["EventWaiters"]

log = logging.getLogger(__name__)

#: Job ids -> the stored terminal event of each that has one.
Lookup = Callable[[list[str]], dict[str, WebhookEvent]]


class EventWaiters:
    """The waiters of one `WebhookEventStore`; ``lookup`` reads its terminal events."""

    def __init__(self, lookup: Lookup, poll_interval: float) -> None:
        self.lookup = lookup
        self.poll_interval = poll_interval
        # job_id -> set of (loop, future) waiting for that job's terminal event.
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Future]]] = {}
        self._watchers: dict[asyncio.AbstractEventLoop, _LoopWatcher] = {}
        self._lock = threading.Lock()

    @property
    def idle(self) -> bool:
        """Nobody waits and no background check runs (nothing leaks after waits end)."""
        with self._lock:
            return not self._waiters and not self._watchers

    def close(self) -> None:
        """Cancel the background checks."""
        with self._lock:
            watchers = list(self._watchers.items())
            self._watchers.clear()
        for loop, watcher in watchers:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(watcher.cancel)

    async def wait_for(self, job_id: str, timeout: float) -> WebhookEvent | None:
        """`WebhookEventStore.wait_for`: the job's terminal event, or None after ``timeout`` s."""
        if not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"timeout must be a number >= 0 seconds, got {timeout!r}")
        if timeout == 0:
            found = await asyncio.to_thread(self.lookup, [job_id])
            return found.get(job_id)
        loop = asyncio.get_running_loop()
        future: asyncio.Future[WebhookEvent] = loop.create_future()
        entry = (loop, future)
        # Register before the first database check, so an event landing in between is
        # caught by the notification or by the check.
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(entry)
        try:
            self._watcher(loop).watch(job_id)
            try:
                return await asyncio.wait_for(asyncio.shield(future), timeout)
            except asyncio.TimeoutError:
                return None
        finally:
            with self._lock:
                waiting = self._waiters.get(job_id)
                if waiting is not None:
                    waiting.discard(entry)
                    if not waiting:
                        del self._waiters[job_id]
            if not future.done():
                future.cancel()

    def notify(self, event: WebhookEvent) -> None:
        """Wake this process's waiters on the event's job."""
        with self._lock:
            entries = list(self._waiters.get(event.job_id, ()))
        for loop, future in entries:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(_resolve, future, event)

    def _watcher(self, loop: asyncio.AbstractEventLoop) -> _LoopWatcher:
        with self._lock:
            watcher = self._watchers.get(loop)
            if watcher is None or watcher.finished:
                watcher = self._watchers[loop] = _LoopWatcher(self, loop)
            return watcher

    def _pending_ids(self, loop: asyncio.AbstractEventLoop) -> list[str]:
        with self._lock:
            return self._pending_ids_unlocked(loop)

    def _pending_ids_unlocked(self, loop: asyncio.AbstractEventLoop) -> list[str]:
        return [j for j, waiting in self._waiters.items() if any(lp is loop for lp, _ in waiting)]

    def _resolve_local(
        self, loop: asyncio.AbstractEventLoop, found: dict[str, WebhookEvent]
    ) -> None:
        for job_id, event in found.items():
            with self._lock:
                futures = [f for lp, f in self._waiters.get(job_id, ()) if lp is loop]
            for future in futures:
                _resolve(future, event)



class _LoopWatcher:
    """Serves one event loop's waiters from the database in batched queries.

    New ids are checked on the next loop iteration (so a burst of ``wait_for`` calls shares
    one query), and every pending id once per ``poll_interval`` (events written by a
    receiver in another process). It exits when nothing is left to watch."""

    def __init__(self, store: EventWaiters, loop: asyncio.AbstractEventLoop) -> None:
        self._store = store
        self._loop = loop
        self._new: set[str] = set()
        self._wake = asyncio.Event()
        self.finished = False
        self._task = loop.create_task(self._run(), name="akool-webhook-store-watcher")

    def watch(self, job_id: str) -> None:
        self._new.add(job_id)
        self._wake.set()

    def cancel(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        store, loop = self._store, self._loop
        next_full = loop.time() + store.poll_interval
        try:
            while True:
                delay = max(0.0, next_full - loop.time())
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                self._wake.clear()
                await asyncio.sleep(0)  # let the rest of a burst of wait_for calls register
                if loop.time() >= next_full:
                    ids = store._pending_ids(loop)
                    next_full = loop.time() + store.poll_interval
                    self._new.clear()
                else:
                    ids, self._new = list(self._new), set()
                if not ids:
                    with store._lock:
                        if not self._new and not store._pending_ids_unlocked(loop):
                            self._retire()
                            return
                    continue
                try:
                    found = await asyncio.to_thread(store.lookup, ids)
                except Exception:  # a DB hiccup must not end waiting; retry next interval
                    log.warning("webhook store check failed; retrying", exc_info=True)
                    continue
                store._resolve_local(loop, found)
        finally:
            with store._lock:
                self._retire()

    def _retire(self) -> None:
        # Caller holds the store lock. Drop our entry so the store keeps no closed loops.
        self.finished = True
        if self._store._watchers.get(self._loop) is self:
            del self._store._watchers[self._loop]


def _resolve(future: asyncio.Future, event: WebhookEvent) -> None:
    if not future.done():
        future.set_result(event)

