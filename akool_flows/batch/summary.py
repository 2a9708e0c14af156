"""The end of a run: the results table and files, the cost log and the JSON-able summary.

Writing the results must not lose what the run learnt: if the file cannot be written (full
disk) the summary says so and the results are still returned (and every job id is in them).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from akool_flows.batch.export import write_table
from akool_flows.batch.results import BatchResult, cost_log, exit_status

if TYPE_CHECKING:
    from akool_flows.batch.engine import Run

__all__ = ["finish_result"]

log = logging.getLogger("akool_flows.batch")


def finish_result(run: Run) -> BatchResult:
    run.report(done=True)
    results = run.rows.frame()
    results_error = None
    if run.results_path is not None:
        try:
            write_table(results, run.results_path)
            run.partial_path.unlink(missing_ok=True)
        except OSError as exc:
            results_error = f"cannot write {run.results_path}: {exc}"
            log.error("%s; the in-progress file %s holds the rows written so far", results_error, run.partial_path)
    usd_per_credit = run.opts.usd_per_credit
    costs = cost_log(results, usd_per_credit)
    total = float(costs["credits"].iloc[-1]) if len(costs) else 0.0
    counts = dict(run.rows.counts)
    unsaved = [{"row_key": key, "job_id": job_id} for key, job_id, _, _ in run.unsaved.values()]
    for item in unsaved:
        # Last resort: the ledger never took it, so say it where the user will see it.
        log.error("job %s (row %s) exists on Akool but is not in the ledger", item["job_id"], item["row_key"])
    summary = {
        "batch_id": run.batch_id,
        "kind": run.kind.name,
        "rows": run.rows.n,
        "counts": counts,
        "duplicates": run.plan.duplicate_count,
        "submitted": run.submitted_count,
        "credits": round(total, 6),
        "credits_new": round(run.budget.new, 6),
        "credits_already_paid": round(run.budget.earlier, 6),
        "credits_reported": round(float(results["credits"].sum(skipna=True)), 6),
        "usd": round(total * usd_per_credit, 6),
        "usd_per_credit": usd_per_credit,
        "estimate": run.plan.estimate.to_dict(),
        "budget_credits": run.budget.limit,
        "balance_before": run.balance,
        "stopped_by": run.stopped_by,
        "stop_message": run.stop_message,
        "unsaved_job_ids": unsaved,
        "results_error": results_error,
        "wall_seconds": round(time.monotonic() - run.t_start, 3),
        "api_calls": run.client.request_count - run.calls_start,
        "ledger": str(run.ledger.path),
        "results_path": str(run.results_path) if run.results_path else None,
        "exit_status": exit_status(counts, run.stopped_by, strict=run.opts.strict),
    }
    return BatchResult(results=results, cost_log=costs, summary=summary, plan=run.plan)
