"""One set of numbers for a run, and the words the apps use for it.

The status line, the progress line, the progress bar, the cost summary and the charts all read
the same `RunNumbers` (from the engine's `Progress` while a run goes, from its summary after),
and name outcomes with the same labels, so a cancelled run cannot say one thing in one place and
another elsewhere. ``submitted`` after a run means the job runs on at Akool and this run stopped
waiting for it: it is shown as "running (not waited for)", and Run collects it later.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["OUTCOME_LABELS", "OUTCOME_ORDER", "RunNumbers", "format_credits", "label", "money_text"]

#: Engine outcomes in the order the apps list them.
OUTCOME_ORDER = ("completed", "failed", "rejected", "uncertain", "timed_out", "submitted", "cancelled")
#: How an outcome reads on screen (the data keeps the engine's word).
OUTCOME_LABELS: dict[str, str] = {
    "submitted": "running (not waited for)",
    "cancelled": "cancelled (not sent)",
    "timed_out": "timed out",
}
#: Outcomes that leave work for a later Run: the row is neither done nor lost.
RESUMABLE = ("submitted", "cancelled", "timed_out")
_HEADS = {"budget": "Stopped by the budget", "quota": "Stopped by Akool: not enough credits",
          "auth": "Stopped by Akool: authentication failed", "lease": "Stopped: another run took the batch over",
          "error": "Stopped: the run's own bookkeeping failed"}


def label(outcome: str) -> str:
    return OUTCOME_LABELS.get(outcome, outcome)


def format_credits(value: float | None) -> str:
    """Credits as people read them: up to 4 decimals, no trailing zeros; "unknown" for None/NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "unknown"
    text = f"{value:,.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def money_text(new: float, earlier: float, usd_per_credit: float | None = None) -> str:
    """``2.1 credits new (≈ $0.08) · 0.5 already paid``: what this run adds, and what it did not."""
    text = f"{format_credits(new)} credits new"
    if usd_per_credit:
        text += f" (≈ ${new * usd_per_credit:,.2f})"
    if earlier:
        text += f" · {format_credits(earlier)} already paid"
    return text


def _n(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def _f(value: Any) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return 0.0
    return 0.0 if math.isnan(f) else f


@dataclass(frozen=True)
class RunNumbers:
    """Rows per outcome and credits of one run (so far)."""

    total: int
    counts: Mapping[str, int] = field(default_factory=dict)
    credits_new: float = 0.0
    credits_earlier: float = 0.0
    elapsed: float | None = None
    stopped_by: str | None = None
    #: Jobs being waited for right now (only while the run goes).
    in_flight: int = 0
    #: Rows that have (or had) a job id.
    submitted: int = 0
    #: The account's request pace as the client found it (api.ratecontrol), and calls refused.
    rate: float | None = None
    refused_calls: int = 0

    @classmethod
    def from_progress(cls, p: Any) -> RunNumbers:
        counts = {o: _n(getattr(p, o, 0)) for o in OUTCOME_ORDER if o != "submitted"}
        counts["submitted"] = _n(getattr(p, "left_running", 0))
        return cls(total=_n(p.total), counts=counts, credits_new=_f(getattr(p, "credits_new", 0)),
                   credits_earlier=_f(getattr(p, "credits_earlier", 0)), elapsed=_f(getattr(p, "elapsed", 0)),
                   stopped_by=getattr(p, "stopped_by", None), in_flight=_n(getattr(p, "in_flight", 0)),
                   submitted=_n(getattr(p, "submitted", 0)), rate=getattr(p, "rate", None),
                   refused_calls=_n(getattr(p, "refused_calls", 0)))

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any], elapsed: float | None = None) -> RunNumbers:
        counts = {o: _n((summary.get("counts") or {}).get(o)) for o in OUTCOME_ORDER}
        return cls(total=_n(summary.get("rows")), counts=counts, credits_new=_f(summary.get("credits_new")),
                   credits_earlier=_f(summary.get("credits_already_paid")),
                   elapsed=elapsed if elapsed is not None else summary.get("wall_seconds"),
                   stopped_by=summary.get("stopped_by"), submitted=_n(summary.get("submitted")))

    @property
    def done(self) -> int:
        """Rows whose work is over: not the ones left running, not the ones never sent."""
        return sum(n for o, n in self.counts.items() if o not in ("submitted", "cancelled"))

    def parts(self) -> list[str]:
        """``["22 completed", "3 running (not waited for)"]``: every outcome that has rows, in order."""
        return [f"{self.counts[o]:,} {label(o)}" for o in OUTCOME_ORDER if self.counts.get(o)]

    def head(self, state: str) -> str:
        """The status line's first word(s) for a run that ended in `state`."""
        if state == "cancelled":
            return "Cancelled"
        return _HEADS.get(self.stopped_by or "", "Finished")

    def status_line(self, state: str, usd_per_credit: float | None = None) -> str:
        bits = [f"{self.head(state)}: {', '.join(self.parts()) or 'no rows'}",
                money_text(self.credits_new, self.credits_earlier, usd_per_credit)]
        if self.elapsed is not None:
            bits.append(f"{self.elapsed:,.1f} s")
        line = " · ".join(bits)
        left = self.counts.get("submitted", 0) + self.counts.get("cancelled", 0) + self.counts.get("timed_out", 0)
        if left:
            line += ". Run again to collect the rest: nothing is paid twice."
        return line

    def progress_line(self) -> str:
        """The line beside the progress bar (HTML-free text; the caller escapes)."""
        bits = [f"{self.done:,} / {self.total:,} rows done", f"{self.submitted:,} jobs created"]
        if self.in_flight:
            bits.append(f"{self.in_flight:,} running")
        bits += [f"{self.counts[o]:,} {label(o)}" for o in OUTCOME_ORDER
                 if o != "completed" and self.counts.get(o)]
        bits.append(money_text(self.credits_new, self.credits_earlier))
        if self.rate:
            bits.append(f"{self.rate:,.0f} req/s" + (f" ({self.refused_calls:,} refused)" if self.refused_calls else ""))
        if self.elapsed is not None:
            bits.append(f"{self.elapsed:,.1f} s")
        return " · ".join(bits)
