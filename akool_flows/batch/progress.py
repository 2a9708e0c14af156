"""Progress of a running batch, and two ways to show it (a bar on a terminal, plain log lines otherwise).

The engine calls ``progress(Progress)`` a few times per second at most, never per job, so a
callback may redraw a widget or write a log line without slowing the batch.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, TextIO

__all__ = ["Progress", "ProgressLogger", "ProgressPrinter"]


@dataclass(frozen=True)
class Progress:
    """Counts of a batch so far. ``submitted`` counts rows that have (or had) a job id."""

    total: int
    submitted: int = 0
    completed: int = 0
    failed: int = 0
    rejected: int = 0
    uncertain: int = 0
    cancelled: int = 0
    timed_out: int = 0
    #: Rows whose job runs on and is not waited for (outcome ``submitted``, ``run_batch(wait=False)``).
    left_running: int = 0
    in_flight: int = 0
    #: Credits of finished jobs (reported by Akool, else estimated) plus estimates of running ones.
    credits: float = 0.0
    #: Of which: rows this run created, and rows an earlier run (or another batch) already paid.
    credits_new: float = 0.0
    credits_earlier: float = 0.0
    elapsed: float = 0.0
    #: True on the last call of a run.
    done: bool = False
    #: Why submission stopped early: "budget", "cancel", "quota", "auth", "lease" (another run
    #: took the batch over), "error" (the ledger / results / webhook store failed), or None.
    stopped_by: str | None = None
    #: The account's request pace now (requests/s), as the client found it (`api.ratecontrol`).
    rate: float = 0.0
    #: Calls answered "too frequent" (1005 / 429) during this run: what finding the pace cost.
    refused_calls: int = 0

    @classmethod
    def of_run(cls, run: Any, done: bool = False) -> Progress:
        """The figures of a running `engine.Run` now."""
        c = run.rows.counts
        return cls(total=run.rows.n, submitted=run.submitted_count, completed=c["completed"],
                   failed=c["failed"], rejected=c["rejected"], uncertain=c["uncertain"],
                   cancelled=c["cancelled"], timed_out=c["timed_out"], left_running=c["submitted"],
                   in_flight=len(run.sched.inflight), credits=round(run.budget.committed, 6),
                   credits_new=round(run.budget.new, 6), credits_earlier=round(run.budget.earlier, 6),
                   elapsed=time.monotonic() - run.t_start, done=done, stopped_by=run.stopped_by,
                   rate=round(run.rate.rate, 1), refused_calls=run.rate.refused - run.refused_start)

    @property
    def finished(self) -> int:
        """Rows with an outcome (terminal for this run)."""
        return (self.completed + self.failed + self.rejected + self.uncertain + self.cancelled + self.timed_out
                + self.left_running)

    @property
    def fraction(self) -> float:
        return self.finished / self.total if self.total else 1.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "finished": self.finished}

    def line(self) -> str:
        """One readable line: ``412/2000 done (20.6%) | 380 ok, 12 failed, ... | 41.2 credits | 12s``."""
        parts = [f"{self.completed} ok"]
        for name in ("failed", "rejected", "uncertain", "timed_out", "cancelled"):
            value = getattr(self, name)
            if value:
                parts.append(f"{value} {name.replace('_', ' ')}")
        if self.left_running:
            parts.append(f"{self.left_running} submitted, not waited for")
        if self.in_flight:
            parts.append(f"{self.in_flight} running")
        stop = f" | stopped: {self.stopped_by}" if self.stopped_by else ""
        pace = f" | {self.rate:,.0f} req/s" if self.rate else ""
        if self.refused_calls:
            pace += f" ({self.refused_calls:,} refused)"
        money = f"{self.credits_new:,.2f} credits new"
        if self.credits_earlier:
            money += f" + {self.credits_earlier:,.2f} already paid"
        return (f"{self.finished}/{self.total} done ({100 * self.fraction:.1f}%) | {', '.join(parts)} | "
                f"{money}{pace} | {self.elapsed:,.0f}s{stop}")


class ProgressPrinter:
    """A progress callback: a redrawn bar on a terminal, one plain line every ``interval`` s otherwise."""

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, interval: float = 5.0,
                 width: int = 28) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval
        self.width = width
        self._last = 0.0

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if self.tty:
            filled = int(self.width * p.fraction)
            bar = "#" * filled + "-" * (self.width - filled)
            self.stream.write(f"\r[{bar}] {p.line()}\x1b[K")
            if p.done:
                self.stream.write("\n")
            self.stream.flush()
        elif p.done or now - self._last >= self.interval:
            self._last = now
            self.stream.write(f"progress: {p.line()}\n")
            self.stream.flush()


class ProgressLogger:
    """A progress callback writing `Progress.line` to a logger (an Airflow task log) every
    ``interval`` seconds and at the end."""

    def __init__(self, logger: Any, *, interval: float = 30.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last = -math.inf  # the monotonic clock may start near 0 (a machine up for minutes)

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        if p.done or now - self._last >= self.interval:
            self._last = now
            self.logger.info("progress: %s", p.line())
