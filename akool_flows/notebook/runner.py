"""Run a batch in the background of a notebook kernel without blocking it.

ipykernel runs an asyncio loop on the main thread, and cell code and widget callbacks run on it.
A run started from a Run button therefore becomes a task on that loop: the callback returns at
once, the kernel stays responsive, widget updates happen on the thread that owns the widgets.
Outside a running loop (a plain script, a blocking ``app.run()`` call inside a cell) the run gets
a worker thread with its own loop instead.

Cancel has two steps. The first sets the engine's cancel event (stop submitting; what is in
flight is recorded so nothing is paid twice). The second cancels the task outright.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Literal, TypeVar

__all__ = ["BackgroundRun", "RunState"]

T = TypeVar("T")
RunState = Literal["pending", "running", "finished", "failed", "cancelled"]
Mode = Literal["auto", "loop", "thread"]


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class BackgroundRun(Generic[T]):
    """One coroutine run in the background: on the caller's running loop, or in a thread.

    `make_coro(cancel_event)` builds the coroutine; `cancel_event` is an ``asyncio.Event`` of the
    loop the coroutine runs on. `on_done(run)` is called once, on that loop, when it ends.
    """

    def __init__(self, make_coro: Callable[[asyncio.Event], Awaitable[T]], *,
                 on_done: Callable[[BackgroundRun[T]], None] | None = None, mode: Mode = "auto",
                 name: str = "akool-run") -> None:
        if mode not in ("auto", "loop", "thread"):
            raise ValueError(f"mode must be 'auto', 'loop' or 'thread', got {mode!r}")
        self._make_coro = make_coro
        self._on_done = on_done
        self._requested_mode = mode
        self.name = name
        self.mode: Literal["loop", "thread"] | None = None
        self.state: RunState = "pending"
        self.result: T | None = None
        self.error: BaseException | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.cancel_requested = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._cancel_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    def start(self) -> BackgroundRun[T]:
        """Start the run and return at once."""
        if self.state != "pending":
            raise RuntimeError(f"this run was already started (state {self.state!r})")
        loop = _running_loop()
        mode = self._requested_mode
        if mode == "auto":
            mode = "loop" if loop is not None else "thread"
        if mode == "loop" and loop is None:
            raise RuntimeError("mode='loop' needs a running event loop in this thread (a notebook kernel)")
        self.mode = mode
        self.state = "running"
        self.started_at = time.monotonic()
        if mode == "loop":
            assert loop is not None
            self._loop = loop
            self._cancel_event = asyncio.Event()
            self._task = loop.create_task(self._main(), name=self.name)
            self._ready.set()
        else:
            self._thread = threading.Thread(target=self._thread_main, name=self.name, daemon=True)
            self._thread.start()
        return self

    def _thread_main(self) -> None:
        async def body() -> None:
            self._loop = asyncio.get_running_loop()
            self._cancel_event = asyncio.Event()
            self._task = asyncio.current_task()
            if self.cancel_requested:
                self._cancel_event.set()
            self._ready.set()
            await self._main()
        asyncio.run(body())

    async def _main(self) -> None:
        assert self._cancel_event is not None
        try:
            self.result = await self._make_coro(self._cancel_event)
            self.state = "cancelled" if self.cancel_requested else "finished"
        except asyncio.CancelledError:
            self.state = "cancelled"
        except Exception as exc:  # noqa: BLE001 - reported to the user, never raised into the kernel
            self.error = exc
            self.state = "failed"
        finally:
            self.finished_at = time.monotonic()
            try:
                if self._on_done is not None:
                    self._on_done(self)
            finally:
                self._finished.set()

    # --- control ---------------------------------------------------------------------------------

    def cancel(self) -> str:
        """First call: ask the engine to stop submitting ("cancelling"). Second call: cancel the
        task itself ("aborted"). Returns which of the two happened ("idle" when not running)."""
        if self.done():
            return "idle"
        if not self.cancel_requested:
            self.cancel_requested = True
            self._call_in_loop(lambda: self._cancel_event.set() if self._cancel_event else None)
            return "cancelling"
        self._call_in_loop(lambda: self._task.cancel() if self._task else None)
        return "aborted"

    def _call_in_loop(self, fn: Callable[[], Any]) -> None:
        if not self._ready.is_set():
            return  # the thread has not started its loop yet; it reads cancel_requested itself
        assert self._loop is not None
        if _running_loop() is self._loop:
            fn()
        else:
            self._loop.call_soon_threadsafe(fn)

    def done(self) -> bool:
        return self._finished.is_set()

    @property
    def elapsed(self) -> float:
        if self.started_at is None:
            return 0.0
        return (self.finished_at or time.monotonic()) - self.started_at

    async def wait(self, timeout: float | None = None) -> bool:
        """Wait (without blocking the loop) until the run ends; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._finished.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def join(self, timeout: float | None = None) -> bool:
        """Block until the run ends; False on timeout. Not allowed on the loop the run lives on
        (it would wait for itself): use ``await run.wait()`` there."""
        if self.mode == "loop" and _running_loop() is self._loop:
            raise RuntimeError("cannot block the event loop this run is on; use `await app.wait()` instead")
        return self._finished.wait(timeout)
