"""Coalesced status polls: many waiters in one process, as few status requests as Akool allows.

A triggerer running a thousand deferred face swap tasks, a batch engine and a notebook all
ask "where is job X?" for their own jobs, often in the same instant (polls are aligned to the
clock). For kinds whose status endpoint takes many ids (``JobKind.batch_poll``: face swap and
re-age ``listbyids``), `StatusCoalescer` merges every request that arrives within a short
window into one ``client.statuses()`` call, so those thousand tasks cost ten ``listbyids``
requests per tick instead of a thousand. Other kinds have no batch endpoint: merging would
save nothing and would let one unknown id fail everybody's poll, so their ids are polled one
request each, and concurrent callers asking for the same id share that request.

A failure reaches every caller whose ids were in the failed request; nothing waits forever.
Async, one event loop per coalescer; no Airflow, no pandas.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from akool_flows.api.errors import NotFoundError
from akool_flows.api.jobs import JobStatus
from akool_flows.api.kinds import get_kind

__all__ = ["COALESCE_WINDOW", "StatusCoalescer"]

#: Status requests of one batch-pollable kind arriving within this many seconds are merged.
#: Long enough to catch every poller woken by the same clock tick, short enough not to matter.
COALESCE_WINDOW = 0.05


class StatusCoalescer:
    """Status polls of many concurrent callers over one async client (`AsyncAkoolClient`).

    :param client: the client to poll with (the caller keeps owning it), or
    :param connect: ``async () -> client``, called on first use; that client is closed by `aclose`.
    :param window: seconds during which requests for one batch-pollable kind are merged.
    :param max_concurrency: single-id status requests in flight at once (kinds without a
        batch endpoint).
    """

    def __init__(self, client: Any = None, *, connect: Callable[[], Awaitable[Any]] | None = None,
                 window: float = COALESCE_WINDOW, max_concurrency: int = 16) -> None:
        if (client is None) == (connect is None):
            raise ValueError("give either client or connect")
        if not window >= 0:
            raise ValueError(f"window must be >= 0 seconds, got {window!r}")
        self._client = client
        self._connect = connect
        self._owns_client = client is None
        self.window = float(window)
        self._client_lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(max_concurrency)
        #: kind -> (ids asked for, futures of the callers waiting) of the window being collected.
        self._pending: dict[str, tuple[set[str], list[asyncio.Future[dict[str, JobStatus]]]]] = {}
        self._flushers: dict[str, asyncio.Task[None]] = {}
        #: (kind, job id) -> the single-id request in flight that callers share.
        self._in_flight: dict[tuple[str, str], asyncio.Task[JobStatus | None]] = {}
        #: Client status calls made (each may answer many callers); for tests and metrics.
        self.requests_sent = 0

    async def client(self) -> Any:
        """The client, connected on first use."""
        async with self._client_lock:
            if self._client is None:
                assert self._connect is not None
                self._client = await self._connect()
            return self._client

    # --- the interface ------------------------------------------------------------------------

    async def status(self, kind: str, job_id: str) -> JobStatus:
        """One job's status; `NotFoundError` when Akool does not know the id."""
        found = await self.statuses(kind, [job_id])
        if job_id not in found:
            raise NotFoundError(f"{kind} job {job_id} does not exist", code=1008)
        return found[job_id]

    async def statuses(self, kind: str, ids: Iterable[str]) -> dict[str, JobStatus]:
        """Statuses of `ids` (all of one kind); ids Akool does not know are absent."""
        k = get_kind(kind)
        wanted = list(dict.fromkeys(ids))
        if not wanted:
            return {}
        if not k.batch_poll:
            answers = await asyncio.gather(*(self._single(k.name, i) for i in wanted))
            return {i: st for i, st in zip(wanted, answers) if st is not None}
        loop = asyncio.get_running_loop()
        future: asyncio.Future[dict[str, JobStatus]] = loop.create_future()
        id_set, waiters = self._pending.setdefault(k.name, (set(), []))
        id_set.update(wanted)
        waiters.append(future)
        if k.name not in self._flushers:
            self._flushers[k.name] = loop.create_task(self._flush(k.name))
        found = await future
        return {i: found[i] for i in wanted if i in found}

    async def aclose(self) -> None:
        """Stop: callers still waiting are cancelled; a client made by `connect` is closed."""
        for _, waiters in self._pending.values():
            for w in waiters:
                w.cancel()
        tasks = [*self._in_flight.values(), *self._flushers.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._owns_client and self._client is not None:
            client, self._client = self._client, None
            await client.aclose()

    # --- batch-pollable kinds: one request per window ------------------------------------------

    async def _flush(self, kind: str) -> None:
        try:
            await asyncio.sleep(self.window)
        finally:
            # From here on, new callers start the next window.
            ids, waiters = self._pending.pop(kind, (set(), []))
            self._flushers.pop(kind, None)
        try:
            client = await self.client()
            self.requests_sent += 1
            found = await client.statuses(kind, sorted(ids))
        except Exception as exc:  # noqa: BLE001 - every waiter gets it: they all asked in this request
            _settle(waiters, exception=exc)
        except BaseException:
            _settle(waiters, cancel=True)
            raise
        else:
            _settle(waiters, result=found)

    # --- other kinds: one request per id, shared by callers asking at the same time ------------

    async def _single(self, kind: str, job_id: str) -> JobStatus | None:
        key = (kind, job_id)
        task = self._in_flight.get(key)
        if task is None:
            task = self._in_flight[key] = asyncio.get_running_loop().create_task(self._fetch_one(kind, job_id))
            task.add_done_callback(lambda t: self._forget(key, t))
        # shield: one caller giving up must not cancel the request the others wait for.
        return await asyncio.shield(task)

    async def _fetch_one(self, kind: str, job_id: str) -> JobStatus | None:
        async with self._slots:
            client = await self.client()
            self.requests_sent += 1
            try:
                return await client.status(kind, job_id)
            except NotFoundError:
                return None  # unknown to Akool: absent from the answer, as with a batch endpoint

    def _forget(self, key: tuple[str, str], task: asyncio.Task[JobStatus | None]) -> None:
        if self._in_flight.get(key) is task:
            del self._in_flight[key]
        if not task.cancelled():
            task.exception()  # retrieved here: when every caller gave up, nobody else reads it


def _settle(futures: list[asyncio.Future[Any]], *, result: Any = None, exception: BaseException | None = None,
            cancel: bool = False) -> None:
    for f in futures:
        if f.done():
            continue  # that caller gave up (cancelled) already
        if cancel:
            f.cancel()
        elif exception is not None:
            f.set_exception(exception)
        else:
            f.set_result(result)
