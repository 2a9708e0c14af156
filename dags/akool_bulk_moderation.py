"""Bulk moderation of CSV files dropped in a folder, with a report of non-compliant rows and cost.

Every 15 minutes: each ``*.csv`` in ``<data>/moderation/incoming`` is claimed (moved to
``<data>/moderation/runs/<run>/``), moderated row by row with Akool's Jarvis moderator by
`AkoolBatchOperator` (one mapped task per file; validation and a cost estimate before
anything is spent; waiting on the triggerer; a retry resumes from the ledger and never pays
twice), and reported: ``<file>.non-compliant.csv`` lists the non-compliant and undecided
rows, the task's XCom gives counts and the cost in credits and USD.

The results file is the ``akool_moderation_results`` Asset: ``akool_moderation_results_ready``
below runs whenever a batch finishes and reads the counts and cost from the asset event.

``<data>`` is ``$AKOOL_EXAMPLE_DATA_DIR`` (default ``$AIRFLOW_HOME/akool-data``). The CSV needs a
column with the text (``text`` by default, see the DAG params); any other columns are carried
into the results.
"""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Asset, Param, get_current_context, task
from airflow.sdk.exceptions import AirflowSkipException

from akool_flows.airflow.batch import AkoolBatchOperator

POLL_SECONDS = float(os.environ.get("AKOOL_EXAMPLE_POLL_SECONDS", "10"))
DATA_DIR = Path(os.environ.get("AKOOL_EXAMPLE_DATA_DIR")
                or Path(os.environ.get("AIRFLOW_HOME", "~/airflow")).expanduser() / "akool-data")
INCOMING = DATA_DIR / "moderation" / "incoming"
RUNS = DATA_DIR / "moderation" / "runs"
MODERATION_RESULTS = Asset("akool_moderation_results")

with DAG(
    dag_id="akool_bulk_moderation",
    description="Moderate every CSV dropped in the incoming folder; report non-compliant rows and cost",
    schedule=timedelta(minutes=15),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["akool", "example", "moderation"],
    doc_md=__doc__,
    params={
        "content_column": Param("text", type="string", description="Column holding the text to moderate"),
        "language": Param("en", type="string", pattern="^[a-z]{2}$", description="ISO-639-1 language"),
        "budget_credits": Param(100.0, type="number", minimum=0, description="Most one file may spend"),
    },
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2)},
):

    @task
    def claim_files() -> list[str]:
        """Move each dropped CSV into this run's folder (so the next run does not take it again)."""
        INCOMING.mkdir(parents=True, exist_ok=True)
        run_id = get_current_context()["run_id"]
        target = RUNS / "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(p for p in INCOMING.glob("*.csv") if p.is_file()):
            shutil.move(str(path), target / path.name)
        # Files an earlier try of this run already claimed count too (a retry must not lose them).
        claimed = sorted(str(p) for p in target.glob("*.csv") if ".akool-" not in p.name
                         and not p.name.endswith(".non-compliant.csv"))
        if not claimed:
            raise AirflowSkipException(f"no CSV in {INCOMING}")
        return claimed

    files = claim_files()

    moderate = AkoolBatchOperator.partial(
        task_id="moderate",
        kind="moderation",
        columns={"content": "{{ params.content_column }}"},
        defaults={"type": 4, "language": "{{ params.language }}"},
        budget_credits="{{ params.budget_credits }}",
        deferrable=True,
        poll_interval=POLL_SECONDS,
        timeout=timedelta(hours=6),
        results_asset=MODERATION_RESULTS,
        map_index_template="{{ task.input_path.rsplit('/', 1)[-1] }}",
    ).expand(input_path=files)

    @task
    def report(summaries: list[dict]) -> dict:
        """Write ``<file>.non-compliant.csv`` per file; return counts and cost for all files."""
        import pandas as pd

        from akool_flows.batch import safe_csv

        total = {"files": 0, "rows": 0, "non_compliant": 0, "unknown": 0, "failed": 0, "rejected": 0,
                 "credits": 0.0, "usd": 0.0, "reports": []}
        for s in summaries:
            results_path = Path(s["results_path"])
            df = pd.read_csv(results_path, dtype=str, keep_default_na=False)
            flagged = df[(df["conclusion"] != "Compliant") | (df["outcome"] != "completed")]
            report_path = results_path.with_name(results_path.name.replace(".akool-results.csv", ".non-compliant.csv"))
            safe_csv(flagged, report_path)
            total["files"] += 1
            total["rows"] += s["rows"]
            total["non_compliant"] += int((df["conclusion"] == "Non-Compliant").sum())
            total["unknown"] += int((df["conclusion"] == "Unknown").sum())
            total["failed"] += s["counts"].get("failed", 0)
            total["rejected"] += s["counts"].get("rejected", 0)
            total["credits"] = round(total["credits"] + (s["credits"] or 0.0), 6)
            total["usd"] = round(total["usd"] + (s["usd"] or 0.0), 6)
            total["reports"].append(str(report_path))
            print(f"{results_path.name}: {s['rows']} rows, {len(flagged)} flagged -> {report_path}; "
                  f"{s['credits']} credits (${s['usd']})")
        return total

    report(moderate.output)


with DAG(
    dag_id="akool_moderation_results_ready",
    description="Runs whenever a moderation batch has written its results (asset-scheduled)",
    schedule=[MODERATION_RESULTS],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["akool", "example", "moderation"],
):

    @task
    def announce() -> list[dict]:
        """Read what the producing task put in the asset events: counts, cost, file paths."""
        events = get_current_context()["triggering_asset_events"][MODERATION_RESULTS]
        extras = [dict(e.extra) for e in events]
        for extra in extras:
            print(f"moderation results ready: {extra.get('results_path')} - counts {extra.get('counts')}, "
                  f"{extra.get('credits')} credits (${extra.get('usd')})")
        return extras

    announce()
