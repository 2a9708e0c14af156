"""What every trigger on one triggerer shares, per event loop: one status poller per connection
and one webhook event store per store URL.

A triggerer runs up to a thousand triggers on one event loop (``[triggerer] capacity``). Before
this module each deferred task opened its own event store (its own connection pool) and read
it twice a second: 120 deferred tasks held 121 Postgres connections and ~170 exhausted a
default ``max_connections = 100`` server. Shared, the loop holds one small pool per store URL
and one watcher (`WebhookEventStore`'s per-loop watcher) reads the terminal events of every
watched job in one query per interval, however many triggers wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from akool_flows.api.coalesce import StatusCoalescer

__all__ = ["STORE_POOL", "shared_poller", "shared_store"]

#: Connection pool of the triggerer's shared event store (server databases): the watcher holds
#: one connection at a time; the rest absorbs big-batch triggers reading directly.
STORE_POOL = {"pool_size": 2, "max_overflow": 2, "pool_pre_ping": True, "pool_recycle": 1800}
STORE_APPLICATION_NAME = "akool-triggerer-store"
#: Seconds between the shared watcher's reads of all watched ids.
STORE_CHECK_INTERVAL = 0.5


class _Entry:
    def __init__(self, value: Any, close: Callable[[], Awaitable[None]]) -> None:
        self.value = value
        self.close = close
        self.users = 0


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[str, str], _Entry]] = \
    weakref.WeakKeyDictionary()
_LOCKS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def _shared(key: tuple[str, str], make: Callable[[], Awaitable[_Entry]]) -> AsyncIterator[Any]:
    """The loop's entry for `key`, made by the first user and closed when the last one leaves."""
    loop = asyncio.get_running_loop()
    per_loop = _SHARED.setdefault(loop, {})
    lock = _LOCKS.setdefault(loop, asyncio.Lock())
    async with lock:  # a burst of triggers starting together must make one entry, not many
        entry = per_loop.get(key)
        if entry is None:
            entry = per_loop[key] = await make()
        entry.users += 1
    try:
        yield entry.value
    finally:
        entry.users -= 1
        if entry.users == 0 and per_loop.get(key) is entry:
            del per_loop[key]
            await entry.close()


async def _connect(conn_id: str) -> Any:
    from akool_flows.airflow.hooks import AkoolHook

    return await AkoolHook(conn_id).aget_async_client()


@contextlib.asynccontextmanager
async def shared_poller(conn_id: str) -> AsyncIterator[StatusCoalescer]:
    """The loop's status poller for `conn_id` (one client, so one token exchange, and coalesced
    polls), shared by every trigger on this triggerer; closed when the last trigger leaves."""

    async def make() -> _Entry:
        poller = StatusCoalescer(connect=lambda: _connect(conn_id))
        return _Entry(poller, poller.aclose)

    async with _shared(("poller", conn_id), make) as poller:
        yield poller


@contextlib.asynccontextmanager
async def shared_store(url: str) -> AsyncIterator[Any]:
    """The loop's `WebhookEventStore` for `url`: one small pool and one watcher for every trigger."""

    async def make() -> _Entry:
        import sqlalchemy as sa

        from akool_flows.webhook.store import WebhookEventStore

        backend = sa.make_url(url).get_backend_name()
        kwargs: dict[str, Any] = {} if backend == "sqlite" else dict(STORE_POOL)
        if backend == "postgresql":
            # Named in pg_stat_activity, so an operator can see what the triggerer holds.
            kwargs["connect_args"] = {"application_name": STORE_APPLICATION_NAME}
        store = await asyncio.to_thread(WebhookEventStore, url, poll_interval=STORE_CHECK_INTERVAL,
                                        engine_kwargs=kwargs)
        return _Entry(store, lambda: asyncio.to_thread(store.close))

    async with _shared(("store", url), make) as store:
        yield store
