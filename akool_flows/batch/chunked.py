"""A batch over an input too big to hold: one run per chunk, results streamed to one file.

Memory holds one chunk's plan and results (and the ledger's index), whatever the row count.
Every chunk is an ordinary run (`arun_batch`) with its own batch id (a hash of its rows, so the
same file resumes the same chunks) in the one ledger; an input row identical to one in an
earlier chunk is found by the ledger's claim (the identical request of another batch: its job is
adopted, never sent again), so nothing is paid twice across chunks either.

The budget spans the whole input: each chunk may spend what earlier chunks left. A chunk that
stops the run (budget, Ctrl-C, another process took the batch over, a failed write) ends it:
the rows of the chunks not reached are written as ``cancelled`` (nothing sent), so every input
row is in the results file once.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from akool_flows.batch.cost import CostEstimate
from akool_flows.batch.errors import BatchInputError, BudgetError
from akool_flows.batch.export import ChunkedCsv
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.options import BatchOptions
from akool_flows.batch.plan import plan_batch
from akool_flows.batch.results import RESULT_COLUMNS, BatchResult, cost_log, exit_status

__all__ = ["arun_chunks"]

log = logging.getLogger("akool_flows.batch")

#: Rows of the results kept in memory to show at the end (the file has them all).
_HEAD_ROWS = 50


async def arun_chunks(chunks: Iterable[pd.DataFrame], kind: str, *, results_path: str | Path,
                      ledger: str | Path, client: Any, options: BatchOptions,
                      cost_log_path: str | Path | None = None, estimate: CostEstimate | None = None,
                      **plan_kwargs: Any) -> BatchResult:
    """Run every chunk of an input (DataFrames in input order) as its own batch in one ledger.

    ``results_path`` and ``cost_log_path`` must be CSV files (written a chunk at a time, moved
    into place at the end). ``estimate``: the whole input's (`summarize_plan`), checked against
    the budget before anything is sent and reported in the summary. Returns a `BatchResult`
    whose ``summary`` covers the whole input and whose ``results`` / ``cost_log`` hold the first
    rows (the files hold all of them).
    """
    from akool_flows.batch.runner import arun_batch

    for name, path in (("results_path", results_path), ("cost_log_path", cost_log_path)):
        if path is not None and Path(path).suffix.lower() != ".csv":
            raise BatchInputError(f"{name}: a run in chunks writes CSV, got {str(path)!r}", field=name)
    limit = options.budget_credits
    if estimate is not None and limit is not None and estimate.unknown_rows and options.max_credits_per_row is None:
        raise BudgetError.unpriced(limit, estimate.unknown_rows, kind)
    started = time.monotonic()
    out = ChunkedCsv(results_path)
    costs_out = ChunkedCsv(cost_log_path) if cost_log_path is not None else None
    totals = _Totals(options)
    head: list[pd.DataFrame] = []
    cost_head: list[pd.DataFrame] = []
    with Ledger(ledger) as led:
        try:
            for chunk in chunks:
                plan = plan_batch(chunk, kind, ledger=led, usd_per_credit=options.usd_per_credit, **plan_kwargs)
                if totals.stopped_by is not None:
                    results = _not_reached(plan, totals.stopped_by)
                else:
                    opts = dataclasses.replace(options, results_path=None, budget_credits=totals.budget_left())
                    result = await arun_batch(plan, client=client, ledger=led, options=opts)
                    results = _mark_repeats(result.results, plan, led, set(totals.batches))
                    totals.add(result)
                out.add(results)
                costs = cost_log(results, options.usd_per_credit).iloc[:-1]  # the TOTAL row comes last
                if costs_out is not None:
                    costs_out.add(costs)
                totals.count_rows(results, costs)
                if sum(len(h) for h in head) < _HEAD_ROWS:
                    head.append(results.head(_HEAD_ROWS).copy())
                    cost_head.append(costs.head(_HEAD_ROWS).copy())
                # The next chunk's plan must not be built beside this one's leftovers.
                del plan, results, costs
                result = None
                gc.collect()
        except BaseException:
            out.close()
            if costs_out is not None:
                costs_out.close()
            raise
        out.commit()
        if costs_out is not None:
            costs_out.add(pd.DataFrame([totals.cost_total_row()]))
            costs_out.commit()
    summary = totals.summary(kind, results_path, led.path, time.monotonic() - started, estimate)
    results = pd.concat(head, ignore_index=True).head(_HEAD_ROWS) if head else pd.DataFrame(columns=RESULT_COLUMNS)
    costs = pd.concat(cost_head, ignore_index=True) if cost_head else pd.DataFrame()
    return BatchResult(results=results, cost_log=costs, summary=summary)


def _mark_repeats(results: pd.DataFrame, plan: Any, ledger: Ledger, earlier: set[str]) -> pd.DataFrame:
    """Rows whose request an earlier chunk of this run sent: the ledger adopted that job (nothing
    was sent again); say so, and count its cost once, on the earlier row (as copies in one run
    share it). The ledger says which batches hold the job, so nothing grows with the row count."""
    kind = plan.kind.name
    repeats = {i for i, (key, ok, job, paid) in enumerate(zip(plan.keys, plan.valid, results["job_id"],
                                                              results["paid_in"]))
               if ok and paid == "earlier run" and isinstance(job, str)
               and not ledger.batches_holding(kind, key, job).isdisjoint(earlier)}
    if not repeats:
        return results
    rows = [i for i, orig in enumerate(plan.duplicate_of) if i in repeats or orig in repeats]
    results = results.copy()
    where = results.index[rows]
    results.loc[where, ["credits", "est_credits"]] = 0.0
    results.loc[where, "paid_in"] = "earlier chunk"
    results.loc[where, "note"] = ("same request as a row of an earlier chunk (same row_key): sent once, "
                                  "its cost is counted there")
    return results


def _not_reached(plan: Any, stopped_by: str) -> pd.DataFrame:
    """The rows of a chunk the run did not reach: ``cancelled`` (rejected rows stay rejected)."""
    from akool_flows.batch.rows import RowTable

    rows = RowTable(plan)
    for i in range(rows.n):
        if plan.duplicate_of[i] is not None:
            continue  # mirrors its original
        if plan.valid[i]:
            rows.note[i] = f"not reached: the run stopped ({stopped_by}) before this row's chunk; nothing sent"
            rows.set_outcome(i, "cancelled")
        else:
            rows.reject(i)
    return rows.frame()


class _Totals:
    """The whole input's figures, folded chunk by chunk."""

    def __init__(self, options: BatchOptions) -> None:
        self.options = options
        self.counts: Counter[str] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.numbers: Counter[str] = Counter()
        self.estimate: Counter[str] = Counter()
        self.stopped_by: str | None = None
        self.stop_message: str | None = None
        self.unsaved: list[dict[str, Any]] = []
        self.batches: list[str] = []
        self.balance: float | None = None
        self.rows = 0
        self.unknown_costs = 0

    def budget_left(self) -> float | None:
        # A budget counts what earlier runs of a batch committed too (`Budget`): so do chunks.
        limit = self.options.budget_credits
        return None if limit is None else max(0.0, limit - self.numbers["credits"])

    def add(self, result: BatchResult) -> None:
        s = result.summary
        self.batches.append(s["batch_id"])
        if self.balance is None:
            self.balance = s.get("balance_before")
        for name in ("duplicates", "submitted", "api_calls"):
            self.numbers[name] += s.get(name) or 0
        for name in ("total_credits", "unknown_rows"):
            self.estimate[name] += s["estimate"].get(name) or 0
        self.unsaved.extend(s.get("unsaved_job_ids") or [])
        if s.get("stopped_by") and self.stopped_by is None:
            self.stopped_by, self.stop_message = s["stopped_by"], s.get("stop_message")
        from akool_flows.api.kinds import get_kind

        verdict = get_kind(s["kind"]).verdict_field
        if verdict and verdict in result.results.columns:
            done = result.results.loc[result.results["outcome"] == "completed", verdict]
            self.verdicts.update(done.dropna().astype(str).tolist())

    def count_rows(self, results: pd.DataFrame, costs: pd.DataFrame) -> None:
        # Money from the cost log of each chunk (repeats of earlier chunks count 0 there).
        self.rows += len(results)
        self.counts.update(results["outcome"].tolist())
        self.numbers["duplicates"] += int((results["paid_in"] == "earlier chunk").sum())
        self.numbers["credits"] += float(costs["credits"].sum(skipna=True))
        self.numbers["credits_already_paid"] += float(
            costs.loc[costs["paid_in"] == "earlier run", "credits"].sum(skipna=True))
        self.numbers["credits_reported"] += float(pd.to_numeric(results["credits"], errors="coerce").sum(skipna=True))
        self.unknown_costs += int((costs["credits_source"] == "unknown").sum())

    def cost_total_row(self) -> Mapping[str, Any]:
        credits = self.numbers["credits"]
        return {"row_key": "TOTAL", "input_index": None, "outcome": f"{self.rows} rows", "credits": credits,
                "credits_source": f"{self.unknown_costs} unknown" if self.unknown_costs else "",
                "paid_in": "", "usd": credits * self.options.usd_per_credit}

    def summary(self, kind: str, results_path: Any, ledger: Any, wall: float,
                whole: CostEstimate | None) -> dict[str, Any]:
        usd = self.options.usd_per_credit
        credits = round(self.numbers["credits"], 6)
        # Summed per chunk, a request repeated across chunks would be counted once per chunk.
        estimate = whole.to_dict() if whole is not None else {
            "total_credits": round(self.estimate["total_credits"], 6),
            "unknown_rows": int(self.estimate["unknown_rows"]),
            "usd": round(self.estimate["total_credits"] * usd, 6), "usd_per_credit": usd}
        return {
            "batch_id": f"{len(self.batches)} chunk(s): {', '.join(self.batches[:3])}"
                        + (", ..." if len(self.batches) > 3 else ""),
            "batch_ids": list(self.batches), "kind": kind, "rows": self.rows, "counts": dict(self.counts),
            "verdicts": dict(self.verdicts), "duplicates": int(self.numbers["duplicates"]),
            "submitted": int(self.numbers["submitted"]), "credits": credits,
            "credits_new": round(self.numbers["credits"] - self.numbers["credits_already_paid"], 6),
            "credits_already_paid": round(self.numbers["credits_already_paid"], 6),
            "credits_reported": round(self.numbers["credits_reported"], 6), "usd": round(credits * usd, 6),
            "usd_per_credit": usd, "estimate": estimate, "budget_credits": self.options.budget_credits,
            "balance_before": self.balance, "stopped_by": self.stopped_by, "stop_message": self.stop_message,
            "unsaved_job_ids": self.unsaved, "results_error": None, "wall_seconds": round(wall, 3),
            "api_calls": int(self.numbers["api_calls"]), "ledger": str(ledger), "results_path": str(results_path),
            "exit_status": exit_status(dict(self.counts), self.stopped_by, strict=self.options.strict),
        }
