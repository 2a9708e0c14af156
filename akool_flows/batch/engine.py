"""The batch engine: submit every valid row once, wait for every job, account for every row.

One event loop, no task per job: ``concurrency`` worker coroutines share all HTTP work. Each
takes the next due status poll (up to 100 ids per ``listbyids`` call where the kind allows) or,
if none is due, the next row to create (`scheduler`). One housekeeping coroutine renews the
lease, flushes the ledger and the results file, reads webhook events (`events`) and reports
progress. What a row does at the start comes from the ledger (`reconcile`); what a failed create
means is `outcomes.classify_create_failure`; the credits arithmetic is `budget`.

Money rules:

* the ledger records the intent before each create - in the same transaction that checks this
  run still holds the batch's lease and that no other batch of the ledger holds or is sending the
  identical request (`Ledger.claim`) - and the job id right after;
* a create is never sent again unless its failure proves nothing was created;
* a budget stops submission *before* the next row's estimate would cross it;
* any failure of the run's own bookkeeping (ledger, results file, webhook store) stops
  submission at once, keeps every job id received (in the results, and printed) and ends the run
  with ``stopped_by="error"``; losing the lease ends it with ``stopped_by="lease"``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path
from typing import Any

from akool_flows.api.client import AsyncAkoolClient
from akool_flows.api.errors import AkoolError, AuthenticationError, NotFoundError, PermissionDeniedError
from akool_flows.api.ratecontrol import request_cap
from akool_flows.api.jobs import JobStatus
from akool_flows.batch.artifacts import DEFAULT_MAX_BYTES, ArtifactDownloader
from akool_flows.batch.budget import Budget
from akool_flows.batch.creates import submit_row
from akool_flows.batch.errors import BudgetError, LeaseLostError, LedgerError
from akool_flows.batch.events import EventFeed
from akool_flows.batch.export import IncrementalCsv
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.options import BatchOptions
from akool_flows.batch.housekeeping import flush_quietly, housekeeping, retry_unsaved
from akool_flows.batch.plan import BatchPlan
from akool_flows.batch.progress import Progress
from akool_flows.batch.reconcile import reconcile
from akool_flows.batch.results import RESULT_COLUMNS, BatchResult
from akool_flows.batch.rows import RowTable
from akool_flows.batch.scheduler import InFlight, Scheduler
from akool_flows.batch.staging import Stager
from akool_flows.batch.summary import finish_result

__all__ = ["Run"]

log = logging.getLogger("akool_flows.batch")

#: Status polls answering "not found" before a job is declared failed (one can be a replica lag).
MAX_MISSES = 3


class Run:
    """State of one run of one batch."""

    def __init__(self, plan: BatchPlan, client: AsyncAkoolClient, ledger: Ledger, batch_id: str,
                 opts: BatchOptions, stager: Stager | None = None) -> None:
        self.plan = plan
        #: Uploads files named in URL fields just before their create (`staging`).
        self.stager = stager
        self.kind = plan.kind
        self.client = client
        self.ledger = ledger
        self.batch_id = batch_id
        self.opts = opts
        self.rows = RowTable(plan)
        self.budget = Budget(opts.budget_credits)
        self.sched = Scheduler(concurrency=opts.concurrency, poll_interval=float(opts.poll_interval),
                               job_timeout=opts.job_timeout, events=opts.events is not None,
                               fallback_interval=opts.fallback_interval, batch_poll=self.kind.batch_poll)
        self.feed = (EventFeed(opts.events, self.kind,
                               registers=getattr(client, "event_store", None) is not opts.events)
                     if opts.events is not None else None)
        self.results_path = Path(opts.results_path) if opts.results_path is not None else None
        self.generation = 0
        self.submitted_count = 0
        self.refusals: dict[int, int] = {}
        self.stopped_by: str | None = None
        self.stop_message: str | None = None
        self.balance: float | None = None
        self.cancelled = False
        #: Stopped waiting for running jobs (cancel, auth, lease, error): new jobs are not tracked.
        self.abandoned = False
        self.busy = self.polling = 0
        self.poll_slots = max(1, opts.concurrency // 2)
        #: Workers waiting for the account's pace to need them (`_admit`).
        self._gated: list[asyncio.Future[None]] = []
        self.rate = client.rate_control
        self._finish_buffer: list[tuple[Any, ...]] = []
        #: Job ids received whose ledger write failed: retried, and printed if it never succeeds.
        self.unsaved: dict[int, tuple[str, str, str | None, float]] = {}
        self._downloader: ArtifactDownloader | None = None
        self._downloads: set[asyncio.Task[None]] = set()
        self.t_start = 0.0
        self.calls_start = 0

    def est(self, i: int) -> float:
        return self.rows.est(i, self.opts.max_credits_per_row)

    # --- the run ---------------------------------------------------------------------------------

    async def run(self) -> BatchResult:
        self.sched.loop = asyncio.get_running_loop()
        self.t_start = time.monotonic()
        self.calls_start = self.client.request_count
        self.refused_start = self.rate.refused
        valid = [(self.plan.keys[i], i) for i in range(self.rows.n) if self.plan.valid[i]]
        self.ledger.begin_batch(self.batch_id, self.kind.name, valid, endpoint=self.client.base_url,
                                meta={"rows": self.rows.n, "valid": len(valid), "kind": self.kind.name})
        self.generation = self.ledger.acquire(self.batch_id, ttl=self.opts.lease_ttl)
        try:
            return await self._run()
        finally:
            self.sched.close()
            flush_quietly(self)
            if self.rows.incremental is not None:
                try:
                    self.rows.incremental.close()
                except OSError as exc:
                    log.error("cannot write the in-progress results file: %s", exc)
            try:
                self.ledger.release(self.batch_id, self.generation)
            except LedgerError as exc:
                log.warning("could not release the batch lease (it expires by itself): %s", exc)

    async def _run(self) -> BatchResult:
        if self.results_path is not None:
            # Never the results path itself: it may be (or replace) a file the user cares about;
            # the final file replaces it atomically at the end.
            self.rows.incremental = IncrementalCsv(self.partial_path, RESULT_COLUMNS)
        reconcile(self)
        await self._check_budget()
        if self.opts.download_dir is not None:
            self._downloader = ArtifactDownloader(self.opts.download_dir, media=self.kind.result_media,
                                                  max_bytes=self.opts.download_max_bytes or DEFAULT_MAX_BYTES)
            for i in range(self.rows.n):  # finished in an earlier run but never downloaded (or failed to)
                st = self.rows.final[i]
                if (self.rows.outcome[i] == "completed" and st is not None and st.result_urls
                        and not any(a.get("sha256") for a in self.rows.artifacts[i] or [])):
                    self._start_download(i, list(st.result_urls))
        if self.opts.webhook_url and not self.kind.accepts_webhook:
            log.warning("%s jobs take no webhookUrl; completion is by polling", self.kind.name)
        self.report()
        # The user's max_requests_per_second holds for this run's calls (its tasks inherit it),
        # on top of the account's pace that every client of the credential shares.
        with request_cap.limit(self.opts.max_requests_per_second):
            workers = asyncio.gather(*(self._worker() for _ in range(self.opts.concurrency)))
        house = asyncio.ensure_future(housekeeping(self, workers))
        try:
            await workers
        finally:
            house.cancel()
            await asyncio.gather(house, return_exceptions=True)
        if self._downloads:
            await asyncio.gather(*list(self._downloads), return_exceptions=True)
        if self._downloader is not None:
            await self._downloader.aclose()
        if self.feed is not None:
            try:
                await self.feed.register_pending()
            except Exception as exc:  # noqa: BLE001 - reported; the jobs are polled by a rerun
                self.abort("registering job ids with the webhook store", exc)
        retry_unsaved(self)
        flush_quietly(self)
        return finish_result(self)

    @property
    def partial_path(self) -> Path:
        assert self.results_path is not None
        return self.results_path.with_name(self.results_path.name + ".partial.csv")

    async def _check_budget(self) -> None:
        budget = self.budget
        if budget.limit is not None:
            unknown = [i for i in self.sched.queue if self.plan.est[i] is None]
            if unknown and self.opts.max_credits_per_row is None:
                raise BudgetError.unpriced(budget.limit, len(unknown), self.kind.name)
        try:
            self.balance = await self.client.credit_info()
        except (AkoolError, ValueError, TypeError) as exc:
            log.info("account balance not available (%s)", exc)
        budget.limit_to_balance(self.balance)

    # --- stopping ----------------------------------------------------------------------------------

    def stop(self, reason: str, message: str) -> None:
        """Stop submitting: every row not yet sent is cancelled (and stays pending in the ledger)."""
        if self.stopped_by is None:
            self.stopped_by, self.stop_message = reason, message
            log.warning("batch %s: submission stopped (%s): %s", self.batch_id, reason, message)
        for i in self.sched.drain_rows():
            if self.rows.error[i] is None or reason in ("lease", "error"):
                self.rows.error[i] = (None, f"not submitted: {message}")
            self.rows.set_outcome(i, "cancelled")
        self.sched.wake_all()

    def leave_running(self, message: str) -> None:
        """Stop waiting: running jobs stay ``submitted`` (in the ledger too: a rerun collects them)."""
        self.abandoned = True
        for rec in list(self.sched.inflight.values()):
            self.sched.forget(rec)
            self.rows.note[rec.pos] = message
            self.rows.set_outcome(rec.pos, "submitted")
        self.sched.heap.clear()
        self.sched.wake_all()

    def abort(self, what: str, exc: BaseException) -> None:
        """A part of the run's own bookkeeping failed: stop everything, keep what is known."""
        message = f"{what} failed ({type(exc).__name__}: {exc}); stopped so that nothing is paid twice"
        log.error("batch %s: %s", self.batch_id, message)
        self.stop("error", message)
        self.leave_running("not waited for: the run stopped early; rerun to collect it")

    def lost_lease(self, exc: LeaseLostError) -> None:
        self.stop("lease", str(exc))
        self.leave_running("not waited for: another run holds the batch now")

    # --- workers -----------------------------------------------------------------------------------

    async def _worker(self) -> None:
        try:
            await self._work()
        except Exception as exc:  # noqa: BLE001 - a bug must end the run cleanly, not hang it
            log.exception("batch worker failed")
            self.abort("a batch worker", exc)
        finally:
            self._wake_gated()  # a leaving worker lets a waiting one see the end too

    async def _admit(self) -> None:
        """Wait while more calls are in flight than the account's pace needs: ``concurrency``
        is a maximum, and calls queued beyond the pace would only go out at a rate that was
        already found too fast when the server refuses."""
        while self.busy >= self.rate.concurrency(self.opts.concurrency):
            fut = asyncio.get_running_loop().create_future()
            self._gated.append(fut)
            await fut

    def _wake_gated(self) -> None:
        while self._gated:
            fut = self._gated.pop(0)
            if not fut.done():
                fut.set_result(None)
                return

    def _leave(self) -> None:
        self.busy -= 1
        self._wake_gated()

    async def _work(self) -> None:
        sched = self.sched
        while True:
            if self.busy:
                await self._admit()
            # Polls go first, but while rows wait to be created they get at most half the
            # workers: otherwise frequent polls of early jobs would starve the submission.
            submitting = self.stopped_by is None and sched.has_rows()
            poll_slots = max(1, min(self.poll_slots, self.rate.concurrency(self.opts.concurrency) // 2))
            recs = sched.take_polls() if self.polling < poll_slots or not submitting else []
            if recs:
                self.busy += 1
                self.polling += 1
                try:
                    await self._poll(recs)
                finally:
                    self.polling -= 1
                    self._leave()
                continue
            i = self._take_submission()
            if i is not None:
                self.busy += 1
                try:
                    await submit_row(self, i)
                finally:
                    self._leave()
                continue
            if sched.idle() and self.busy == 0:
                sched.wake_all()
                return
            await sched.sleep()

    def take_group(self, i: int) -> list[int]:
        """Row ``i`` and, for a multi-value group, its other rows still waiting to be sent (taken
        off the queue and reserved against the budget here: they go out in the same create)."""
        leader = self.plan.group_of[i]
        if leader is None:
            return [i]
        waiting = []
        for j in self.sched.waiting_where(lambda j: j != i and self.plan.group_of[j] == leader):
            if self.budget.fits(self.est(j)):  # the rest stay queued (and meet the budget there)
                self.budget.reserve(self.est(j))
                waiting.append(j)
        self.sched.remove(waiting)
        return [i, *waiting]

    def _take_submission(self) -> int | None:
        if self.stopped_by is not None:
            return None
        nxt = self.sched.next_row()
        if nxt is None:
            return None
        i, from_retry = nxt
        est = self.est(i)
        if not self.budget.fits(est):
            self.stop("budget", self.budget.overrun_message(est))
            return None
        self.sched.pop_row(from_retry)
        self.budget.reserve(est)
        return i

    # --- waiting -----------------------------------------------------------------------------------

    async def _poll(self, recs: list[InFlight]) -> None:
        try:
            await self._poll_inner(recs)
        finally:
            for rec in recs:
                rec.taken = False

    async def _poll_inner(self, recs: list[InFlight]) -> None:
        try:
            if self.kind.batch_poll:
                found = await self.client.statuses(self.kind.name, [r.job_id for r in recs])
            else:
                found = {recs[0].job_id: await self.client.status(self.kind.name, recs[0].job_id)}
        except NotFoundError:
            found = {}
        except (AuthenticationError, PermissionDeniedError) as exc:
            self.stop("auth", f"Akool refused the credentials or permission: {exc}")
            self.leave_running(f"not waited for: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - transient (after the client's retries) or unexpected
            log.info("status poll failed (%s: %s); will poll again", type(exc).__name__, exc)
            found = None
        now = time.monotonic()
        for rec in recs:
            if rec.done:
                continue
            st = found.get(rec.job_id) if found is not None else None
            if found is not None and st is None:
                rec.misses += 1
                if rec.misses >= MAX_MISSES:
                    self.finish(rec, None, "failed", (1008, f"Akool does not know job {rec.job_id}"))
                    continue
            self._after_poll(rec, st, now)

    def _after_poll(self, rec: InFlight, st: JobStatus | None, now: float) -> None:
        if st is not None and st.done:
            self.finish(rec, st, st.state)
        elif now >= rec.deadline:
            self.finish(rec, st, "timed_out", (None, f"not finished after job_timeout={self.opts.job_timeout}s "
                                                      f"(last status {st.state if st else 'unknown'}); "
                                                      "rerun to collect it"))
        else:
            self.sched.next_poll(rec, now)

    def finish(self, rec: InFlight, st: JobStatus | None, outcome: str,
                error: tuple[int | None, str] | None = None) -> None:
        """Record a terminal outcome of a job that has an id."""
        if rec.done:
            return
        self.sched.forget(rec)
        i, rows, now = rec.pos, self.rows, time.time()
        rows.finished_at[i] = now
        if st is not None:
            rows.final[i] = st
            if outcome in ("completed", "failed"):
                self.budget.settle(self.est(i), st.credits, failed=outcome == "failed", earlier=rows.earlier[i])
            if st.state == "completed":
                self.sched.completed_after(rec)
            if st.state == "failed":
                error = (st.error_code, st.error_message or f"{self.kind.name} job failed (status 4)")
        elif outcome == "failed":
            self.budget.settle(self.est(i), None, failed=True, earlier=rows.earlier[i])
        if error is not None:
            rows.error[i] = error
        result = None if st is None else json.dumps({"result_urls": list(st.result_urls), "conclusion": st.conclusion,
                                                     "detail": st.detail, "duration": st.duration})
        self._finish_buffer.append((self.plan.keys[i], outcome, now, st.status_code if st else None,
                                    st.credits if st else None, error[0] if error else None,
                                    error[1] if error else None, result))
        rows.set_outcome(i, outcome)
        if outcome == "completed" and st is not None and st.result_urls and self._downloader is not None:
            self._start_download(i, list(st.result_urls))

    def _start_download(self, i: int, urls: list[str]) -> None:
        task = asyncio.ensure_future(self._download(i, urls))
        self._downloads.add(task)
        task.add_done_callback(self._downloads.discard)

    async def _download(self, i: int, urls: list[str]) -> None:
        assert self._downloader is not None
        stem = f"{i:06d}-{self.plan.keys[i][:12]}"
        arts = [a.to_dict() for a in await self._downloader.download_all(stem, urls)]
        self.rows.artifacts[i] = arts
        try:
            self.ledger.set_artifacts(self.batch_id, self.plan.keys[i], arts)
        except LedgerError as exc:
            self.abort("recording a download in the ledger", exc)

    # --- progress ----------------------------------------------------------------------------------

    def report(self, done: bool = False) -> None:
        if self.opts.progress is None:
            return
        try:
            self.opts.progress(Progress.of_run(self, done))
        except Exception:  # noqa: BLE001 - a broken progress display must not break a paid batch
            log.warning("progress callback failed", exc_info=True)
