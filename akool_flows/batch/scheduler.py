"""When to poll which running job, and which row to create next: the engine's timetable.

Jobs in flight are compact `InFlight` records in a heap ordered by next poll time. The first
poll of a job happens ``poll_interval`` after its creation, or - once some jobs of the batch have
finished - not before the shortest completion time seen so far (an earlier poll could only
answer "still running"). Until the first job finishes, only the oldest few are polled (a younger
job is very unlikely to be done first). Rows to create wait in a queue; rows to try again later
(a refused create, an identical request another run is sending) wait in a second heap.

Idle workers sleep on one future each; one timer wakes them at the earliest due time.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections import deque
from collections.abc import Callable

__all__ = ["InFlight", "Scheduler"]

#: Before any job has finished, only this share of the workers' worth of oldest jobs is polled...
_PROBE_SHARE = 4
#: ... and the younger ones once they are this many poll intervals old.
_PROBE_AGE = 4


class InFlight:
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


class Scheduler:
    def __init__(self, *, concurrency: int, poll_interval: float, job_timeout: float | None,
                 events: bool, fallback_interval: float, batch_poll: bool) -> None:
        self.poll_interval = poll_interval
        self.job_timeout = job_timeout
        self.events = events
        self.fallback_interval = fallback_interval
        self.batch_poll = batch_poll
        self.probe_count = max(1, concurrency // _PROBE_SHARE)
        self.min_duration: float | None = None
        self.queue: deque[int] = deque()
        self.retry_heap: list[tuple[float, int]] = []
        self.heap: list[tuple[float, int, InFlight]] = []
        self.inflight: dict[str, InFlight] = {}
        self._seq = itertools.count()
        self._idle: list[asyncio.Future[None]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = math.inf
        self.loop: asyncio.AbstractEventLoop | None = None

    # --- jobs ------------------------------------------------------------------------------------

    def track(self, i: int, job_id: str, *, submitted_at: float | None = None) -> InFlight:
        """Start waiting for a job; ``submitted_at`` (wall clock) marks one resumed from the ledger:
        poll it at once, its timeout counting from now."""
        now = time.monotonic()
        deadline = now + self.job_timeout if self.job_timeout else math.inf
        if submitted_at is not None:
            t0 = now - max(0.0, time.time() - submitted_at)
            due = now
        else:
            t0 = now
            due = now + self._first_delay()
        rec = InFlight(i, job_id, t0, deadline)
        self.inflight[job_id] = rec
        self.schedule(rec, min(due, deadline))
        return rec

    def forget(self, rec: InFlight) -> None:
        rec.done = True
        self.inflight.pop(rec.job_id, None)

    def _first_delay(self) -> float:
        if self.events:
            return self.fallback_interval
        return max(self.poll_interval, self.min_duration or 0.0)

    def schedule(self, rec: InFlight, due: float) -> None:
        heapq.heappush(self.heap, (due, next(self._seq), rec))
        if self._idle and due < self._timer_due:
            self.arm_timer()

    def next_poll(self, rec: InFlight, now: float) -> None:
        step = self.fallback_interval if self.events else self.poll_interval
        self.schedule(rec, min(now + step, rec.deadline))

    def completed_after(self, rec: InFlight) -> None:
        """A job completed: the fastest completion so far bounds when other jobs can be done."""
        age = time.monotonic() - rec.t0
        if self.min_duration is None or age < self.min_duration:
            first = self.min_duration is None
            self.min_duration = age
            if first and not self.events:
                self._reschedule_all()

    def _reschedule_all(self) -> None:
        """The first completion tells how long a job takes: re-plan every waiting job's next poll
        (young jobs were held back until now, see `take_polls`)."""
        now = time.monotonic()
        md = self.min_duration or 0.0
        self.heap = [(min(max(now, rec.t0 + md), rec.deadline), next(self._seq), rec)
                     for rec in self.inflight.values() if not rec.taken and not rec.done]
        heapq.heapify(self.heap)
        if self._idle:
            self.arm_timer()

    def take_polls(self) -> list[InFlight]:
        heap = self.heap
        if not heap:
            return []
        now = time.monotonic()
        if heap[0][0] > now:
            return []
        taken: list[InFlight] = []
        if self.batch_poll:
            # One listbyids call answers 100 jobs for the price of one: once a poll is due, take
            # along the jobs that would be due within the next quarter interval.
            limit, horizon = 100, now + self.poll_interval / 4
        else:
            limit, horizon = 1, now
        min_duration = self.min_duration
        probing = not self.events and min_duration is None
        oldest_t0 = hold_until = math.inf
        if probing:
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
                if not self.events and min_duration is not None:
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

    # --- rows to create --------------------------------------------------------------------------

    def next_row(self) -> tuple[int, bool] | None:
        """The next row to create and whether it comes from the retry heap (not removed yet)."""
        if self.retry_heap and self.retry_heap[0][0] <= time.monotonic():
            return self.retry_heap[0][1], True
        if self.queue:
            return self.queue[0], False
        return None

    def pop_row(self, from_retry: bool) -> None:
        if from_retry:
            heapq.heappop(self.retry_heap)
        else:
            self.queue.popleft()

    def waiting_where(self, wanted: Callable[[int], bool]) -> list[int]:
        """The rows waiting to be created (queue, then retry heap) that ``wanted`` selects."""
        return [i for i in self.queue if wanted(i)] + [i for _, i in self.retry_heap if wanted(i)]

    def remove(self, rows: list[int]) -> None:
        if rows:
            chosen = set(rows)
            self.queue = deque(i for i in self.queue if i not in chosen)
            self.retry_heap = [(t, i) for t, i in self.retry_heap if i not in chosen]
            heapq.heapify(self.retry_heap)

    def later(self, i: int, delay: float) -> None:
        heapq.heappush(self.retry_heap, (time.monotonic() + delay, i))
        if self._idle:
            self.arm_timer()

    def has_rows(self) -> bool:
        return bool(self.queue or (self.retry_heap and self.retry_heap[0][0] <= time.monotonic()))

    def drain_rows(self) -> list[int]:
        rows = list(self.queue) + [i for _, i in sorted(self.retry_heap)]
        self.queue.clear()
        self.retry_heap.clear()
        return rows

    def idle(self) -> bool:
        return not self.queue and not self.retry_heap and not self.inflight

    # --- idle workers ----------------------------------------------------------------------------

    async def sleep(self) -> None:
        assert self.loop is not None
        fut = self.loop.create_future()
        self._idle.append(fut)
        self.arm_timer()
        await fut

    def wake_all(self) -> None:
        idle, self._idle = self._idle, []
        for fut in idle:
            if not fut.done():
                fut.set_result(None)

    def arm_timer(self) -> None:
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
        self.wake_all()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
