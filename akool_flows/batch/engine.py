"""The batch engine: submit every valid row once, wait for every job, account for every row.

Shape of a run (one event loop, no task per job):

* ``concurrency`` worker coroutines share all HTTP work. Each takes the next due status poll
  (up to 100 ids in one ``listbyids`` call for kinds that batch-poll) or, if none is due, the
  next row to create. Idle workers sleep on one timer set to the earliest due poll.
* Jobs in flight are compact ``_InFlight`` records in a heap ordered by next poll time. The
  first poll of a job happens ``poll_interval`` after its creation, or - once some jobs of the
  batch have finished - not before the shortest completion time seen so far (an earlier
  poll could only answer "still running").
* With a webhook event store (``events=``) one housekeeping coroutine looks up the terminal
  events of all running jobs in batched queries a few times per second; HTTP polling is the
  fallback for jobs whose event has not arrived ``poll_interval`` after creation.
* The ledger gets an ``intent`` before each create call and the ``_id`` right after (single
  autocommits); outcomes are written in batched transactions (losing them in a crash only
  means a free re-poll).

With ``wait=False`` the run only submits: no status call is made, rows whose job is running
end ``submitted`` and a later ``wait=True`` run with the same ledger polls them to completion.

Money rules: a create is never retried here unless the error proves nothing was created (the
client already retries those); an ambiguous failure makes the row ``uncertain``. A budget stops
submission *before* the next row's estimate would cross it.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import itertools
import json
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from akool_flows.api.client import DEFAULT_BASE_URL, AkoolClient, AsyncAkoolClient
from akool_flows.api.errors import (
    AkoolError,
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    QuotaError,
    create_may_have_happened,
)
from akool_flows.api.jobs import JobStatus
from akool_flows.batch.artifacts import DEFAULT_MAX_BYTES, ArtifactDownloader
from akool_flows.batch.cost import USD_PER_CREDIT
from akool_flows.batch.errors import BatchInputError, BudgetError
from akool_flows.batch.export import IncrementalCsv, write_table
from akool_flows.batch.ledger import Ledger, LedgerRow
from akool_flows.batch.plan import BatchPlan, plan_batch
from akool_flows.batch.progress import Progress
from akool_flows.batch.results import OUTCOMES, RESULT_COLUMNS, BatchResult, cost_log, exit_status, iso

__all__ = ["run_batch", "arun_batch", "DEFAULT_LEDGER"]

log = logging.getLogger("akool_flows.batch")

DEFAULT_LEDGER = "akool-ledger.sqlite"
#: Engine-level re-submissions of a row whose create was refused with "try again later" after
#: the client's own retries (each of those already backed off up to 5 times).
_MAX_REFUSALS = 3
_REFUSAL_BACKOFF = 2.0  # seconds, doubled per refusal (after the client's own backoff)
#: Status polls answering "not found" before a job is declared failed.
_MAX_MISSES = 3
_TICK = 0.05
#: Before any job has finished, only this share of the workers' worth of oldest jobs is polled...
_PROBE_SHARE = 4
#: ... and the younger ones once they are this many poll intervals old.
_PROBE_AGE = 4


class _InFlight:
    """A running job: what the scheduler needs and nothing else (a few hundred bytes)."""

    __slots__ = ("pos", "job_id", "t0", "deadline", "misses", "done", "taken")

    def __init__(self, pos: int, job_id: str, t0: float, deadline: float) -> None:
        self.pos = pos
        self.job_id = job_id
        self.t0 = t0
        self.deadline = deadline
        self.misses = 0
        self.done = False
        #: A worker is polling it right now (it has no heap entry meanwhile).
        self.taken = False


def _check_options(concurrency: int, poll_interval: float, job_timeout: float | None,
                   max_requests_per_second: float | None, budget_credits: float | None,
                   usd_per_credit: float) -> None:
    def bad(field: str, text: str) -> None:
        raise BatchInputError(f"{field} {text}", field=field)

    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        bad("concurrency", f"must be an integer >= 1, got {concurrency!r}")
    for name, value, allow_none in (("poll_interval", poll_interval, False), ("job_timeout", job_timeout, True),
                                    ("max_requests_per_second", max_requests_per_second, True)):
        if value is None and allow_none:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
            bad(name, f"must be a number > 0, got {value!r}")
    if budget_credits is not None and (isinstance(budget_credits, bool) or not isinstance(budget_credits, (int, float))
                                       or budget_credits < 0 or math.isnan(budget_credits)):
        bad("budget_credits", f"must be a number of credits >= 0, got {budget_credits!r}")
    if isinstance(usd_per_credit, bool) or not isinstance(usd_per_credit, (int, float)) or usd_per_credit < 0:
        bad("usd_per_credit", f"must be a number >= 0, got {usd_per_credit!r}")


def _async_client(client: Any, concurrency: int) -> tuple[AsyncAkoolClient, bool]:
    """An async client for the run, and whether the engine owns (must close) it."""
    connections = max(64, concurrency + 8)
    if client is None:
        return AsyncAkoolClient.from_env(max_connections=connections), True
    if isinstance(client, AsyncAkoolClient):
        return client, False
    if isinstance(client, AkoolClient):
        # Same account and settings, async transport: the engine's hot loop is async.
        return AsyncAkoolClient.from_client(client, max_connections=connections), True
    raise BatchInputError(f"client must be an AkoolClient or AsyncAkoolClient, got {type(client).__name__}",
                          field="client")


class _Run:
    """State of one run of one batch."""

    def __init__(self, plan: BatchPlan, client: AsyncAkoolClient, ledger: Ledger, batch_id: str, *,
                 concurrency: int, max_requests_per_second: float | None, poll_interval: float,
                 job_timeout: float | None, budget_credits: float | None, usd_per_credit: float,
                 resubmit_uncertain: bool, events: Any, webhook_url: str | None, download_dir: Any,
                 results_path: Any, progress: Callable[[Progress], Any] | None, cancel: Any, reuse: bool,
                 strict: bool, download_max_bytes: int | None = None,
                 event_fallback_interval: float | None = None, wait: bool = True) -> None:
        self.plan = plan
        self.kind = plan.kind
        self.client = client
        self.ledger = ledger
        self.batch_id = batch_id
        self.concurrency = concurrency
        self.rps = max_requests_per_second
        self.poll_interval = float(poll_interval)
        self.fallback_interval = float(event_fallback_interval if event_fallback_interval is not None
                                       else max(poll_interval, 30.0))
        self.probe_count = max(1, concurrency // _PROBE_SHARE)
        self.job_timeout = job_timeout
        self.budget = budget_credits
        self.usd_per_credit = usd_per_credit
        self.resubmit_uncertain = resubmit_uncertain
        self.events = events
        self.webhook_url = webhook_url
        self.download_dir = download_dir
        self.download_max_bytes = download_max_bytes
        self.results_path = Path(results_path) if results_path is not None else None
        self.progress_cb = progress
        self.cancel = cancel
        self.reuse = reuse
        self.strict = strict
        #: False: submit only. Nothing is ever tracked (`_track`), so the poll heap stays empty.
        self.wait = wait

        n = len(plan)
        self.n = n
        self.outcome: list[str | None] = [None] * n
        self.job_id: list[str | None] = [None] * n
        self.final: list[JobStatus | None] = [None] * n
        self.attempt_at: list[float | None] = [None] * n
        self.submitted_at: list[float | None] = [None] * n
        self.finished_at: list[float | None] = [None] * n
        self.error: list[tuple[int | None, str] | None] = [None] * n
        self.note: list[str | None] = [None] * n
        self.artifacts: list[list[dict[str, Any]] | None] = [None] * n
        self.refusals: dict[int, int] = {}

        self.queue: deque[int] = deque()
        self.retry_heap: list[tuple[float, int]] = []
        self.heap: list[tuple[float, int, _InFlight]] = []
        self.inflight: dict[str, _InFlight] = {}
        self._seq = itertools.count()
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.submitted_count = 0
        self.committed = 0.0  # credits spent or reserved (estimate of running jobs)
        self.cap: float | None = None
        self.balance: float | None = None
        self.stopped_by: str | None = None
        self.cancelled = False
        self.min_duration: float | None = None
        self.busy = 0
        self.polling = 0
        self.poll_slots = max(1, concurrency // 2)
        self._idle: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = math.inf
        self._next_slot = 0.0
        self._finish_buffer: list[tuple[Any, ...]] = []
        self._to_register: list[str] = []
        self._incremental: IncrementalCsv | None = None
        self._downloader: ArtifactDownloader | None = None
        self._downloads: set[asyncio.Task[None]] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.t_start = 0.0
        self.wall_start = 0.0
        self.calls_start = 0

    # --- set-up ----------------------------------------------------------------------------------

    def register(self) -> None:
        """Make sure the ledger knows the batch and every valid row (new rows start ``pending``)."""
        valid = [(self.plan.keys[i], i) for i in range(self.n) if self.plan.valid[i]]
        self.ledger.begin_batch(self.batch_id, self.kind.name, valid,
                                meta={"rows": self.n, "valid": len(valid), "kind": self.kind.name},
                                endpoint=self.client.base_url)

    def prepare(self) -> None:
        """Reconcile the plan with the ledger: what is finished, running, uncertain, to submit."""
        plan, ledger = self.plan, self.ledger
        valid = [(plan.keys[i], i) for i in range(self.n) if plan.valid[i]]
        stale = ledger.mark_stale_intents(self.batch_id)
        if stale:
            log.warning("%d row(s) of batch %s had a create call in flight when a previous run stopped; "
                        "they are reported as uncertain", stale, self.batch_id)
        rows = ledger.rows(self.batch_id)
        if self.reuse:
            fresh = [k for k, _ in valid if rows[k].state == "pending" and rows[k].attempts == 0]
            found = (ledger.find_elsewhere(self.kind.name, fresh, self.batch_id, endpoint=self.client.base_url)
                     if fresh else {})
            for key, (other, source) in found.items():
                ledger.adopt(self.batch_id, key, source, other)
            if found:
                log.info("%d row(s) reuse the identical request's job from another batch of this ledger", len(found))
                rows = ledger.rows(self.batch_id)
        for i in range(self.n):
            if not plan.valid[i]:
                self._set_outcome(i, "rejected")
                self.error[i] = (None, plan.errors[i] or "invalid")
                continue
            row = rows[plan.keys[i]]
            self._load(i, row)

    def _load(self, i: int, row: LedgerRow) -> None:
        self.attempt_at[i] = row.attempt_at
        self.note[i] = row.note
        if row.job_id:
            self.job_id[i] = row.job_id
            self.submitted_at[i] = row.submitted_at
            self.submitted_count += 1
        if row.artifacts:
            self.artifacts[i] = row.artifact_data
        est = self._est(i)
        if row.state in ("completed", "failed"):
            data = row.result_data
            code = row.status_code or (3 if row.state == "completed" else 4)
            self.final[i] = JobStatus(job_id=row.job_id or "", kind=self.kind.name, state=row.state, status_code=code,
                                      result_urls=tuple(data.get("result_urls") or ()),
                                      conclusion=data.get("conclusion"), detail=data.get("detail"),
                                      credits=row.credits, duration=data.get("duration"),
                                      error_code=row.error_code, error_message=row.error_message)
            self.finished_at[i] = row.finished_at
            if row.error_message:
                self.error[i] = (row.error_code, row.error_message)
            if row.job_id:
                self.committed += row.credits if row.credits is not None else (est if row.state == "completed" else 0.0)
            self._set_outcome(i, row.state)
        elif row.state in ("submitted", "timed_out"):
            self.committed += est
            if self.wait:
                self._track(i, row.job_id or "", resumed=True)
            else:
                self._set_outcome(i, "submitted")
        elif row.state == "uncertain":
            if self.resubmit_uncertain:
                self.note[i] = f"resubmitted after an uncertain create attempt at {iso(row.attempt_at)}"
                self.queue.append(i)
            else:
                self.committed += est
                self.error[i] = (row.error_code, row.error_message or "create call outcome unknown")
                self._set_outcome(i, "uncertain")
        else:  # pending
            self.queue.append(i)

    def _est(self, i: int) -> float:
        value = self.plan.est[i]
        return 0.0 if value is None else float(value)

    # --- bookkeeping -----------------------------------------------------------------------------

    def _set_outcome(self, i: int, outcome: str) -> None:
        old = self.outcome[i]
        if old is not None:
            self.counts[old] -= 1
        self.outcome[i] = outcome
        self.counts[outcome] += 1
        if self._incremental is not None:
            self._incremental.add(self._row_dict(i))

    def _track(self, i: int, job_id: str, *, resumed: bool = False) -> None:
        loop_now = time.monotonic()
        if resumed:
            # Poll a resumed job at once; its timeout counts from this run's start.
            submitted = self.submitted_at[i] or time.time()
            t0 = loop_now - max(0.0, time.time() - submitted)
            due = loop_now
            deadline = loop_now + self.job_timeout if self.job_timeout else math.inf
        else:
            t0 = loop_now
            due = loop_now + self._first_delay()
            deadline = loop_now + self.job_timeout if self.job_timeout else math.inf
        rec = _InFlight(i, job_id, t0, deadline)
        self.inflight[job_id] = rec
        self._schedule(rec, min(due, deadline))

    def _first_delay(self) -> float:
        if self.events is not None:
            return self.fallback_interval
        return max(self.poll_interval, self.min_duration or 0.0)

    def _reschedule_all(self) -> None:
        """The first completion tells how long a job takes: re-plan every waiting job's next poll
        (young jobs were held back until now, see `_take_polls`)."""
        now = time.monotonic()
        md = self.min_duration or 0.0
        self.heap = [(min(max(now, rec.t0 + md), rec.deadline), next(self._seq), rec)
                     for rec in self.inflight.values() if not rec.taken and not rec.done]
        heapq.heapify(self.heap)
        if self._idle:
            self._arm_timer()

    def _schedule(self, rec: _InFlight, due: float) -> None:
        heapq.heappush(self.heap, (due, next(self._seq), rec))
        if self._idle and due < self._timer_due:
            self._arm_timer()

    def _finish(self, rec: _InFlight, st: JobStatus | None, outcome: str, error: tuple[int | None, str] | None = None
                ) -> None:
        """Record a terminal outcome of a job that has an id."""
        if rec.done:
            return
        rec.done = True
        self.inflight.pop(rec.job_id, None)
        i = rec.pos
        now = time.time()
        self.finished_at[i] = now
        est = self._est(i)
        if st is not None:
            self.final[i] = st
            if st.credits is not None:
                self.committed += st.credits - est
            elif outcome == "failed":
                self.committed -= est  # nothing reported: the failed job is not counted against the budget
            if st.state == "completed":
                age = time.monotonic() - rec.t0
                if self.min_duration is None or age < self.min_duration:
                    first = self.min_duration is None
                    self.min_duration = age
                    if first and self.events is None:
                        self._reschedule_all()
            if st.state == "failed":
                error = (st.error_code, st.error_message or f"{self.kind.name} job failed (status 4)")
        if error is not None:
            self.error[i] = error
        result = None
        if st is not None:
            result = json.dumps({"result_urls": list(st.result_urls), "conclusion": st.conclusion,
                                 "detail": st.detail, "duration": st.duration})
        ledger_state = outcome if outcome in ("completed", "failed", "timed_out") else "failed"
        self._finish_buffer.append((self.plan.keys[i], ledger_state, now, st.status_code if st else None,
                                    st.credits if st else None, error[0] if error else None,
                                    error[1] if error else None, result))
        self._set_outcome(i, outcome)
        if outcome == "completed" and st is not None and st.result_urls and self._downloader is not None:
            task = asyncio.ensure_future(self._download(i, list(st.result_urls)))
            self._downloads.add(task)
            task.add_done_callback(self._downloads.discard)

    async def _download(self, i: int, urls: list[str]) -> None:
        assert self._downloader is not None
        stem = f"{i:06d}-{self.plan.keys[i][:12]}"
        arts = [a.to_dict() for a in await self._downloader.download_all(stem, urls)]
        self.artifacts[i] = arts
        self.ledger.set_artifacts(self.batch_id, self.plan.keys[i], arts)

    def _flush(self) -> None:
        if self._finish_buffer:
            items, self._finish_buffer = self._finish_buffer, []
            self.ledger.finish_many(self.batch_id, items)
        if self._incremental is not None:
            self._incremental.flush()

    def _stop(self, reason: str, message: str) -> None:
        """Stop submitting: every row not yet sent is cancelled (and stays pending in the ledger)."""
        if self.stopped_by is None:
            self.stopped_by = reason
            log.warning("batch %s: submission stopped (%s): %s", self.batch_id, reason, message)
        while self.queue:
            i = self.queue.popleft()
            self.error[i] = (None, f"not submitted: {message}")
            self._set_outcome(i, "cancelled")
        while self.retry_heap:
            _, i = heapq.heappop(self.retry_heap)
            if self.error[i] is None:
                self.error[i] = (None, f"not submitted: {message}")
            self._set_outcome(i, "cancelled")
        self._wake_all()

    def _abandon_running(self, message: str) -> None:
        """Stop waiting for running jobs: they become timed_out (a rerun polls them again)."""
        for rec in list(self.inflight.values()):
            self._finish(rec, None, "timed_out", (None, message))
        self.heap.clear()
        self._wake_all()

    # --- worker scheduling -----------------------------------------------------------------------

    def _wake_all(self) -> None:
        idle, self._idle = self._idle, []
        for fut in idle:
            if not fut.done():
                fut.set_result(None)

    def _arm_timer(self) -> None:
        due = min(self.heap[0][0] if self.heap else math.inf, self.retry_heap[0][0] if self.retry_heap else math.inf)
        if due == math.inf or due >= self._timer_due:
            return
        if self._timer is not None:
            self._timer.cancel()
        assert self.loop is not None
        self._timer_due = due
        self._timer = self.loop.call_at(due, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_due = math.inf
        self._wake_all()

    def _all_done(self) -> bool:
        return not self.queue and not self.retry_heap and not self.inflight and self.busy == 0

    def _take_polls(self) -> list[_InFlight]:
        heap = self.heap
        if not heap:
            return []
        now = time.monotonic()
        if heap[0][0] > now:
            return []
        taken: list[_InFlight] = []
        if self.kind.batch_poll:
            # One listbyids call answers 100 jobs for the price of one: once a poll is due, take
            # along the jobs that would be due within the next quarter interval.
            limit, horizon = 100, now + self.poll_interval / 4
        else:
            limit, horizon = 1, now
        min_duration = self.min_duration
        probing = self.events is None and min_duration is None
        oldest_t0 = hold_until = math.inf
        if probing:
            # Nothing has finished yet, so nobody knows how long a job takes: poll only the
            # oldest few (a younger job is very unlikely to be done first) and the others once
            # they are PROBE_AGE poll intervals old. The first completion re-plans every poll.
            oldest_t0 = self._probe_threshold()
            hold_until = self.poll_interval * _PROBE_AGE
        while heap and heap[0][0] <= horizon and len(taken) < limit:
            _, _, rec = heapq.heappop(heap)
            if rec.done:
                continue
            if now < rec.deadline:
                if probing and rec.t0 > oldest_t0 and now - rec.t0 < hold_until:
                    heapq.heappush(heap, (min(rec.t0 + hold_until, rec.deadline), next(self._seq), rec))
                    continue
                if self.events is None and min_duration is not None:
                    earliest = rec.t0 + min_duration
                    if earliest > horizon:
                        # No job of this batch has finished this fast yet: poll when one could have.
                        heapq.heappush(heap, (min(earliest, rec.deadline), next(self._seq), rec))
                        continue
            rec.taken = True
            taken.append(rec)
        return taken

    def _probe_threshold(self) -> float:
        """t0 of the PROBE_COUNT-th oldest running job (dicts keep submission order)."""
        t0 = -math.inf
        for n, rec in enumerate(self.inflight.values()):
            t0 = rec.t0
            if n + 1 >= self.probe_count:
                break
        return t0

    def _take_submission(self) -> int | None:
        if self.stopped_by is not None:
            return None
        retry = bool(self.retry_heap) and self.retry_heap[0][0] <= time.monotonic()
        if retry:
            i = self.retry_heap[0][1]
        elif self.queue:
            i = self.queue[0]
        else:
            return None
        if self.cap is not None and self.committed + self._est(i) > self.cap + 1e-9:
            self._stop("budget", f"the next row would take spending past the budget "
                                 f"({self.committed:,.2f} + {self._est(i):,.2f} > {self.cap:,.2f} credits)")
            return None
        if retry:
            heapq.heappop(self.retry_heap)
        else:
            self.queue.popleft()
        self.committed += self._est(i)
        return i

    def _submitting(self) -> bool:
        return self.stopped_by is None and bool(self.queue or (self.retry_heap and
                                                               self.retry_heap[0][0] <= time.monotonic()))

    async def _worker(self) -> None:
        while True:
            # Polls go first, but while rows wait to be created they get at most half the
            # workers: otherwise frequent polls of early jobs would starve the submission.
            recs = self._take_polls() if self.polling < self.poll_slots or not self._submitting() else []
            if recs:
                self.busy += 1
                self.polling += 1
                try:
                    await self._poll(recs)
                finally:
                    self.busy -= 1
                    self.polling -= 1
                continue
            i = self._take_submission()
            if i is not None:
                self.busy += 1
                try:
                    await self._submit(i)
                finally:
                    self.busy -= 1
                continue
            if self._all_done():
                self._wake_all()
                return
            assert self.loop is not None
            fut = self.loop.create_future()
            self._idle.append(fut)
            self._arm_timer()
            await fut

    async def _slot(self) -> None:
        if not self.rps:
            return
        now = time.monotonic()
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.rps
        if slot > now:
            await asyncio.sleep(slot - now)

    # --- HTTP work -------------------------------------------------------------------------------

    async def _submit(self, i: int) -> None:
        key = self.plan.keys[i]
        body = self.plan.bodies[i]
        if self.webhook_url and self.kind.accepts_webhook and "webhookUrl" not in body:
            body = {**body, "webhookUrl": self.webhook_url}
        await self._slot()
        if self.stopped_by is not None:  # stopped while waiting for the rate-limit slot
            self.committed -= self._est(i)
            self.error[i] = (None, f"not submitted: stopped ({self.stopped_by})")
            self._set_outcome(i, "cancelled")
            return
        at = time.time()
        self.ledger.mark_intent(self.batch_id, key, at)  # durable before the request leaves
        self.attempt_at[i] = at
        try:
            job = await self.client.submit(self.kind.name, **body)
        except AkoolError as exc:
            self._create_failed(i, exc)
            return
        except asyncio.CancelledError:
            raise  # the intent stays: a rerun reports this row as uncertain
        except Exception as exc:  # noqa: BLE001 - unknown failure after sending: the job may exist
            log.exception("unexpected error creating row %s", key)
            self._create_failed(i, exc)
            return
        now = time.time()
        self.ledger.mark_submitted(self.batch_id, key, job.job_id, job.task_id, now)
        self.job_id[i] = job.job_id
        self.submitted_at[i] = now
        self.submitted_count += 1
        if self.events is not None and getattr(self.client, "event_store", None) is not self.events:
            self._to_register.append(job.job_id)
        initial = (job.initial_status if "status" in job.raw or any(f in job.raw for f in self.kind.status_fields)
                   else None)
        if not self.wait:
            if initial is not None and initial.done:  # finished in the create answer: no status call needed
                self._finish(_InFlight(i, job.job_id, time.monotonic(), math.inf), initial, initial.state)
            else:
                self._set_outcome(i, "submitted")
            return
        self._track(i, job.job_id)
        if initial is not None and initial.done:
            self._finish(self.inflight[job.job_id], initial, initial.state)

    def _create_failed(self, i: int, exc: BaseException) -> None:
        key = self.plan.keys[i]
        code = getattr(exc, "code", None)
        message = str(exc)
        if create_may_have_happened(exc):
            # Sent, answer lost: the job may exist and be charged. Never resubmit on our own.
            self.ledger.mark_uncertain(self.batch_id, key, code, message)
            self.error[i] = (code, f"create call outcome unknown ({type(exc).__name__}: {message}); "
                                   "the job may exist - resubmit only with resubmit_uncertain")
            self._set_outcome(i, "uncertain")
            return
        self.committed -= self._est(i)  # proven not created
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            self.ledger.mark_pending(self.batch_id, key, code, message)
            self.error[i] = (code, f"not created: {message}")
            self._set_outcome(i, "cancelled")
            self._stop("auth", f"Akool refused the credentials or permission: {message}")
            self._abandon_running(f"stopped waiting: {message}")
            return
        if isinstance(exc, QuotaError):
            self.ledger.mark_pending(self.batch_id, key, code, message)
            self.error[i] = (code, f"not created: {message}")
            self._set_outcome(i, "cancelled")
            self._stop("quota", f"the account is out of credits: {message}")
            return
        if getattr(exc, "retryable", False):
            n = self.refusals.get(i, 0) + 1
            self.refusals[i] = n
            if n < _MAX_REFUSALS and self.stopped_by is None:
                heapq.heappush(self.retry_heap, (time.monotonic() + min(30.0, _REFUSAL_BACKOFF * 2**n), i))
                self.ledger.mark_pending(self.batch_id, key, code, message)
                self.error[i] = (code, f"not created yet: {message}")
                return
            # Still refused: leave it pending so a rerun tries again; this run reports it failed.
            self.ledger.mark_pending(self.batch_id, key, code, message)
            self.error[i] = (code, f"not created (refused {n} times, try again later): {message}")
            self._set_outcome(i, "failed")
            return
        # Refused for good (bad parameters, unprocessable media...): final.
        self.error[i] = (code, f"not created: {message}")
        self._finish_buffer.append((key, "failed", time.time(), None, None, code, f"not created: {message}", None))
        self.finished_at[i] = time.time()
        self._set_outcome(i, "failed")

    async def _poll(self, recs: list[_InFlight]) -> None:
        try:
            await self._poll_inner(recs)
        finally:
            for rec in recs:
                rec.taken = False

    async def _poll_inner(self, recs: list[_InFlight]) -> None:
        await self._slot()
        try:
            if self.kind.batch_poll:
                found = await self.client.statuses(self.kind.name, [r.job_id for r in recs])
            else:
                rec = recs[0]
                found = {rec.job_id: await self.client.status(self.kind.name, rec.job_id)}
        except NotFoundError:
            found = {}
        except (AuthenticationError, PermissionDeniedError) as exc:
            self._stop("auth", f"Akool refused the credentials or permission: {exc}")
            self._abandon_running(f"stopped waiting: {exc}")
            return
        except Exception as exc:  # noqa: BLE001 - transient (after the client's retries) or unexpected
            log.info("status poll failed (%s: %s); will poll again", type(exc).__name__, exc)
            now = time.monotonic()
            for rec in recs:
                if not rec.done:
                    self._after_poll(rec, None, now)
            return
        now = time.monotonic()
        for rec in recs:
            if rec.done:
                continue
            st = found.get(rec.job_id)
            if st is None:
                rec.misses += 1
                if rec.misses >= _MAX_MISSES:
                    self._finish(rec, None, "failed", (1008, f"Akool does not know job {rec.job_id}"))
                    continue
            self._after_poll(rec, st, now)

    def _after_poll(self, rec: _InFlight, st: JobStatus | None, now: float) -> None:
        if st is not None and st.done:
            self._finish(rec, st, st.state)
        elif now >= rec.deadline:
            self._finish(rec, st, "timed_out", (None, f"not finished after job_timeout={self.job_timeout}s "
                                                      f"(last status {st.state if st else 'unknown'}); "
                                                      "rerun to collect it"))
        else:
            step = self.poll_interval if self.events is None else self.fallback_interval
            self._schedule(rec, min(now + step, rec.deadline))

    # --- housekeeping ------------------------------------------------------------------------------

    async def _housekeeping(self, workers: asyncio.Future[Any]) -> None:
        last_events = last_progress = last_lease = 0.0
        event_interval = min(0.25, self.poll_interval)
        while not workers.done():
            await asyncio.sleep(_TICK)
            now = time.monotonic()
            if self.cancel is not None and not self.cancelled and self.cancel.is_set():
                self.cancelled = True
                self._stop("cancel", "the run was cancelled")
                self._abandon_running("the run was cancelled while the job was running; rerun to collect it")
            if self._to_register:
                # Soon after the create: the receiver only accepts events of ids it knows.
                ids, self._to_register = self._to_register, []
                await asyncio.to_thread(_register, self.events, ids, self.kind.name)
            if self.events is not None and now - last_events >= event_interval:
                last_events = now
                await self._check_events()
            self._flush()
            if self.progress_cb is not None and now - last_progress >= 0.5:
                last_progress = now
                self._report()
            if now - last_lease >= 20:
                last_lease = now
                self.ledger.renew(self.batch_id)

    async def _check_events(self) -> None:
        store = self.events
        if not self.inflight:
            return
        ids = list(self.inflight)
        try:
            found = await asyncio.to_thread(store.latest_many, ids, terminal_only=True)
        except TypeError:  # a store without terminal_only
            found = await asyncio.to_thread(store.latest_many, ids)
        except Exception:  # noqa: BLE001 - a store hiccup must not stop the batch; polling covers it
            log.warning("webhook store lookup failed; polling continues", exc_info=True)
            return
        now = time.monotonic()
        for job_id, event in found.items():
            rec = self.inflight.get(job_id)
            if rec is None or rec.done:
                continue
            st = JobStatus.from_event(self.kind.name, event)
            if st is None:
                continue
            if st.ok and self._event_incomplete(st):
                self._schedule(rec, now)  # the event lacks the result: one status call fetches it
                self._wake_all()
                continue
            self._finish(rec, st, st.state)
        if not self.inflight:
            self._wake_all()

    def _event_incomplete(self, st: JobStatus) -> bool:
        if self.kind.name == "moderation":
            return st.conclusion is None
        return bool(self.kind.result_fields) and not st.result_urls

    def progress_snapshot(self, done: bool = False) -> Progress:
        c = self.counts
        return Progress(total=self.n, submitted=self.submitted_count, completed=c["completed"], failed=c["failed"],
                        rejected=c["rejected"], uncertain=c["uncertain"], cancelled=c["cancelled"],
                        timed_out=c["timed_out"], left_running=c["submitted"], in_flight=len(self.inflight),
                        credits=round(self.committed, 6),
                        elapsed=time.monotonic() - self.t_start, done=done, stopped_by=self.stopped_by)

    def _report(self, done: bool = False) -> None:
        if self.progress_cb is None:
            return
        try:
            self.progress_cb(self.progress_snapshot(done))
        except Exception:  # noqa: BLE001 - a broken progress display must not break a paid batch
            log.warning("progress callback failed", exc_info=True)

    # --- results -----------------------------------------------------------------------------------

    def _row_dict(self, i: int) -> dict[str, Any]:
        st = self.final[i]
        err = self.error[i]
        arts = self.artifacts[i] or []
        urls = list(st.result_urls) if st else []
        return {
            "row_key": self.plan.keys[i],
            "input_index": _plain_index(self.plan.source.index[i]),
            "outcome": self.outcome[i],
            "job_id": self.job_id[i],
            "status_code": st.status_code if st else None,
            "result_url": urls[0] if urls else None,
            "result_urls": " ".join(urls) if urls else None,
            "conclusion": st.conclusion if st else None,
            "detail": st.detail if st else None,
            "credits": st.credits if st else None,
            "est_credits": self.plan.est[i],
            "duration": st.duration if st else None,
            "error_code": err[0] if err else None,
            "error_message": err[1] if err else None,
            "attempt_at": iso(self.attempt_at[i]),
            "submitted_at": iso(self.submitted_at[i]),
            "finished_at": iso(self.finished_at[i]),
            "artifact_paths": " ".join(a["path"] for a in arts if a.get("path")) or None,
            "artifact_sha256": " ".join(a["sha256"] for a in arts if a.get("sha256")) or None,
            "note": "; ".join(filter(None, [self.note[i]] + [f"download failed: {a['error']}" for a in arts
                                                            if a.get("error")])) or None,
        }

    def results_frame(self) -> pd.DataFrame:
        engine = pd.DataFrame([self._row_dict(i) for i in range(self.n)], columns=list(RESULT_COLUMNS))
        for col in ("credits", "est_credits", "duration"):
            engine[col] = pd.to_numeric(engine[col], errors="coerce")
        for col in ("status_code", "error_code"):
            engine[col] = engine[col].astype("Int64")
        source = self.plan.source.reset_index(drop=True)
        rename = {c: f"input_{c}" for c in source.columns if c in RESULT_COLUMNS}
        return pd.concat([engine, source.rename(columns=rename)], axis=1)

    # --- the run -------------------------------------------------------------------------------------

    async def run(self) -> BatchResult:
        self.loop = asyncio.get_running_loop()
        self.t_start = time.monotonic()
        self.wall_start = time.time()
        self.calls_start = self.client.request_count
        self.register()
        self.ledger.acquire(self.batch_id)
        try:
            return await self._run()
        finally:
            if self._timer is not None:
                self._timer.cancel()
            try:
                self._flush()
            finally:
                if self._incremental is not None:
                    self._incremental.close()
                self.ledger.release(self.batch_id)

    async def _run(self) -> BatchResult:
        if self.results_path is not None:
            inc_path = (self.results_path if self.results_path.suffix.lower() == ".csv"
                        else self.results_path.with_name(self.results_path.name + ".partial.csv"))
            self._incremental = IncrementalCsv(inc_path, RESULT_COLUMNS)
        self.prepare()
        await self._check_budget()
        if self.download_dir is not None:
            self._downloader = ArtifactDownloader(self.download_dir, media=self.kind.result_media,
                                                  max_bytes=self.download_max_bytes or DEFAULT_MAX_BYTES)
            for i in range(self.n):  # finished in an earlier run but never downloaded (or failed to)
                st = self.final[i]
                if (self.outcome[i] == "completed" and st is not None and st.result_urls
                        and not any(a.get("sha256") for a in self.artifacts[i] or [])):
                    task = asyncio.ensure_future(self._download(i, list(st.result_urls)))
                    self._downloads.add(task)
                    task.add_done_callback(self._downloads.discard)
        if self.webhook_url and not self.kind.accepts_webhook:
            log.warning("%s jobs take no webhookUrl; completion is by polling", self.kind.name)
        self._report()
        workers = asyncio.gather(*(self._worker() for _ in range(self.concurrency)))
        house = asyncio.ensure_future(self._housekeeping(workers))
        try:
            await workers
        finally:
            house.cancel()
            await asyncio.gather(house, return_exceptions=True)
        if self._downloads:
            await asyncio.gather(*list(self._downloads), return_exceptions=True)
        if self._downloader is not None:
            await self._downloader.aclose()
        if self.events is not None and self._to_register:
            _register(self.events, self._to_register, self.kind.name)
        self._flush()
        return self._result()

    async def _check_budget(self) -> None:
        to_submit = list(self.queue)
        if self.budget is None:
            try:
                self.balance = await self.client.credit_info()
            except (AkoolError, ValueError, TypeError) as exc:
                log.info("account balance not available (%s)", exc)
            return
        unknown = [i for i in to_submit if self.plan.est[i] is None]
        if unknown:
            raise BudgetError(
                f"budget_credits={self.budget} cannot be enforced: {len(unknown)} row(s) have no known price for "
                f"{self.kind.name} (the docs publish none); pass cost_table={{'{self.kind.name}': <credits per job>}}"
                " or run without a budget", field="budget_credits")
        cap = float(self.budget)
        try:
            self.balance = await self.client.credit_info()
        except (AkoolError, ValueError, TypeError) as exc:
            log.info("account balance not available (%s); enforcing the budget alone", exc)
        if self.balance is not None:
            cap = min(cap, self.committed + self.balance)
        self.cap = cap

    def _result(self) -> BatchResult:
        self._report(done=True)
        results = self.results_frame()
        if self.results_path is not None:
            write_table(results, self.results_path)
            partial = self.results_path.with_name(self.results_path.name + ".partial.csv")
            if partial != self.results_path:
                partial.unlink(missing_ok=True)
        costs = cost_log(results, self.usd_per_credit)
        total = float(costs["credits"].iloc[-1]) if len(costs) else 0.0
        reported = float(results["credits"].sum(skipna=True))
        counts = dict(self.counts)
        summary = {
            "batch_id": self.batch_id,
            "kind": self.kind.name,
            "rows": self.n,
            "counts": counts,
            "submitted": self.submitted_count,
            "credits": round(total, 6),
            "credits_reported": round(reported, 6),
            "usd": round(total * self.usd_per_credit, 6),
            "usd_per_credit": self.usd_per_credit,
            "estimate": self.plan.estimate.to_dict(),
            "budget_credits": self.budget,
            "balance_before": self.balance,
            "stopped_by": self.stopped_by,
            "wall_seconds": round(time.monotonic() - self.t_start, 3),
            "api_calls": self.client.request_count - self.calls_start,
            "ledger": str(self.ledger.path),
            "results_path": str(self.results_path) if self.results_path else None,
            "exit_status": exit_status(counts, self.stopped_by, strict=self.strict),
        }
        return BatchResult(results=results, cost_log=costs, summary=summary, plan=self.plan)


def default_batch_id_for(plan: BatchPlan, base_url: str) -> str:
    """The plan's batch id against the real API; other endpoints (a sandbox) get their own, so
    a ledger never mixes job ids of two APIs."""
    if base_url.rstrip("/") == DEFAULT_BASE_URL:
        return plan.batch_id
    return f"{plan.batch_id}@{hashlib.sha256(base_url.encode()).hexdigest()[:8]}"


def _register(store: Any, ids: list[str], kind: str) -> None:
    many = getattr(store, "register_submitted_many", None)
    if many is not None:
        many(ids, kind=kind)
    else:
        for job_id in ids:
            store.register_submitted(job_id, kind)


def _plain_index(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if item is not None and type(value).__module__ == "numpy" else value


async def arun_batch(plan_or_df: BatchPlan | pd.DataFrame, kind: str | None = None, *, client: Any = None,
                     batch_id: str | None = None, ledger: str | Path | Ledger = DEFAULT_LEDGER,
                     concurrency: int = 32, max_requests_per_second: float | None = None,
                     poll_interval: float = 5.0, job_timeout: float | None = None,
                     event_fallback_interval: float | None = None, budget_credits: float | None = None,
                     usd_per_credit: float = USD_PER_CREDIT,
                     resubmit_uncertain: bool = False, events: Any = None, webhook_url: str | None = None,
                     download_dir: str | Path | None = None, download_max_bytes: int | None = None,
                     results_path: str | Path | None = None,
                     progress: Callable[[Progress], Any] | None = None, cancel: Any = None,
                     reuse: bool = True, strict: bool = False, wait: bool = True, columns: Any = None,
                     defaults: Mapping[str, Any] | None = None, cost_table: Mapping[str, float] | None = None,
                     durations: str | None = None) -> BatchResult:
    """Run a batch (async). See `run_batch` for the arguments."""
    _check_options(concurrency, poll_interval, job_timeout, max_requests_per_second, budget_credits, usd_per_credit)
    if event_fallback_interval is not None and (isinstance(event_fallback_interval, bool) or not isinstance(
            event_fallback_interval, (int, float)) or not event_fallback_interval > 0):
        raise BatchInputError(f"event_fallback_interval must be a number > 0, got {event_fallback_interval!r}",
                              field="event_fallback_interval")
    if webhook_url is not None and not str(webhook_url).startswith(("http://", "https://")):
        raise BatchInputError(f"webhook_url must be an http(s) URL, got {webhook_url!r}", field="webhook_url")
    if download_max_bytes is not None and (not isinstance(download_max_bytes, int) or download_max_bytes < 1):
        raise BatchInputError("download_max_bytes must be a positive integer", field="download_max_bytes")
    if cancel is not None and not callable(getattr(cancel, "is_set", None)):
        raise BatchInputError("cancel must be a threading.Event or asyncio.Event", field="cancel")
    if not isinstance(wait, bool):
        raise BatchInputError(f"wait must be True or False, got {wait!r}", field="wait")
    owns_ledger = not isinstance(ledger, Ledger)
    led = Ledger(ledger) if owns_ledger else ledger
    try:
        if isinstance(plan_or_df, BatchPlan):
            plan = plan_or_df
            if kind is not None and kind != plan.kind.name:
                raise BatchInputError(f"kind={kind!r} does not match the plan's kind {plan.kind.name!r}", field="kind")
        elif isinstance(plan_or_df, pd.DataFrame):
            if kind is None:
                raise BatchInputError("kind is required when passing a DataFrame", field="kind")
            plan = plan_batch(plan_or_df, kind, columns=columns, defaults=defaults, cost_table=cost_table,
                              durations=durations, ledger=led, usd_per_credit=usd_per_credit)
        else:
            raise BatchInputError(f"expected a BatchPlan or a DataFrame, got {type(plan_or_df).__name__}",
                                  field="plan_or_df")
        if plan.estimate.unknown_rows:
            observed, n = led.observed_credits(plan.kind.name)
            if observed is not None:
                est = [observed if ok and e is None else e for ok, e in zip(plan.valid, plan.est)]
                sources = [("observed" if ok and s == "unknown" else s)
                           for ok, s in zip(plan.valid, plan.rows["cost_source"])]
                plan = plan.with_estimates(est, sources, usd_per_credit)
                log.info("priced %s rows from %d finished %s jobs in the ledger", plan.estimate.sources["observed"],
                         n, plan.kind.name)
        if batch_id is not None and (not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > 200):
            raise BatchInputError("batch_id must be a non-empty string of at most 200 characters", field="batch_id")
        api, owns_client = _async_client(client, concurrency)
        try:
            batch = batch_id or default_batch_id_for(plan, api.base_url)
            run = _Run(plan, api, led, batch, concurrency=concurrency, max_requests_per_second=max_requests_per_second,
                       poll_interval=poll_interval, job_timeout=job_timeout, budget_credits=budget_credits,
                       usd_per_credit=usd_per_credit, resubmit_uncertain=resubmit_uncertain, events=events,
                       webhook_url=webhook_url, download_dir=download_dir, results_path=results_path,
                       progress=progress, cancel=cancel, reuse=reuse, strict=strict,
                       download_max_bytes=download_max_bytes, event_fallback_interval=event_fallback_interval,
                       wait=wait)
            return await run.run()
        finally:
            if owns_client:
                await api.aclose()
    finally:
        if owns_ledger:
            led.close()


def run_batch(plan_or_df: BatchPlan | pd.DataFrame, kind: str | None = None, **kwargs: Any) -> BatchResult:
    """Run a batch: submit every valid row once, wait for every job, return every row's outcome.

    Args:
        plan_or_df: a `BatchPlan` (from `plan_batch`) or a DataFrame (planned here with
            ``columns``, ``defaults``, ``cost_table``, ``durations``).
        kind: the job kind (required with a DataFrame).
        client: an `AkoolClient` / `AsyncAkoolClient`; ``None`` builds one from ``AKOOL_*`` variables.
        batch_id: ledger key of the batch; default: a hash of the kind and every row key, so the
            same input resumes the same batch.
        ledger: SQLite path or `Ledger`. Rerunning with the same ledger resumes: rows with a job id
            are polled, finished rows are kept, rows whose create was in flight when a run died are
            reported ``uncertain`` (with ``attempt_at``) and resubmitted only with
            ``resubmit_uncertain=True``.
        concurrency: HTTP requests in flight at once (creates and polls together).
        max_requests_per_second: client-side request rate limit.
        poll_interval: seconds between status polls of a running job. Until the first job of
            the batch finishes, only the oldest running jobs are polled (younger ones after 4
            intervals); afterwards no job is polled before it is as old as the fastest finished one.
        event_fallback_interval: with ``events``: a job whose webhook has not arrived is polled
            this long after creation and then as often (default ``max(poll_interval, 30)``).
        job_timeout: seconds to wait for one job; then it is ``timed_out`` (a rerun polls it again).
        budget_credits: the most this batch may spend (earlier runs included); submission stops
            before the next row's estimate would pass it (``stopped_by="budget"``).
        usd_per_credit: for the USD figures (docs: 0.04).
        events: a webhook event store (``WebhookEventStore``): jobs complete from their events.
        webhook_url: sent as ``webhookUrl`` with every create (kinds that accept one).
        download_dir: local folder or fsspec URL: result files are downloaded with a sha256
            (a rerun downloads what is missing; results expire on Akool's side after 7 days).
        download_max_bytes: size limit per result file (default 2 GiB).
        results_path: CSV / Parquet written incrementally during the run and in full at the end.
        progress: callable receiving `Progress` a couple of times per second and at the end.
        cancel: ``threading.Event`` / ``asyncio.Event``: stop submitting (the rest is
            ``cancelled``), stop waiting (running jobs are ``timed_out``: a rerun collects them).
        reuse: adopt the job of an identical request from another batch of the same ledger
            instead of paying for it again.
        strict: count rejected rows as a failure in ``summary["exit_status"]``.
        wait: ``False`` submits every row that needs it and returns without a single status
            call: rows whose job runs are ``submitted`` (jobs that finished in the create answer,
            and rows finished in an earlier run, keep their outcome). A later run with the same
            ledger and ``wait=True`` polls them to completion without submitting them again.

    Runs its own event loop; inside a running loop (Jupyter) it runs in a helper thread. In async
    code use ``await arun_batch(...)``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_batch(plan_or_df, kind, **kwargs))
    with ThreadPoolExecutor(1, thread_name_prefix="akool-batch") as pool:
        return pool.submit(asyncio.run, arun_batch(plan_or_df, kind, **kwargs)).result()

