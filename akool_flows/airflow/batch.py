"""`AkoolBatchOperator`: a CSV / Parquet of inputs -> one Akool job per row -> results + cost log.

The batch engine (`akool_flows.batch`) runs inside the task: it validates every row before
spending, prices the batch, enforces a budget, submits with bounded concurrency and records
every create in a SQLite ledger (intent before the call, job id after). With
``deferrable=True`` the task submits, hands the job ids to `AkoolJobTrigger` and frees its
worker slot; when the trigger fires, a second short pass collects every result from the
ledger and writes the files. A retry (or a rerun on the same file) resumes from the ledger:
finished rows are kept, submitted rows are polled, nothing is paid twice.

Files, next to the input unless ``output_dir`` says otherwise (``<stem>`` is the input file's
name without extension; ``<shard>`` is ``.shard-<i>-of-<n>`` when sharded, else empty)::

    <stem><shard>.akool-results.csv|parquet   one row per input row of the shard: outcome, job id,
                                              result URL(s), conclusion, credits, Akool's error,
                                              ``input_index`` and the input columns
    <stem><shard>.akool-cost.csv              credits and USD per row, TOTAL row last
    <stem>.akool-ledger.sqlite                the ledger of the input, shared by all its shards
                                              (keep it: it is what makes retries free)

The ledger must live where every try of every shard can reach it: a local path with one
worker, a shared volume with Celery or Kubernetes workers. All shards of an input write the
same SQLite file, concurrently when they run in parallel: SQLite's WAL mode needs its writers
on one host (network filesystems do not share its lock memory), so route an input's shards to
one worker host, or run them one after another.

Shard a big input with dynamic task mapping::

    AkoolBatchOperator.partial(task_id="moderate", kind="moderation", input_path=PATH,
                               defaults={"type": 4}, shard_count=8).expand(shard_index=range(8))

A row's shard is decided by a hash of its request (kind and fields), not by its position, and
the ledger does not depend on the sharding. So identical rows always meet in one shard (which
sends the request once), and rerunning the input with another ``shard_count`` finds every job
already paid for in the ledger instead of paying for it again.
"""

from __future__ import annotations

import os
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import Asset, BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from akool_flows.airflow.hooks import AkoolHook
from akool_flows.api.errors import ValidationError
from akool_flows.api.jobs import OUTCOMES
from akool_flows.api.kinds import get_kind
from akool_flows.api.pricing import USD_PER_CREDIT

if TYPE_CHECKING:
    from airflow.sdk import Context

    from akool_flows.batch import BatchPlan, BatchResult

__all__ = ["AkoolBatchOperator", "BatchPaths", "shard_numbers"]

#: Outcomes that fail the task by default: they need a retry (which resumes) or a decision.
DEFAULT_FAIL_ON = ("uncertain", "timed_out", "cancelled")
#: task_state_store key: the batch this task instance submitted.
_BATCH_KEY = "akool_batch"
_REMOTE_PREFIXES = ("http://", "https://", "s3://", "gs://", "gcs://", "abfs://", "az://", "hf://")


@dataclass(frozen=True)
class BatchPaths:
    """Where one batch task (one shard) keeps its files."""

    results: Path
    cost_log: Path
    ledger: Path
    downloads: Path


def shard_numbers(kind: str, bodies: Iterable[Any], shard_count: int) -> list[int]:
    """The shard of each request body: a stable hash of its request key (kind and fields), so
    identical requests share a shard in every process, whatever their positions in the input."""
    from akool_flows.batch import row_key_for

    return [int(row_key_for(kind, body), 16) % shard_count for body in bodies]


def _is_remote(path: str) -> bool:
    return path.lower().startswith(_REMOTE_PREFIXES) or "://" in path and not path.startswith("file://")


