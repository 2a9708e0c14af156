"""`AkoolJobTrigger`: wait for Akool jobs on the triggerer, not in a worker slot.

A trigger finishes when every job it watches has completed or failed, from whichever comes
first: a webhook event in the event store (when the connection names one) or a status poll.

Polls are cheap at scale: every trigger on one triggerer process shares one client per
connection, polls on a clock-aligned grid (all triggers with the same ``poll_interval`` poll
in the same instant), and the status requests made in that instant are merged per job kind
by `akool_flows.api.coalesce.StatusCoalescer`, so a thousand deferred face swap tasks cost
ten ``listbyids`` requests per interval, not a thousand. Transient failures (network, 5xx, rate limit) back off and retry; a job that
failed reports Akool's code and message.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from akool_flows.airflow.shared import shared_poller, shared_store
from akool_flows.api.coalesce import StatusCoalescer
from akool_flows.api.errors import AkoolError
from akool_flows.api.jobs import JobStatus
from akool_flows.api.kinds import get_kind
from akool_flows.api.retry import backoff_delay

__all__ = ["AkoolJobTrigger", "shared_poller"]

#: Longest pause between polls after transient failures, seconds.
MAX_BACKOFF = 300.0
#: Above this many pending jobs, webhook events are read every EVENT_CHECK_INTERVAL seconds
#: instead of one waiter per job.
MAX_EVENT_WAITERS = 1000
EVENT_CHECK_INTERVAL = 2.0
#: Polls in a row in which a job id is unknown to Akool before the trigger gives up on it.
MISSING_POLLS_LIMIT = 3


def _next_tick(interval: float, now: float | None = None) -> float:
    """Seconds until the next multiple of `interval` on the wall clock (aligned polling)."""
    now = time.time() if now is None else now
    return max(0.0, (math.floor(now / interval) + 1) * interval - now)


@dataclass
class _Watch:
    """Where one trigger run stands."""

    pending: list[str]
    finished: dict[str, JobStatus] = field(default_factory=dict)
    #: Last polled status of every job seen (for the event's ``jobs`` on timeout or error).
    last: dict[str, JobStatus] = field(default_factory=dict)
    #: job id -> polls in a row in which Akool did not know it.
    missing: dict[str, int] = field(default_factory=dict)
    #: Transient poll failures in a row.
    errors: int = 0
    store_url: str | None = None
    #: Jobs whose terminal webhook event arrived but lacked fields (verdict, credits): a status
    #: call finishes them, and their event is not waited for again.
    heard: set[str] = field(default_factory=set)

    def finish(self, job_id: str, st: JobStatus) -> None:
        self.finished[job_id] = st
        self.pending.remove(job_id)

    @property
    def failed(self) -> list[JobStatus]:
        return [s for s in self.finished.values() if s.state == "failed"]


class AkoolJobTrigger(BaseTrigger):
    """Fire once every job in `job_ids` (all of one `kind`) has completed or failed.

    :param kind: registry job kind (``akool_flows.api.kinds.KINDS``).
    :param job_ids: Akool ``_id`` values to watch (one for an operator, many for a batch).
    :param akool_conn_id: the ``akool`` connection (read on the triggerer with ``aget_connection``).
    :param poll_interval: seconds between status polls (aligned to the wall clock).
    :param end_time: epoch seconds after which the trigger reports ``timeout`` (None: no limit).
    :param use_webhook_store: also complete jobs from the webhook event store named by the
        connection's ``webhook_store_url`` extra (read on the triggerer, so no database URL
        travels in the trigger's arguments or logs).
    :param webhook_poll_interval: poll interval while webhooks are available (a fallback
        for lost callbacks); default ``5 * poll_interval``.
    :param cancel_ids: ``{job_id: id the cancel endpoint takes}`` for `on_kill`.
    :param include_jobs: put every job's status in the event (False: counts only, for big batches).
    :param max_consecutive_errors: transient poll failures in a row before giving up.
    :param max_ids_per_poll: poll at most this many pending jobs per interval, oldest first
        (jobs finish roughly in submission order; the trigger cannot fire before the oldest
        is done anyway). Keeps a 10,000-job batch of a kind without a batch status endpoint
        from costing 10,000 requests per interval.

    The event payload: ``status`` (``success`` | ``failed`` | ``timeout`` | ``error``),
    ``kind``, ``jobs`` (status dicts), ``pending`` (ids not finished), ``counts``, ``message``
    and ``error_code`` (Akool's code for the first failure).
    """

    def __init__(self, *, kind: str, job_ids: list[str] | str, akool_conn_id: str = "akool_default",
                 poll_interval: float = 10.0, end_time: float | None = None,
                 use_webhook_store: bool = False, webhook_poll_interval: float | None = None,
                 cancel_ids: dict[str, str] | None = None, include_jobs: bool = True,
                 max_consecutive_errors: int = 30, max_ids_per_poll: int = 1000) -> None:
        super().__init__()
        self.kind = get_kind(kind).name
        self.job_ids = [job_ids] if isinstance(job_ids, str) else list(job_ids)
        if not self.job_ids:
            raise ValueError("job_ids: give at least one job id")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        self.akool_conn_id = akool_conn_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.use_webhook_store = bool(use_webhook_store)
        self.webhook_poll_interval = webhook_poll_interval
        self.cancel_ids = dict(cancel_ids or {})
        self.include_jobs = include_jobs
        self.max_consecutive_errors = max_consecutive_errors
        if not isinstance(max_ids_per_poll, int) or max_ids_per_poll < 1:
            raise ValueError(f"max_ids_per_poll must be an integer >= 1, got {max_ids_per_poll!r}")
        self.max_ids_per_poll = max_ids_per_poll

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (f"{type(self).__module__}.{type(self).__qualname__}", {
            "kind": self.kind, "job_ids": self.job_ids, "akool_conn_id": self.akool_conn_id,
            "poll_interval": self.poll_interval, "end_time": self.end_time,
            "use_webhook_store": self.use_webhook_store, "webhook_poll_interval": self.webhook_poll_interval,
            "cancel_ids": self.cancel_ids, "include_jobs": self.include_jobs,
            "max_consecutive_errors": self.max_consecutive_errors, "max_ids_per_poll": self.max_ids_per_poll,
        })

    # --- run --------------------------------------------------------------------------------

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield exactly one event. Every failure (connection, client, webhook store) becomes an
        ``error`` event, as the community providers do: an exception escaping a trigger fails
        the task through Airflow's generic trigger-failure path, where ``execute_complete``
        never runs (no Akool-specific message, no collection of a batch's finished rows) and
        the raw traceback is stored in ``next_kwargs`` as plain JSON."""
        watch = _Watch(pending=list(dict.fromkeys(self.job_ids)))
        self.log.info("waiting for %d %s job(s): %s", len(watch.pending), self.kind,
                      ", ".join(watch.pending[:5]) + (" ..." if len(watch.pending) > 5 else ""))
        event: TriggerEvent | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                poller = await stack.enter_async_context(shared_poller(self.akool_conn_id))
                store = None
                if await self._store_url(watch):
                    store = await stack.enter_async_context(shared_store(watch.store_url))
                event = await self._watch(poller, store, watch)
        except Exception as exc:  # noqa: BLE001 - reported to the task, not swallowed
            if event is not None:
                # The answer is known; a failure while letting go of the client must not replace it.
                self.log.warning("after the %s event, releasing the client failed: %s", event.payload["status"], exc)
            else:
                self.log.exception("waiting for %s jobs failed", self.kind)
                event = self._event("error", watch, message=self._describe(exc, watch),
                                    error_code=getattr(exc, "code", None))
        yield event

    async def _store_url(self, watch: _Watch) -> str | None:
        """The webhook event store URL named by the connection (read here, on the triggerer)."""
        if self.use_webhook_store:
            from akool_flows.airflow.hooks import AkoolHook

            watch.store_url = await AkoolHook(self.akool_conn_id).awebhook_store_url()
        return watch.store_url

    async def _watch(self, poller: StatusCoalescer, store: Any, watch: _Watch) -> TriggerEvent:
        """Poll (and read webhook events) until every job is done, the deadline passes or polling fails."""
        interval = (self.webhook_poll_interval or self.poll_interval * 5) if store is not None else self.poll_interval
        # Without events, poll at once: the job may already be done. With them, the store is read
        # first (an event that came before this trigger is there); polling is the fallback.
        next_poll = 0.0 if store is None else time.monotonic() + _next_tick(interval)
        while watch.pending:
            if time.monotonic() >= next_poll:
                outcome = await self._poll(poller, watch)
                if isinstance(outcome, TriggerEvent):
                    return outcome
                # A job heard of by webhook but not yet done by its status: poll at the plain interval.
                tick = self.poll_interval if watch.heard & set(watch.pending) else interval
                next_poll = time.monotonic() + (outcome if outcome is not None else _next_tick(tick))
            if not watch.pending:
                break
            if self.end_time is not None and time.time() >= self.end_time:
                return self._event("timeout", watch, message=f"{len(watch.pending)} {self.kind} job(s) not "
                                                             "finished by the deadline")
            if await self._sleep(store, watch, next_poll):
                next_poll = 0.0  # events that lack the verdict or cost: one status call now
        return self._event("failed" if watch.failed else "success", watch)

    async def _poll(self, poller: StatusCoalescer, watch: _Watch) -> TriggerEvent | float | None:
        """One status poll of the oldest pending jobs: an event that ends the wait, a backoff
        delay after a transient failure, or None (poll again at the next tick)."""
        polled = watch.pending[: self.max_ids_per_poll]
        try:
            found = await poller.statuses(self.kind, polled)
        except AkoolError as exc:
            if not exc.retryable:
                return self._event("error", watch, message=f"status poll failed: {exc}", error_code=exc.code)
            watch.errors += 1
            if watch.errors > self.max_consecutive_errors:
                return self._event("error", watch, error_code=exc.code,
                                   message=f"{watch.errors} status polls in a row failed; last: {exc}")
            delay = backoff_delay(watch.errors, base=self.poll_interval, cap=MAX_BACKOFF)
            self.log.warning("status poll failed (%d in a row), retrying in %.1fs: %s", watch.errors, delay, exc)
            return delay
        watch.errors = 0
        for job_id in polled:
            st = found.get(job_id)
            if st is None:
                watch.missing[job_id] = watch.missing.get(job_id, 0) + 1
                if watch.missing[job_id] >= MISSING_POLLS_LIMIT:
                    return self._event("error", watch, error_code=1008,
                                       message=f"{self.kind} job {job_id} is unknown to Akool "
                                               f"({watch.missing[job_id]} polls in a row)")
                continue
            watch.missing.pop(job_id, None)
            watch.last[job_id] = st
            if st.done:
                watch.finish(job_id, st)
        return None

    def _take_events(self, events: dict[str, Any], watch: _Watch) -> bool:
        """Finish the jobs whose events say everything; True when some event said "done" but
        lacks what the registry says a webhook never carries (they need a status call)."""
        kind = get_kind(self.kind)
        fetch = False
        for job_id, event in events.items():
            st = JobStatus.from_event(kind, event)
            if st is None or job_id not in watch.pending or job_id in watch.heard:
                continue
            if kind.missing_after_event(st):
                watch.heard.add(job_id)
                fetch = True
            else:
                watch.finish(job_id, st)
        return fetch

    async def _sleep(self, store: Any, watch: _Watch, until: float) -> bool:
        """Wait until `until` (or the deadline), or until a webhook event finishes a job; True
        when an event asks for a status call now."""
        wait = max(0.0, until - time.monotonic())
        if self.end_time is not None:
            wait = min(wait, max(0.0, self.end_time - time.time()))
        if store is None:
            await asyncio.sleep(wait)
            return False
        return self._take_events(await self._wait_for_events(store, [j for j in watch.pending
                                                                    if j not in watch.heard], wait), watch)

    @staticmethod
    async def _wait_for_events(store: Any, ids: list[str], timeout: float) -> dict[str, Any]:
        """Terminal events of `ids`, as soon as one arrives or after `timeout` (then usually none).

        Every trigger on the loop waits through the shared store's one watcher, which reads the
        events of all watched ids in one query per interval."""
        if timeout <= 0 or not ids:
            await asyncio.sleep(timeout)
            return {}
        if len(ids) > MAX_EVENT_WAITERS:
            # A future per job is more than a batch this big needs: read its ids every few seconds.
            await asyncio.sleep(min(timeout, EVENT_CHECK_INTERVAL))
            try:
                return await asyncio.to_thread(store.latest_many, ids, terminal_only=True)
            except Exception:  # noqa: BLE001 - a store hiccup only delays: polling covers it
                return {}
        waiters = {asyncio.ensure_future(store.wait_for(job_id, timeout)): job_id for job_id in ids}
        found: dict[str, Any] = {}
        try:
            pending = set(waiters)
            while pending and not found:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for w in done:
                    if not w.cancelled() and w.exception() is None and w.result() is not None:
                        found[waiters[w]] = w.result()
        finally:
            for w in waiters:
                w.cancel()
            await asyncio.gather(*waiters, return_exceptions=True)
        return found

    def _describe(self, exc: Exception, watch: _Watch) -> str:
        """An unexpected failure for the task's log and the event (plain JSON in the metadata DB):
        no store URL (it may carry a database password), bounded length."""
        text = f"waiting for the {self.kind} job(s) failed: {type(exc).__name__}: {exc}"
        if watch.store_url:
            text = text.replace(watch.store_url, "<webhook_store_url>")
        return text[:1000] + (" ..." if len(text) > 1000 else "")

    def _event(self, status: str, watch: _Watch, *, message: str | None = None,
               error_code: int | None = None) -> TriggerEvent:
        failed = watch.failed
        if failed and message is None:
            first = failed[0]
            error_code = first.error_code
            message = (f"{len(failed)} of {len(self.job_ids)} {self.kind} job(s) failed; {first.job_id}: "
                       f"[{first.error_code}] {first.error_message or 'no message from Akool'}")
        finished = watch.finished
        counts = {"total": len(self.job_ids), "completed": sum(s.state == "completed" for s in finished.values()),
                  "failed": len(failed), "pending": len(watch.pending)}
        payload: dict[str, Any] = {"status": status, "kind": self.kind, "counts": counts,
                                   "pending": list(watch.pending), "message": message, "error_code": error_code}
        if self.include_jobs:
            order = {j: i for i, j in enumerate(self.job_ids)}
            states = {**watch.last, **finished}
            payload["jobs"] = [states[j].to_dict() for j in sorted(states, key=order.__getitem__)]
        return TriggerEvent(payload)

    # --- kill -------------------------------------------------------------------------------

    async def on_kill(self) -> None:
        """The user killed the deferred task: cancel the jobs where Akool allows it."""
        kind = get_kind(self.kind)
        if not kind.cancellable:
            self.log.info("%s jobs cannot be cancelled through the API; they run to completion", self.kind)
            return
        from akool_flows.airflow.hooks import AkoolHook

        async with await AkoolHook(self.akool_conn_id).aget_async_client() as client:
            for job_id in self.job_ids:
                target = self.cancel_ids.get(job_id) or (job_id if kind.cancel_id_field == "_id" else None)
                if not target:
                    continue
                try:
                    await asyncio.wait_for(client.cancel(self.kind, target), timeout=15)
                    self.log.info("cancelled %s job %s", self.kind, job_id)
                except (AkoolError, asyncio.TimeoutError) as exc:
                    self.log.warning("could not cancel %s job %s: %s", self.kind, job_id, exc)
