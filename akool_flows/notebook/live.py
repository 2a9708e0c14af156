"""The results table while a run goes: the plan's rows, updated from the ledger as the engine writes it.

The ledger is the engine's own record (written before and after every call), read through a
second connection, so the table shows submitted, running and finished rows without the engine
knowing about widgets. Reading and merging 10,000 rows takes ~0.1 s, so it happens on a worker
thread, and so does preparing the grid's cells; only handing them to the widget happens on the
loop. Refreshes are spaced to about a tenth of the run's time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from akool_flows.notebook.frames import apply_ledger, pending_frame
from akool_flows.notebook.ledger_view import LedgerView

__all__ = ["LiveTable"]

#: Seconds between live table rebuilds at least, and per 1,000 rows: each rebuild sends the whole
#: table to the browser, which for 10,000 rows is megabytes (the progress line updates meanwhile).
MIN_INTERVAL = 0.75
PER_THOUSAND_ROWS = 0.5


class LiveTable:
    """The live frame of one run: ``prepare(frame)`` runs on a worker thread with each new frame,
    ``redraw(prepared)`` on the loop."""

    def __init__(self, view: LedgerView, plan: Any, table: pd.DataFrame, batch_id: str,
                 prepare: Callable[[pd.DataFrame], Any], redraw: Callable[[Any], Any]) -> None:
        self.view = view
        self.plan = plan
        self.batch_id = batch_id
        self.frame = pending_frame(plan, table)
        self._prepare = prepare
        self._redraw = redraw
        self.floor = max(MIN_INTERVAL, PER_THOUSAND_ROWS * len(self.frame) / 1000)
        self.interval = self.floor
        self._last = 0.0
        self._busy = False
        self.closed = False

    def tick(self) -> None:
        """A progress report arrived: refresh if it is time and no refresh is under way."""
        now = time.monotonic()
        if self.closed or self._busy or now - self._last < self.interval:
            return
        self._last = now
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.refresh()
            return
        self._busy = True
        future = loop.run_in_executor(None, self._read)

        def apply(done: Any) -> None:
            self._busy = False
            if self.closed or done.cancelled() or done.exception():
                return  # the run ended meanwhile: its final result is what the table shows
            self._show(*done.result())

        future.add_done_callback(apply)

    def refresh(self) -> None:
        """Fold what the ledger says into the frame and redraw, now (on the caller's thread)."""
        self._show(*self._read())

    def close(self) -> None:
        self.closed = True

    def _read(self) -> tuple[pd.DataFrame, Any, float]:
        started = time.monotonic()
        frame = self.frame
        try:
            rows = self.view.rows(self.batch_id)
            if rows:
                frame = apply_ledger(frame, rows, self.plan.duplicate_of)
        except Exception:  # noqa: BLE001 - the table is a view; the run's own result is what counts
            pass
        return frame, self._prepare(frame), time.monotonic() - started

    def _show(self, frame: pd.DataFrame, prepared: Any, took: float) -> None:
        started = time.monotonic()
        self.frame = frame
        self._redraw(prepared)
        # Keep refreshes to about a tenth of the run's time on very large batches.
        self.interval = max(self.floor, 10 * (took + time.monotonic() - started))
