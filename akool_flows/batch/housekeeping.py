"""What runs beside the workers: renew the lease, flush outcomes to the ledger and the results
file, register job ids with the webhook store and read its events, report progress.

Any failure here reaches the run (it stops: `Run.abort` / `Run.lost_lease`) instead of silently
ending the lease renewals, the flushes and the progress reports while workers keep paying.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from akool_flows.batch.errors import LeaseLostError, LedgerError

if TYPE_CHECKING:
    from akool_flows.batch.engine import Run

__all__ = ["housekeeping", "flush", "flush_quietly", "retry_unsaved"]

log = logging.getLogger("akool_flows.batch")

_TICK = 0.05


async def housekeeping(run: Run, workers: asyncio.Future[Any]) -> None:
    """Runs beside the workers; any failure here reaches the run (stops it) instead of
    silently ending the lease renewals, the flushes and the progress reports."""
    try:
        await _housekeep(run, workers)
    except asyncio.CancelledError:
        raise
    except LeaseLostError as exc:
        run.lost_lease(exc)
    except Exception as exc:  # noqa: BLE001 - see the docstring
        run.abort("background bookkeeping", exc)


async def _housekeep(run: Run, workers: asyncio.Future[Any]) -> None:
    last_events = last_progress = 0.0
    last_lease = time.monotonic()
    event_interval = min(0.25, run.opts.poll_interval)
    while not workers.done():
        await asyncio.sleep(_TICK)
        now = time.monotonic()
        cancel = run.opts.cancel
        if cancel is not None and not run.cancelled and cancel.is_set():
            run.cancelled = True
            run.stop("cancel", "the run was cancelled")
            run.leave_running("not waited for: the run was cancelled; rerun to collect it")
        if run.feed is not None:
            await run.feed.register_pending()  # soon after the create: the receiver needs the id
            if now - last_events >= event_interval:
                last_events = now
                await _check_events(run)
        retry_unsaved(run)
        flush(run)
        if run.opts.progress is not None and now - last_progress >= 0.5:
            last_progress = now
            run.report()
        if now - last_lease >= run.opts.lease_ttl / 3:
            last_lease = now
            run.ledger.renew(run.batch_id, run.generation, ttl=run.opts.lease_ttl)


async def _check_events(run: Run) -> None:
    assert run.feed is not None
    inflight = run.sched.inflight
    if not inflight:
        return
    found = await run.feed.terminal(list(inflight))
    now = time.monotonic()
    for job_id, st in found.items():
        rec = inflight.get(job_id)
        if rec is None or rec.done:
            continue
        if st is None:  # ended, but the event lacks the result: one status call fetches it
            run.sched.schedule(rec, now)
            run.sched.wake_all()
        else:
            run.finish(rec, st, st.state)
    if not inflight:
        run.sched.wake_all()


def flush(run: Run) -> None:
    if run._finish_buffer:
        items, run._finish_buffer = run._finish_buffer, []
        try:
            run.ledger.finish_many(run.batch_id, items)
        except BaseException:
            run._finish_buffer = items + run._finish_buffer  # kept for the next try
            raise
    if run.rows.incremental is not None:
        run.rows.incremental.flush()


def flush_quietly(run: Run) -> None:
    """At the end: a failed write stops the run (if nothing else did) and is reported, not raised."""
    try:
        flush(run)
    except (LedgerError, OSError) as exc:
        if run.stopped_by != "error":
            run.abort("writing outcomes", exc)
        log.error("outcomes of %d row(s) could not be written (%s); they are in the results",
                  len(run._finish_buffer), exc)


def retry_unsaved(run: Run) -> None:
    for i, (key, job_id, task_id, at) in list(run.unsaved.items()):
        try:
            run.ledger.mark_submitted(run.batch_id, key, job_id, task_id, at)
        except (LedgerError, OSError):
            return
        del run.unsaved[i]
