"""The moment a create request is handed to the transport, told to whoever records intents.

A run that dies between recording "I am about to create this" and the request leaving cannot
have created anything, and its rerun may submit by itself; one that dies after may have paid.
Token exchanges, rate-limit waits and face detection happen before that moment and cost
nothing, so the mark is taken at the last step: the sender calls `create_leaving` for a create
call's request - aiohttp once the connection is acquired and before a byte is written, httpx
before its pool (earlier than needed, which only errs towards "may exist"). The callback is per
task (a context variable), so concurrent creates of one batch each mark their own row.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

__all__ = ["create_leaving", "when_create_sent"]

_on_sent: ContextVar[Callable[[], None] | None] = ContextVar("akool_create_sent", default=None)


@contextlib.contextmanager
def when_create_sent(callback: Callable[[], None]) -> Iterator[None]:
    """Call ``callback`` each time a create request of this context (thread or asyncio task) is
    about to be sent: once per attempt, so it must be idempotent."""
    token = _on_sent.set(callback)
    try:
        yield
    finally:
        _on_sent.reset(token)


def create_leaving() -> None:
    """Called by the sender before a create request is written. A callback that raises stops
    the request: better unsent than sent unrecorded."""
    callback = _on_sent.get()
    if callback is not None:
        callback()