class AkoolBatchOperator(BaseOperator):
    """Run one Akool job per row of a CSV or Parquet file and write results and a cost log.

    :param kind: the job kind of every row (``moderation``, ``video_translation``, ...).
    :param input_path: CSV / Parquet path or URL (http(s), or any fsspec URL with its package
        installed). Templated.
    :param output_dir: directory for results, cost log and ledger (default: the input's
        directory; required for URL inputs). Templated.
    :param columns: ``{docs_field: column}`` when the columns are not named as the docs' fields.
    :param defaults: fields constant for every row, e.g. ``{"type": 4, "language": "en"}``. Templated.
    :param cost_table: ``{kind: credits per job}`` for kinds whose price the docs do not publish
        (needed with ``budget_credits`` for those kinds).
    :param durations: column with media seconds (prices audio / video moderation).
    :param results_format: ``csv`` or ``parquet`` (default: the input's format).
    :param shard_index, shard_count: run the rows whose request hashes to ``shard_index`` out
        of ``shard_count`` (map ``shard_index`` over ``range(shard_count)``). Identical requests
        share a shard; the ledger is one per input, whatever the shard count.
    :param akool_conn_id: the ``akool`` connection.
    :param deferrable: wait for the jobs on the triggerer (default ``[operators] default_deferrable``).
    :param poll_interval: seconds between status polls of running jobs.
    :param timeout: seconds (or timedelta) to wait for the jobs; then the task fails with the
        results so far and a retry collects the rest.
    :param concurrency: HTTP requests in flight at once.
    :param max_requests_per_second: client-side rate limit.
    :param budget_credits: the most this batch may spend (earlier tries included).
    :param usd_per_credit: for the USD figures (default: the docs' conversion).
    :param resubmit_uncertain: resubmit rows whose create call's outcome is unknown (may pay twice).
    :param download_results: download result files (with sha256) into ``<stem>.akool-files/``.
    :param use_webhook: complete jobs from the connection's webhook receiver when it has one.
    :param fail_on: outcomes that fail the task (default: uncertain, timed_out, cancelled).
        Failed and rejected rows are data problems reported in the results, not task failures.
    :param results_asset: an `Asset` (or an asset name) updated when the results are written; the event's
        ``extra`` carries the counts, credits, USD and file paths.

    XCom (``return_value``): the batch summary - ``kind, batch_id, rows, counts, credits, usd,
    results_path, cost_log_path, ledger_path, conclusions`` (moderation), ``exit_status``.
    """

    template_fields: Sequence[str] = ("input_path", "output_dir", "defaults", "columns", "budget_credits")
    template_fields_renderers: ClassVar[dict[str, str]] = {"defaults": "json", "columns": "json"}
    ui_color = "#e3dbff"

    def __init__(self, *, kind: str, input_path: str, output_dir: str | None = None,
                 columns: Mapping[str, str] | None = None, defaults: Mapping[str, Any] | None = None,
                 cost_table: Mapping[str, float] | None = None, durations: str | None = None,
                 results_format: str | None = None, shard_index: int | None = None, shard_count: int | None = None,
                 akool_conn_id: str = AkoolHook.default_conn_name,
                 deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
                 poll_interval: float = 30.0, timeout: float | timedelta | None = None, concurrency: int = 32,
                 max_requests_per_second: float | None = None, budget_credits: float | None = None,
                 usd_per_credit: float = USD_PER_CREDIT, resubmit_uncertain: bool = False, download_results: bool = False,
                 use_webhook: bool = True, fail_on: Collection[str] = DEFAULT_FAIL_ON,
                 results_asset: Asset | str | None = None, **kwargs: Any) -> None:
        if results_asset is not None:
            asset = results_asset if isinstance(results_asset, Asset) else Asset(str(results_asset))
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), asset]
        else:
            asset = None
        super().__init__(**kwargs)
        self.kind = get_kind(kind).name
        self.input_path = input_path
        self.output_dir = output_dir
        self.columns = columns
        self.defaults = defaults
        self.cost_table = cost_table
        self.durations = durations
        if results_format not in (None, "csv", "parquet"):
            raise ValidationError(f"results_format must be 'csv' or 'parquet', got {results_format!r}",
                                  field="results_format")
        self.results_format = results_format
        if (shard_index is None) != (shard_count is None) and shard_count is None:
            raise ValidationError("shard_index needs shard_count", field="shard_count")
        if shard_count is not None and (not isinstance(shard_count, int) or shard_count < 1):
            raise ValidationError(f"shard_count must be an integer >= 1, got {shard_count!r}", field="shard_count")
        self.shard_index = shard_index
        self.shard_count = shard_count
        self.akool_conn_id = akool_conn_id
        self.deferrable = deferrable
        if not poll_interval > 0:
            raise ValidationError(f"poll_interval must be > 0 seconds, got {poll_interval!r}", field="poll_interval")
        self.poll_interval = float(poll_interval)
        self.timeout = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        self.concurrency = concurrency
        self.max_requests_per_second = max_requests_per_second
        self.budget_credits = budget_credits
        self.usd_per_credit = usd_per_credit
        self.resubmit_uncertain = resubmit_uncertain
        self.download_results = download_results
        self.use_webhook = use_webhook
        unknown = sorted(set(fail_on) - set(OUTCOMES))
        if unknown:
            raise ValidationError(f"fail_on: unknown outcome(s) {', '.join(unknown)} (allowed: {', '.join(OUTCOMES)})",
                                  field="fail_on")
        self.fail_on = tuple(fail_on)
        self.results_asset = asset

    @cached_property
    def hook(self) -> AkoolHook:
        return AkoolHook(self.akool_conn_id)

    # --- inputs and files -------------------------------------------------------------------

    def _shard_suffix(self) -> str:
        if self.shard_count is None or self.shard_count == 1 and not self.shard_index:
            return ""
        return f".shard-{self.shard_index}-of-{self.shard_count}"

    def _sharded(self) -> bool:
        if not self.shard_count or self.shard_count == 1:
            return False
        if not isinstance(self.shard_index, int) or not 0 <= self.shard_index < self.shard_count:
            raise AirflowFailException(f"shard_index must be in [0, {self.shard_count}), got {self.shard_index!r}")
        return True

    def paths(self) -> BatchPaths:
        """The files of this task (this shard), from the rendered ``input_path`` / ``output_dir``.
        Results and cost log are per shard; the ledger is the input's, shared by every shard."""
        src = str(self.input_path)
        name = src.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "input"
        stem = name
        for ext in (".csv.gz", ".csv", ".parquet", ".pq", ".txt"):
            if stem.lower().endswith(ext):
                stem = stem[: -len(ext)]
                break
        shard = stem + self._shard_suffix()
        if self.output_dir:
            out = Path(str(self.output_dir).removeprefix("file://"))
        elif _is_remote(src):
            raise AirflowFailException(f"output_dir is required when input_path is a URL ({src}): results, cost "
                                       "log and ledger need a (shared) filesystem path")
        else:
            out = Path(src.removeprefix("file://")).resolve().parent
        fmt = self.results_format or ("parquet" if name.lower().endswith((".parquet", ".pq")) else "csv")
        # The ledger's name must not depend on the sharding: another shard_count over the same
        # input must find the jobs already paid for (a row's shard changes with the count).
        return BatchPaths(results=out / f"{shard}.akool-results.{fmt}", cost_log=out / f"{shard}.akool-cost.csv",
                          ledger=out / f"{stem}.akool-ledger.sqlite", downloads=out / f"{shard}.akool-files")

    def load_input(self) -> Any:
        """Every input row as a DataFrame (CSV cells as text, original row labels); `plan`
        picks this shard's rows."""
        import pandas as pd

        src = str(self.input_path)
        local = src.removeprefix("file://")
        if not _is_remote(src) and not os.path.exists(local):
            raise AirflowFailException(f"input_path {src!r} does not exist")
        lower = src.lower().split("?", 1)[0]
        try:
            if lower.endswith((".parquet", ".pq")):
                df = pd.read_parquet(local if not _is_remote(src) else src)
            else:
                # Text, not guessed types: "007" stays "007"; the batch planner coerces per field.
                df = pd.read_csv(local if not _is_remote(src) else src, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise AirflowFailException(f"cannot read input_path {src!r}: {exc}") from None
        return df

    def plan(self) -> BatchPlan:
        """This shard's plan: every row of the input mapped to its request, then the rows whose
        request hashes to this shard planned again on their own (input labels kept)."""
        from akool_flows.batch import BatchInputError, plan_batch

        sharded = self._sharded()
        df = self.load_input()
        paths = self.paths()
        paths.ledger.parent.mkdir(parents=True, exist_ok=True)
        options = dict(columns=dict(self.columns) if self.columns else None,
                       defaults=dict(self.defaults) if self.defaults else None, cost_table=self.cost_table,
                       durations=self.durations, ledger=str(paths.ledger) if paths.ledger.exists() else None,
                       usd_per_credit=self.usd_per_credit)
        try:
            plan = plan_batch(df, self.kind, **options)
            if sharded:
                # Planned alone, this shard's rows get the same request keys as in the whole
                # input: every copy of a request is here, so the first copy is the input's first.
                mine = [shard == self.shard_index for shard in shard_numbers(self.kind, plan.bodies, self.shard_count)]
                plan = plan_batch(df.loc[mine], self.kind, **options)
        except BatchInputError as exc:
            raise AirflowFailException(f"bad batch input: {exc}") from None
        return plan

    # --- running ----------------------------------------------------------------------------

    def _run(self, plan: BatchPlan, *, final: bool, job_timeout: float | None = None,
             wait: bool = True) -> BatchResult:
        from akool_flows.batch import BatchInputError, BudgetError, run_batch
        from akool_flows.batch.progress import ProgressLogger

        paths = self.paths()
        store = None
        if self.use_webhook and self.hook.webhook_url and self.hook.webhook_store_url:
            store = self.hook.get_event_store()
        budget = float(self.budget_credits) if self.budget_credits not in (None, "") else None
        try:
            with self.hook.get_client(event_store=store) as client:
                return run_batch(
                    plan, client=client, ledger=str(paths.ledger), concurrency=self.concurrency,
                    max_requests_per_second=self.max_requests_per_second, poll_interval=self.poll_interval,
                    job_timeout=job_timeout, budget_credits=budget, usd_per_credit=self.usd_per_credit,
                    resubmit_uncertain=self.resubmit_uncertain, events=store,
                    webhook_url=self.hook.webhook_url if store is not None else None,
                    download_dir=str(paths.downloads) if final and self.download_results else None,
                    results_path=str(paths.results) if final else None, wait=wait,
                    progress=ProgressLogger(self.log))
        except (BatchInputError, BudgetError) as exc:
            raise AirflowFailException(f"batch refused: {exc}") from None
        finally:
            if store is not None:
                store.close()

    def execute(self, context: Context) -> Any:
        plan = self.plan()
        store = context.get("task_state_store")
        if store is not None:
            # What execute_complete must find again after the deferral (see there).
            store.set(_BATCH_KEY, {"batch_id": plan.batch_id, "rows": len(plan)})
        summary = plan.summary()
        self.log.info("batch plan: %s rows, %s valid, %s rejected; %s", len(plan), plan.valid_count,
                      plan.rejected_count, summary.get("estimate_text"))
        for rejection in plan.rejections(limit=5):
            self.log.warning("%d row(s) rejected (first: %s): %s", rejection["count"], rejection["first_rows"],
                             rejection["error"])
        if not self.deferrable:
            return self._finish(context, self._run(plan, final=True, job_timeout=self.timeout))
        # Submit only (no status call): running jobs come back "submitted" and go to the trigger.
        submitted = self._run(plan, final=False, wait=False)
        frame = submitted.results
        waiting = [j for j in frame.loc[frame["outcome"] == "submitted", "job_id"].tolist() if isinstance(j, str) and j]
        if not waiting:
            return self._finish(context, self._run(plan, final=True, job_timeout=None))
        from akool_flows.airflow.triggers import AkoolJobTrigger

        self.log.info("submitted; %d job(s) running, waiting on the triggerer", len(waiting))
        store_ok = bool(self.use_webhook and self.hook.webhook_url and self.hook.webhook_store_url)
        self.defer(
            trigger=AkoolJobTrigger(kind=self.kind, job_ids=waiting, akool_conn_id=self.akool_conn_id,
                                    poll_interval=self.poll_interval, include_jobs=False,
                                    end_time=time.time() + self.timeout if self.timeout else None,
                                    use_webhook_store=store_ok),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + 300) if self.timeout else None,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """The trigger fired: collect every result from the ledger (one short pass) and write files."""
        status = event.get("status")
        if status == "error":
            raise AirflowException(f"waiting for the {self.kind} batch failed: {event.get('message')}. The ledger "
                                   "keeps every job id; a retry resumes without paying again.")
        plan = self.plan()
        store = context.get("task_state_store")
        recorded = store.get(_BATCH_KEY) if store is not None else None
        if isinstance(recorded, dict) and recorded.get("batch_id") != plan.batch_id:
            # The input was replaced while its jobs ran: collecting would start another batch.
            raise AirflowFailException(
                f"{self.input_path} changed while its batch was running (submitted {recorded.get('rows')} rows as "
                f"batch {recorded.get('batch_id')}, the file now plans {len(plan)} rows as {plan.batch_id}). The "
                f"ledger {self.paths().ledger} keeps every submitted job; restore the file and clear the task to "
                "collect them, or clear it as is to run the new file (identical rows are not paid again).")
        # Everything the trigger saw finish is collected by one poll; a job still running after
        # a trigger timeout is reported timed_out (fail_on decides) and a retry collects it.
        grace = None if status in ("success", "failed") else max(5.0, self.poll_interval)
        return self._finish(context, self._run(plan, final=True, job_timeout=grace))

    def _finish(self, context: Context, result: BatchResult) -> dict[str, Any]:
        from akool_flows.batch import safe_csv

        paths = self.paths()
        safe_csv(result.cost_log, paths.cost_log)
        s = result.summary
        counts = {k: int(v) for k, v in s.get("counts", {}).items()}
        summary: dict[str, Any] = {
            "kind": self.kind, "batch_id": s.get("batch_id"), "rows": int(s.get("rows", 0)), "counts": counts,
            "duplicates": int(s.get("duplicates") or 0), "credits": s.get("credits"),
            "credits_new": s.get("credits_new"), "credits_already_paid": s.get("credits_already_paid"),
            "usd": s.get("usd"), "stopped_by": s.get("stopped_by"), "stop_message": s.get("stop_message"),
            "exit_status": s.get("exit_status"), "results_path": str(paths.results),
            "cost_log_path": str(paths.cost_log), "ledger_path": str(paths.ledger),
            "shard": [self.shard_index, self.shard_count] if self.shard_count else None,
        }
        frame = result.results
        verdict = get_kind(self.kind).verdict_field
        if verdict and verdict in frame:
            done = frame[frame["outcome"] == "completed"]
            summary["conclusions"] = {str(k): int(v) for k, v in done[verdict].value_counts().items()}
        self.log.info("batch %s: %s; %s credits ($%s); results %s", summary["batch_id"],
                      ", ".join(f"{k}={v}" for k, v in counts.items() if v) or "no rows", summary["credits"],
                      summary["usd"], paths.results)
        bad = {o: counts[o] for o in self.fail_on if counts.get(o)}
        if bad:
            raise AirflowException(
                f"{self.kind} batch {summary['batch_id']} needs attention: "
                + ", ".join(f"{n} {o}" for o, n in bad.items())
                + f" (results: {paths.results}). A retry resumes from the ledger {paths.ledger} without paying again"
                + ("; uncertain rows are resubmitted only with resubmit_uncertain=True" if "uncertain" in bad else ""))
        if self.results_asset is not None:
            context["outlet_events"][self.results_asset].extra = {
                k: summary[k] for k in ("kind", "batch_id", "rows", "counts", "credits", "usd", "results_path",
                                        "cost_log_path")} | ({"conclusions": summary["conclusions"]}
                                                            if "conclusions" in summary else {})
        return summary
