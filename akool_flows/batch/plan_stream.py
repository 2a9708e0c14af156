"""The plan of an input too big to hold: chunk by chunk, in worker processes, in flat memory.

`summarize_plan` gives what ``--dry-run`` and the notebook's estimate show (rows, valid,
duplicates, rejections with their first rows, the estimated cost) for any number of rows: each
chunk is planned by `plan_batch` on its own (in a pool of worker processes once the input is
big), and only the figures come back. What crosses chunks is the one thing that must: the key of
every valid request, so a row identical to one in an earlier chunk counts as a duplicate (sent
once), exactly as in one whole plan. Those keys are kept as 16 bytes each.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from akool_flows.api.kinds import JobKind, get_kind
from akool_flows.batch.cost import SOURCES, USD_PER_CREDIT, CostEstimate

__all__ = ["PlanSummary", "summarize_plan"]

#: Inputs up to this many rows are planned in this process (a pool costs ~1 s to start).
_POOL_AFTER_ROWS = 100_000


@dataclass
class _ChunkFigures:
    """What one planned chunk sends back (picklable, no bodies)."""

    rows: int
    duplicates: int
    keys: list[bytes]  # one per valid row (plain keys: requests that can repeat across chunks)
    est: list[float | None]
    sources: list[int]  # index into SOURCES
    rejections: list[tuple[str, int, list[Any]]]


def _plan_chunk(chunk: pd.DataFrame, kind: str, plan_kwargs: dict[str, Any]) -> _ChunkFigures:
    from akool_flows.batch.plan import plan_batch

    plan = plan_batch(chunk, kind, **plan_kwargs)
    plain = plan_kwargs.get("dedupe", True)  # without dedupe keys carry "#n": nothing to match
    sources = plan.rows["cost_source"].tolist()
    keys, est, where = [], [], []
    for key, ok, credits, source in zip(plan.keys, plan.valid, plan.est, sources):
        if ok:
            keys.append(bytes.fromhex(key) if plain else b"")
            est.append(credits)
            where.append(SOURCES.index(source))
    return _ChunkFigures(rows=len(plan), duplicates=plan.duplicate_count, keys=keys, est=est, sources=where,
                         rejections=[(r["error"], r["count"], r["first_rows"]) for r in plan.rejections(limit=None)])


@dataclass
class PlanSummary:
    """The figures of a whole plan without its rows: what `BatchPlan.summary` shows.

    Read like a `BatchPlan` by the CLI's and the notebook's printers (``len``, ``valid_count``,
    ``duplicate_count``, ``rejected_count``, ``rejections()``, ``estimate``, ``summary()``).
    """

    kind: JobKind
    estimate: CostEstimate
    rows: int = 0
    valid_count: int = 0
    duplicate_count: int = 0
    _rejections: dict[str, list[Any]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return self.rows

    @property
    def rejected_count(self) -> int:
        return self.rows - self.valid_count - self.duplicate_count

    def rejections(self, limit: int | None = 10) -> list[dict[str, Any]]:
        ranked = sorted(self._rejections.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [{"error": err, "count": n, "first_rows": first} for err, (n, first) in ranked[:limit]]

    def summary(self) -> dict[str, Any]:
        return {"kind": self.kind.name, "rows": self.rows, "valid": self.valid_count,
                "duplicates": self.duplicate_count, "rejected": self.rejected_count,
                "rejections": self.rejections(), "estimate": self.estimate.to_dict(),
                "estimate_text": self.estimate.describe()}


class _Totals:
    """Chunk figures folded in input order; a valid row whose key an earlier chunk had is a duplicate."""

    def __init__(self, dedupe: bool) -> None:
        self.dedupe = dedupe
        self.seen: set[bytes] = set()
        self.rows = self.valid = self.duplicates = 0
        self.credits = 0.0
        self.counts = [0] * len(SOURCES)
        self.rejections: dict[str, list[Any]] = {}

    def add(self, figures: _ChunkFigures) -> None:
        self.rows += figures.rows
        self.duplicates += figures.duplicates
        seen = self.seen
        for key, credits, source in zip(figures.keys, figures.est, figures.sources):
            if self.dedupe:
                if key in seen:
                    self.duplicates += 1
                    continue
                seen.add(key)
            self.valid += 1
            self.counts[source] += 1
            if credits is not None:
                self.credits += credits
        for error, count, first in figures.rejections:
            entry = self.rejections.setdefault(error, [0, []])
            entry[0] += count
            entry[1] = (entry[1] + first)[:5]

    def summary(self, kind: JobKind, usd_per_credit: float) -> PlanSummary:
        total = round(self.credits, 6)
        estimate = CostEstimate(total_credits=total, unknown_rows=self.counts[SOURCES.index("unknown")],
                                usd=round(total * usd_per_credit, 6), per_row=(), usd_per_credit=usd_per_credit,
                                sources=dict(zip(SOURCES, self.counts)))
        return PlanSummary(kind=kind, estimate=estimate, rows=self.rows, valid_count=self.valid,
                           duplicate_count=self.duplicates, _rejections=self.rejections)


def summarize_plan(chunks: Iterable[pd.DataFrame], kind: str | JobKind, *, workers: int = 1,
                   usd_per_credit: float = USD_PER_CREDIT, **plan_kwargs: Any) -> PlanSummary:
    """Plan every chunk of an input (DataFrames in input order, with distinct index labels) and
    return the whole plan's figures; memory holds a few chunks and 16 bytes per valid row.

    Args:
        chunks: the input, a DataFrame at a time (`akool_flows.cli.batch_input.iter_table`, a
            ``pd.read_csv(..., chunksize=...)`` reader, a list of frames).
        kind: a registry kind name.
        workers: processes planning chunks at once (1: all in this process); 0: one per CPU once
            the input passes 100,000 rows. Worker processes are started with ``spawn``, which
            imports your ``__main__``: a script must guard its code with
            ``if __name__ == "__main__":`` (the ``akool-flows`` command does). A ``columns``
            function or an open `Ledger` keep the plan in this process.
        **plan_kwargs: `plan_batch`'s arguments (``columns``, ``defaults``, ``cost_table``,
            ``durations``, ``dedupe``, ``max_cell_chars``, ``ledger`` (a path), ``stage``,
            ``strict_fields``).
    """
    k = get_kind(kind)
    kwargs = {**plan_kwargs, "usd_per_credit": usd_per_credit}
    totals = _Totals(dedupe=kwargs.get("dedupe", True))
    pool: Executor | None = None
    pending: deque[Future[_ChunkFigures]] = deque()
    may_pool = workers != 1 and not callable(kwargs.get("columns")) and not _is_open_ledger(kwargs.get("ledger"))
    count = workers or os.cpu_count() or 1  # 0: every CPU
    seen_rows = 0
    try:
        for chunk in chunks:
            seen_rows += len(chunk)
            if pool is None and may_pool and count > 1 and (workers or seen_rows > _POOL_AFTER_ROWS):
                pool = ProcessPoolExecutor(count, mp_context=multiprocessing.get_context("spawn"))
            if pool is None:
                totals.add(_plan_chunk(chunk, k.name, kwargs))
                continue
            pending.append(pool.submit(_plan_chunk, chunk, k.name, kwargs))
            while len(pending) > count:  # a few chunks in flight, never the whole input
                totals.add(pending.popleft().result())
        while pending:
            totals.add(pending.popleft().result())
    finally:
        if pool is not None:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)
    return totals.summary(k, usd_per_credit)


def _is_open_ledger(ledger: Any) -> bool:
    # An open Ledger holds a SQLite connection: it cannot cross to a worker process (a path can).
    return ledger is not None and not isinstance(ledger, (str, os.PathLike))


def frames(df: pd.DataFrame, rows: int) -> Iterator[pd.DataFrame]:
    """A DataFrame a slice at a time (for `summarize_plan` on a frame already in memory)."""
    for start in range(0, len(df), rows):
        yield df.iloc[start:start + rows]

