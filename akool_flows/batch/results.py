"""What a batch returns: one results row per planned row, a cost log, and a JSON-able summary."""

from __future__ import annotations

import datetime as _dt
import math
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from akool_flows.api.jobs import OUTCOMES
from akool_flows.batch.export import safe_csv, write_table

__all__ = ["BatchResult", "OUTCOMES", "RESULT_COLUMNS", "exit_status"]


#: Engine columns of `BatchResult.results`, before the input columns.
RESULT_COLUMNS = ("row_key", "input_index", "outcome", "duplicate_of", "job_id", "status_code", "result_url", "result_urls",
                  "conclusion", "detail", "credits", "est_credits", "duration", "error_code", "error_message",
                  "attempt_at", "submitted_at", "finished_at", "artifact_paths", "artifact_sha256", "note", "paid_in")

#: Exit statuses shared by the CLI and the summary.
EXIT_OK, EXIT_SOME_FAILED, EXIT_BAD_INPUT, EXIT_BUDGET, EXIT_ABORTED = 0, 1, 2, 3, 4


def iso(ts: float | None) -> str | None:
    """A wall-clock timestamp as ISO 8601 UTC text (what a spreadsheet and a log both read)."""
    if ts is None or (isinstance(ts, float) and math.isnan(ts)):
        return None
    return _dt.datetime.fromtimestamp(ts, tz=_dt.timezone.utc).isoformat(timespec="milliseconds")


def exit_status(counts: dict[str, int], stopped_by: str | None, *, strict: bool = False) -> int:
    """0 all rows fine; 1 some failed / uncertain / timed out / cancelled (rejected too when
    ``strict``); 2 stopped by authentication or permission; 3 stopped by the budget or quota;
    4 aborted: another run took the batch over, or a ledger / results / webhook-store write failed.

    ``submitted`` rows (still running after a ``wait=False`` run) are not a failure."""
    if stopped_by in ("lease", "error"):
        return EXIT_ABORTED
    if stopped_by == "cancel":
        return EXIT_SOME_FAILED
    if stopped_by in ("budget", "quota"):
        return EXIT_BUDGET
    if stopped_by == "auth":
        return EXIT_BAD_INPUT
    bad = ("failed", "uncertain", "timed_out", "cancelled") + (("rejected",) if strict else ())
    return EXIT_SOME_FAILED if any(counts.get(o, 0) for o in bad) else EXIT_OK


def cost_log(results: pd.DataFrame, usd_per_credit: float) -> pd.DataFrame:
    """Per row: the best credit figure, where it comes from and whether it was paid in this run
    or an earlier one (``paid_in``); a TOTAL row at the end.

    ``reported``: Akool's status said so. ``estimated``: the plan's price (completed jobs with no
    reported figure; failed, timed-out, still running (``submitted``) or uncertain jobs, as an
    upper bound: Akool may not have charged them). ``not_charged``: no job was created.
    ``unknown``: a job exists, no price known.
    """
    rows = []
    for r in results.itertuples(index=False):
        created = r.outcome in ("completed", "failed", "timed_out", "submitted", "uncertain") and (
            isinstance(r.job_id, str) or r.outcome == "uncertain")
        if not created:
            credits, source = 0.0, "not_charged"
        elif r.credits is not None and not _nan(r.credits):
            credits, source = float(r.credits), "reported"
        elif r.est_credits is not None and not _nan(r.est_credits):
            credits, source = float(r.est_credits), "estimated"
        else:
            credits, source = math.nan, "unknown"
        paid_in = getattr(r, "paid_in", None) if created else None
        rows.append({"row_key": r.row_key, "input_index": r.input_index, "outcome": r.outcome,
                     "credits": credits, "credits_source": source, "paid_in": paid_in,
                     "usd": credits * usd_per_credit if not _nan(credits) else math.nan})
    log = pd.DataFrame(rows, columns=["row_key", "input_index", "outcome", "credits", "credits_source", "paid_in",
                                      "usd"])
    unknown = int((log["credits_source"] == "unknown").sum()) if len(log) else 0
    earlier = float(log.loc[log["paid_in"] == "earlier run", "credits"].sum(skipna=True)) if len(log) else 0.0
    total = {"row_key": "TOTAL", "input_index": None, "outcome": f"{len(log)} rows",
             "credits": float(log["credits"].sum(skipna=True)) if len(log) else 0.0,
             "credits_source": f"{unknown} unknown" if unknown else "",
             "paid_in": f"{earlier:g} already paid in earlier runs" if earlier else "", "usd": None}
    total["usd"] = total["credits"] * usd_per_credit
    return pd.concat([log, pd.DataFrame([total])], ignore_index=True) if len(log) else pd.DataFrame([total])


def _nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


@dataclass
class BatchResult:
    """The outcome of `run_batch`: ``results`` (every planned row, in input order), ``cost_log``
    and ``summary``."""

    results: pd.DataFrame
    cost_log: pd.DataFrame
    summary: dict[str, Any]
    plan: Any = field(default=None, repr=False)

    @property
    def exit_status(self) -> int:
        return int(self.summary.get("exit_status", 0))

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.summary.get("counts", {}))

    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Spreadsheet-safe CSV of the results."""
        safe_csv(self.results, path)

    def to_parquet(self, path: str | os.PathLike[str]) -> None:
        write_table(self.results, path if str(path).lower().endswith((".parquet", ".pq")) else f"{path}.parquet")

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts.items() if v)
        return f"BatchResult(batch_id={self.summary.get('batch_id')!r}, rows={len(self.results)}, {counts})"
