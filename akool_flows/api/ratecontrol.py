"""Finding an account's request rate by itself: AIMD pacing per credential, as TCP finds a link's capacity.

Akool documents its rate-limit code (1005) but not the limit. A fixed rate either leaves
throughput unused or has a large share of calls refused, and an account that keeps sending
refused calls risks being throttled harder (1200). So every client of one credential in a
process shares one `RateController`:

* **pacing**: send slots ``1 / rate`` apart (a slot is claimed before the wait, so concurrent
  callers queue instead of waking together); a ``Retry-After`` pauses every slot until it passes;
* **slow start**: from `DEFAULT_INITIAL` (or the rate remembered for the credential) the rate
  grows by `SLOW_START_STEP` per accepted call - about e-fold per second - until the first refusal;
* **congestion avoidance**: then by `INCREASE` req/s per second (additive);
* **decrease**: a refusal (1005 / HTTP 429) sets the rate to `DECREASE` x the rate the server
  actually accepted over the last second (over the time since the first answer, for a controller
  younger than that) - once per round: refusals of calls sent before the decrease say nothing new;
* the rate grows only while the pacing is what holds calls back and at least half of it is used,
  so a quiet phase (jobs running, nothing to send) or a slow machine does not inflate it into a
  burst of refusals later.

Two processes on one account each see refusals in proportion to what they send and grow by the
same step, so they converge to a fair share without talking to each other (the AIMD argument).
How fast they get there: each refusal cycle shrinks the gap between them to `DECREASE` of it, and
a cycle lasts about ``(1 - DECREASE) x limit / (processes x INCREASE)`` plus the time to drain the
server's burst, so a late joiner's catch-up slows with the pace. With x0.85 and +5/s per second a
process joining a 300/s account 10 s after another had 0.62 of a fair share over the next 30 s
(the simulation in tests/api/test_ratecontrol.py); with x0.7 and +8/s the gap shrinks nearly
twice as fast per second (x0.7 per cycle, cycles ~1.25x as long), with no more refusals (deeper
cuts, fewer cycles). And a newcomer's first refusal comes within a second of its start: counted
over a full second, its accepted rate looked a fraction of what it was, and it crawled up from
there (now within 2% of its share there).

The last good rate is remembered per credential - keyed by a hash, never the credential - in a
small JSON file (`remember_rates`; the batch runner points it at the user's state directory), so
the next run starts near it. A user's ``max_requests_per_second`` is a `Pacer` on top.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import math
import os
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["Pacer", "RateController", "controller_for", "credential_key", "remember_rates", "request_cap"]

log = logging.getLogger("akool_flows.ratecontrol")

#: Requests/s on first contact with an account (no remembered rate).
DEFAULT_INITIAL = 50.0
#: Never paced slower than this (a refused call still gets an answer at this pace).
FLOOR = 1.0
#: Never faster than this, whatever the server accepts (no account needs more from one process).
CEILING = 5000.0
#: Slow start: req/s added per accepted call (r calls per second -> e-fold growth per second).
SLOW_START_STEP = 1.0
#: Congestion avoidance: req/s added per second of accepted calls. The same for every process
#: (absolute, not proportional), which is what makes two processes converge to a fair share.
INCREASE = 8.0
#: On a refusal, the new rate is this share of the rate the server accepted over the last second.
#: (The sawtooth's dip is mostly absorbed by a server's burst allowance; without any, a single
#: process would average ~(1 + DECREASE) / 2 of the limit.)
DECREASE = 0.7
#: The pace grows only while at least this share of it is used.
USED = 0.5
#: Accepted calls are counted over this window to estimate what the server accepts.
WINDOW = 1.0
#: Remembered rates older than this are not trusted (limits change; accounts are upgraded).
REMEMBER_FOR = 7 * 24 * 3600.0
#: Save the state file at most this often.
_SAVE_EVERY = 5.0


class Pacer:
    """Fixed spacing: send slots ``1 / per_second`` apart (a user's cap). Thread-safe."""

    def __init__(self, per_second: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def delay(self) -> float:
        """Claim the next slot; seconds to wait for it (0 without a limit)."""
        if not self.per_second:
            return 0.0
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + 1.0 / self.per_second
            return slot - now


class RateController:
    """AIMD request rate for one credential (see the module docstring). Thread-safe."""

    def __init__(self, *, initial: float | None = None, key: str | None = None,
                 clock: Callable[[], float] = time.monotonic, floor: float = FLOOR, ceiling: float = CEILING,
                 increase: float = INCREASE, decrease: float = DECREASE) -> None:
        if not 0 < decrease < 1:
            raise ValueError(f"decrease must be in (0, 1), got {decrease!r}")
        self.key = key
        self.floor, self.ceiling, self.increase, self.decrease = floor, ceiling, increase, decrease
        self._clock = clock
        self._lock = threading.Lock()
        self._given = initial is not None
        self.rate = min(ceiling, max(floor, float(initial if initial is not None else DEFAULT_INITIAL)))
        #: Slow start until this rate (none above a remembered one: it is known to be near the limit).
        self.ssthresh = math.inf
        self._next = 0.0
        self._paused_until = 0.0
        self._epoch = 0
        self._binding_at = -math.inf
        self._accepted_times: deque[float] = deque()
        self._first_answer: float | None = None
        self._last_save = -math.inf
        #: Seconds from send to answer (EWMA): with the rate, how many calls need to be in flight.
        self.latency = 0.0
        self.accepted = 0
        self.refused = 0
        self._start_from_memory()

    def __repr__(self) -> str:
        return f"RateController(rate={self.rate:.1f}/s, accepted={self.accepted}, refused={self.refused})"

    def _start_from_memory(self) -> None:
        """Start from the rate remembered for the credential, unless given one or already sending
        (a client made before the runner named the state file still starts from it)."""
        if self._given or self.key is None or self.accepted or self.refused:
            return
        remembered = _STORE.load(self.key)
        if remembered is not None:
            self.rate = self.ssthresh = min(self.ceiling, max(self.floor, remembered))

    # --- pacing --------------------------------------------------------------------------------

    def acquire(self) -> tuple[float, int]:
        """Claim the next send slot: (seconds to wait for it, the round it belongs to)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next, self._paused_until)
            self._next = slot + 1.0 / self.rate
            if slot > now:
                self._binding_at = now  # callers are waiting on the pace: evidence to grow it
            return slot - now, self._epoch

    # --- feedback ------------------------------------------------------------------------------

    def record(self, epoch: int, sent_at: float, *, refused: bool, retry_after: float | None = None) -> None:
        """The answer to a call claimed in round ``epoch`` and sent at ``sent_at`` (this clock)."""
        with self._lock:
            now = self._clock()
            took = max(0.0, now - sent_at)
            if self._first_answer is None:
                self._first_answer = now
            self.latency = took if not self.latency else 0.9 * self.latency + 0.1 * took
            if refused:
                self._refused(now, epoch, retry_after)
            else:
                self._accepted(now)

    def _accepted(self, now: float) -> None:
        self.accepted += 1
        times = self._accepted_times
        times.append(now)
        while times and times[0] < now - WINDOW:
            times.popleft()
        if now - self._binding_at > WINDOW or len(times) < USED * self.rate * WINDOW:
            # Not sending as fast as allowed (a caller waited now and then, but the pace is
            # mostly unused): an accepted call proves nothing about a faster pace (RFC 7661).
            return
        step = SLOW_START_STEP if self.rate < self.ssthresh else self.increase / self.rate
        self.rate = min(self.ceiling, self.rate + step)

    def _refused(self, now: float, epoch: int, retry_after: float | None) -> None:
        self.refused += 1
        if retry_after:
            self._paused_until = max(self._paused_until, now + retry_after)
        if epoch != self._epoch:
            return  # sent at the rate before the last decrease: already answered by it
        self._epoch += 1
        times = self._accepted_times
        while times and times[0] < now - WINDOW:
            times.popleft()
        # What the server accepted is the best estimate of the limit (or of this process's
        # share of it); too few calls to tell says nothing, then the current rate is halved.
        # (A controller younger than the window counts over its age: a newcomer refused in its
        # first second would otherwise see a fraction of its rate and start its share from there.)
        first = now if self._first_answer is None else self._first_answer
        span = min(WINDOW, max(now - first, 0.05))
        measured = len(times) / span if len(times) >= 5 else self.rate / 2 / self.decrease
        self.rate = max(self.floor, min(self.rate, measured) * self.decrease)
        self.ssthresh = self.rate
        # Slots already handed out stand (their callers sleep on them); new ones follow at the new pace.
        self._next = max(self._next, now + 1.0 / self.rate)
        self._save(now, force=False)

    # --- in-flight calls -----------------------------------------------------------------------

    def concurrency(self, maximum: int) -> int:
        """Calls worth having in flight (Little's law with headroom), at most ``maximum``."""
        with self._lock:
            if not self.latency:
                return maximum
            need = math.ceil(self.rate * self.latency * 1.5) + 2
        return max(1, min(maximum, need))

    # --- memory --------------------------------------------------------------------------------

    def good_rate(self) -> float:
        """The rate worth starting from next time: the current one, or, after refusals, the
        post-decrease rate (what the account sustained)."""
        return self.ssthresh if math.isfinite(self.ssthresh) and self.ssthresh < self.rate else self.rate

    def save(self) -> None:
        with self._lock:
            self._save(self._clock(), force=True)

    def _save(self, now: float, *, force: bool) -> None:
        if self.key is None or (not force and now - self._last_save < _SAVE_EVERY):
            return
        self._last_save = now
        _STORE.store(self.key, self.good_rate())


def credential_key(base_url: str, credential: str) -> str:
    """A stable name for (endpoint, credential) that reveals neither: a hash."""
    return hashlib.sha256(f"{base_url.rstrip('/')}\0{credential}".encode()).hexdigest()[:24]


_REGISTRY: dict[str, RateController] = {}
_REGISTRY_LOCK = threading.Lock()


def controller_for(key: str) -> RateController:
    """The process's one controller for the credential ``key`` (`credential_key`)."""
    with _REGISTRY_LOCK:
        ctl = _REGISTRY.get(key)
        if ctl is None:
            ctl = _REGISTRY[key] = RateController(key=key)
        return ctl


class _RateStore:
    """The remembered rates: ``{key: {"rate": r, "at": unix time}}`` in one JSON file."""

    def __init__(self) -> None:
        self.path: Path | None = None
        self._lock = threading.Lock()

    def load(self, key: str) -> float | None:
        entry = self._read().get(key)
        if not isinstance(entry, dict):
            return None
        rate, at = entry.get("rate"), entry.get("at")
        if not isinstance(rate, (int, float)) or not isinstance(at, (int, float)) or not rate > 0:
            return None
        return float(rate) if time.time() - at < REMEMBER_FOR else None

    def store(self, key: str, rate: float) -> None:
        if self.path is None:
            return
        with self._lock:
            data = self._read()
            data[key] = {"rate": round(rate, 3), "at": round(time.time(), 3)}
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".rates-", suffix=".tmp")
                with os.fdopen(fd, "w") as fh:
                    json.dump(data, fh)
                os.replace(tmp, self.path)  # another process reads the old or the new file, never half
            except OSError as exc:
                log.info("could not remember the request rate (%s)", exc)
                with contextlib.suppress(OSError, UnboundLocalError):
                    os.unlink(tmp)

    def _read(self) -> dict[str, Any]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}


_STORE = _RateStore()


def remember_rates(path: str | os.PathLike[str] | None) -> None:
    """Remember good rates in ``path`` (None: only for the life of the process). A controller
    made after this starts from the rate remembered there for its credential."""
    _STORE.path = None if path is None else Path(path)
    with _REGISTRY_LOCK:
        controllers = list(_REGISTRY.values())
    for ctl in controllers:
        with ctl._lock:
            ctl._start_from_memory()


def remembering() -> Path | None:
    """Where good rates are remembered (None: nowhere)."""
    return _STORE.path


class _RequestCap:
    """A `Pacer` for the calls of the current context (a batch run's ``max_requests_per_second``):
    a context variable, so it follows the run's tasks and no other caller of the same client."""

    def __init__(self) -> None:
        self._var: contextvars.ContextVar[Pacer | None] = contextvars.ContextVar("akool_request_cap", default=None)

    def delay(self) -> float:
        pacer = self._var.get()
        return 0.0 if pacer is None else pacer.delay()

    @contextlib.contextmanager
    def limit(self, per_second: float | None) -> Iterator[None]:
        """Calls made in this context (and tasks started from it) send at most ``per_second``."""
        token = self._var.set(Pacer(per_second) if per_second else None)
        try:
            yield
        finally:
            self._var.reset(token)


request_cap = _RequestCap()
