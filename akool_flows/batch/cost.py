"""What a batch is expected to cost, row by row, and where each figure comes from.

Sources, in order of preference:

``price_list``
    the docs publish the price (Jarvis moderation: text per started 600 characters, images
    each, audio/video per started minute when the duration is known) - `JobKind.estimate_credits`;
``cost_table``
    the user's own figure for the kind (``cost_table={"talking_photo": 3.0}``);
``observed``
    the mean credits that finished jobs of this kind reported in the ledger (``deduction_*``);
``unknown``
    none of the above: the estimate says so rather than invent a price.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from akool_flows.api.errors import ValidationError
from akool_flows.api.kinds import JobKind
from akool_flows.api.pricing import USD_PER_CREDIT

SOURCES = ("price_list", "cost_table", "observed", "unknown")


def check_cost_table(cost_table: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate ``{kind: credits per job}``; a clear error names the bad entry."""
    from akool_flows.api.kinds import KINDS

    out: dict[str, float] = {}
    for name, value in (cost_table or {}).items():
        if name not in KINDS:
            raise ValidationError(f"cost_table: unknown kind {name!r}; allowed: {', '.join(KINDS)}",
                                  field="cost_table")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValidationError(f"cost_table[{name!r}] must be a number of credits >= 0, got {value!r}",
                                  field="cost_table")
        out[name] = float(value)
    return out


def estimate_row(kind: JobKind, body: Mapping[str, Any], *, duration_seconds: float | None = None,
                 cost_table: Mapping[str, float] | None = None,
                 observed: float | None = None) -> tuple[float | None, str]:
    """Credits one job is expected to cost and the source of that figure."""
    credits = kind.estimate_credits(body, duration_seconds=duration_seconds)
    if credits is not None:
        return float(credits), "price_list"
    if cost_table and kind.name in cost_table:
        return cost_table[kind.name], "cost_table"
    if observed is not None:
        return observed, "observed"
    return None, "unknown"


@dataclass(frozen=True)
class CostEstimate:
    """The expected cost of the valid rows of a plan.

    ``total_credits`` covers the rows whose price is known; ``unknown_rows`` says how many are
    not included. ``per_row`` holds one figure per planned row (NaN: rejected or unknown).
    """

    total_credits: float
    unknown_rows: int
    usd: float
    per_row: tuple[float, ...] = field(repr=False)
    usd_per_credit: float = USD_PER_CREDIT
    sources: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, per_row: list[float | None], sources: list[str | None],
                  usd_per_credit: float = USD_PER_CREDIT) -> CostEstimate:
        """Sum per-row figures; rows whose source is None (rejected) are left out of the counts."""
        counted = [(c, s) for c, s in zip(per_row, sources) if s is not None]
        total = round(sum(c for c, _ in counted if c is not None), 6)
        counts = {name: 0 for name in SOURCES}
        for _, s in counted:
            counts[s] += 1
        return cls(total_credits=total, unknown_rows=counts["unknown"], usd=round(total * usd_per_credit, 6),
                   per_row=tuple(math.nan if c is None else float(c) for c in per_row),
                   usd_per_credit=usd_per_credit, sources=counts)

    @property
    def complete(self) -> bool:
        """Every valid row has a price."""
        return self.unknown_rows == 0

    def describe(self) -> str:
        """One line for logs and terminals."""
        text = f"{self.total_credits:,.2f} credits (~{self.usd:,.2f} USD)"
        if self.unknown_rows:
            text += f" + {self.unknown_rows} row(s) of unknown price"
        used = [f"{n} {s.replace('_', ' ')}" for s, n in self.sources.items() if n and s != "unknown"]
        return text + (f" [{', '.join(used)}]" if used else "")

    def to_dict(self) -> dict[str, Any]:
        return {"total_credits": self.total_credits, "unknown_rows": self.unknown_rows, "usd": self.usd,
                "usd_per_credit": self.usd_per_credit, "sources": dict(self.sources)}
