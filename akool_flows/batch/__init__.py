"""Batch engine: a DataFrame of inputs in, every row accounted for out, never paying twice.

    from akool_flows.batch import plan_batch, run_batch

    plan = plan_batch(df, "moderation", columns={"content": "text"}, defaults={"type": 4})
    print(plan.summary())                      # valid / rejected rows, cost estimate
    result = run_batch(plan, ledger="moderation.sqlite", budget_credits=50)
    result.results                             # one row per input row, with its outcome
    result.to_csv("results.csv")               # spreadsheet-safe

Knows nothing of Airflow or widgets; both sit on top of it.
"""

from akool_flows.batch.chunked import arun_chunks
from akool_flows.batch.cost import USD_PER_CREDIT, CostEstimate
from akool_flows.batch.errors import (
    BatchInputError,
    BatchLockedError,
    BudgetError,
    LeaseLostError,
    LedgerError,
    LedgerWriteError,
)
from akool_flows.batch.export import neutralise, safe_csv, write_table
from akool_flows.batch.fanout import fan_out, translate_catalog, tts_grid
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.options import BatchOptions
from akool_flows.batch.plan import BatchPlan, plan_batch, row_key_for
from akool_flows.batch.plan_stream import PlanSummary, summarize_plan
from akool_flows.batch.progress import Progress, ProgressPrinter
from akool_flows.batch.results import OUTCOMES, BatchResult
from akool_flows.batch.runner import DEFAULT_LEDGER, arun_batch, run_batch

__all__ = [
    "BatchPlan", "plan_batch", "row_key_for", "run_batch", "arun_batch", "BatchResult", "OUTCOMES",
    "CostEstimate", "USD_PER_CREDIT", "Ledger", "DEFAULT_LEDGER", "Progress", "ProgressPrinter",
    "translate_catalog", "tts_grid", "fan_out", "safe_csv", "neutralise", "write_table",
    "BatchOptions", "BatchInputError", "BudgetError", "LedgerError", "BatchLockedError", "LeaseLostError",
    "LedgerWriteError", "arun_chunks", "summarize_plan", "PlanSummary",
]
