"""`BackgroundRun`: on the running loop or in a thread; two-step cancel; errors kept, not raised."""

from __future__ import annotations

import asyncio
import threading

import pytest

from akool_flows.notebook.runner import BackgroundRun


async def _stubborn(cancel: asyncio.Event) -> str:
    # Ignores the polite cancel: only the second, hard cancel stops it.
    for _ in range(500):
        await asyncio.sleep(0.01)
    return "done"


async def _polite(cancel: asyncio.Event) -> str:
    for _ in range(500):
        if cancel.is_set():
            return "stopped early"
        await asyncio.sleep(0.01)
    return "done"


async def test_runs_as_a_task_on_the_running_loop() -> None:
    seen = []
    run = BackgroundRun(_polite, on_done=lambda r: seen.append((r.state, threading.current_thread().name)))
    run.start()
    assert run.mode == "loop" and run.state == "running"
    assert run.cancel() == "cancelling"
    assert await run.wait(timeout=5)
    assert run.result == "stopped early" and run.state == "cancelled"
    assert seen == [("cancelled", threading.current_thread().name)]  # callbacks on the widgets' thread
    other = BackgroundRun(_polite).start()
    with pytest.raises(RuntimeError, match="cannot block the event loop"):
        other.join()
    other.cancel()
    assert await other.wait(timeout=5)


async def test_second_cancel_aborts() -> None:
    run = BackgroundRun(_stubborn).start()
    await asyncio.sleep(0.05)
    assert run.cancel() == "cancelling"
    await asyncio.sleep(0.05)
    assert not run.done()
    assert run.cancel() == "aborted"
    assert await run.wait(timeout=2) and run.state == "cancelled" and run.result is None
    assert run.cancel() == "idle"


def test_thread_mode_without_a_loop() -> None:
    run = BackgroundRun(_polite).start()
    assert run.mode == "thread"
    run.cancel()  # may land before the thread's loop exists: it is read when the loop starts
    assert run.join(timeout=5) and run.result == "stopped early"


def test_errors_are_kept_for_the_app_to_show() -> None:
    async def boom(cancel: asyncio.Event) -> None:
        raise ValueError("bad input")

    run = BackgroundRun(boom).start()
    assert run.join(timeout=5)
    assert run.state == "failed" and isinstance(run.error, ValueError)


def test_cannot_start_twice_or_with_a_bad_mode() -> None:
    run = BackgroundRun(_polite).start()
    with pytest.raises(RuntimeError, match="already started"):
        run.start()
    run.cancel()
    run.join(5)
    with pytest.raises(ValueError, match="mode must be"):
        BackgroundRun(_polite, mode="process")  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="needs a running event loop"):
        BackgroundRun(_polite, mode="loop").start()
