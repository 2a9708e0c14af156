"""`run_batch` / `arun_batch`: plan (if given a DataFrame), open the ledger and the client, run.

These are the public entry points; the CLI, the notebook apps and the Airflow batch operator
all come through here with one `BatchOptions`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pandas as pd

from akool_flows.api.client import DEFAULT_BASE_URL, AkoolClient, AsyncAkoolClient
from akool_flows.batch.errors import BatchInputError
from akool_flows.batch.ledger import Ledger
from akool_flows.batch.options import BatchOptions
from akool_flows.batch.plan import BatchPlan, plan_batch
from akool_flows.batch.results import BatchResult
from akool_flows.batch.staging import Stager

__all__ = ["run_batch", "arun_batch", "DEFAULT_LEDGER", "default_batch_id_for"]

log = logging.getLogger("akool_flows.batch")

DEFAULT_LEDGER = "akool-ledger.sqlite"


def default_batch_id_for(plan: BatchPlan, base_url: str) -> str:
    """The plan's batch id against the real API; other endpoints (a sandbox) get their own, so
    a ledger never mixes job ids of two APIs."""
    if base_url.rstrip("/") == DEFAULT_BASE_URL:
        return plan.batch_id
    return f"{plan.batch_id}@{hashlib.sha256(base_url.encode()).hexdigest()[:8]}"


def _async_client(client: Any, concurrency: int) -> tuple[AsyncAkoolClient, bool]:
    """An async client for the run, and whether the engine owns (must close) it."""
    connections = max(64, concurrency + 8)
    if client is None:
        return AsyncAkoolClient.from_env(max_connections=connections), True
    if isinstance(client, AsyncAkoolClient):
        return client, False
    if isinstance(client, AkoolClient):
        # Same account and settings, async transport: the engine's hot loop is async.
        return AsyncAkoolClient.from_client(client, max_connections=connections), True
    raise BatchInputError(f"client must be an AkoolClient or AsyncAkoolClient, got {type(client).__name__}",
                          field="client")


def _priced_from_ledger(plan: BatchPlan, ledger: Ledger, usd_per_credit: float) -> BatchPlan:
    """Rows of unknown price take the mean credits finished jobs of the kind reported here."""
    if not plan.estimate.unknown_rows:
        return plan
    observed, n = ledger.observed_credits(plan.kind.name)
    if observed is None:
        return plan
    est = [observed if ok and e is None else e for ok, e in zip(plan.valid, plan.est)]
    sources = [("observed" if ok and s == "unknown" else s) for ok, s in zip(plan.valid, plan.rows["cost_source"])]
    priced = plan.with_estimates(est, sources, usd_per_credit)
    log.info("priced %s rows from %d finished %s jobs in the ledger", priced.estimate.sources["observed"], n,
             plan.kind.name)
    return priced


def _plan(plan_or_df: Any, kind: str | None, ledger: Ledger, usd_per_credit: float, **plan_kwargs: Any) -> BatchPlan:
    if isinstance(plan_or_df, BatchPlan):
        if kind is not None and kind != plan_or_df.kind.name:
            raise BatchInputError(f"kind={kind!r} does not match the plan's kind {plan_or_df.kind.name!r}",
                                  field="kind")
        return plan_or_df
    if isinstance(plan_or_df, pd.DataFrame):
        if kind is None:
            raise BatchInputError("kind is required when passing a DataFrame", field="kind")
        return plan_batch(plan_or_df, kind, ledger=ledger, usd_per_credit=usd_per_credit, **plan_kwargs)
    raise BatchInputError(f"expected a BatchPlan or a DataFrame, got {type(plan_or_df).__name__}", field="plan_or_df")


async def arun_batch(plan_or_df: BatchPlan | pd.DataFrame, kind: str | None = None, *, client: Any = None,
                     batch_id: str | None = None, ledger: str | Path | Ledger = DEFAULT_LEDGER,
                     options: BatchOptions | None = None, columns: Any = None,
                     defaults: Mapping[str, Any] | None = None, cost_table: Mapping[str, float] | None = None,
                     durations: str | None = None, **option_kwargs: Any) -> BatchResult:
    """Run a batch (async). See `run_batch` for the arguments."""
    from akool_flows.batch.engine import Run

    opts = BatchOptions.from_kwargs(options, **option_kwargs)
    if batch_id is not None and (not isinstance(batch_id, str) or not batch_id.strip() or len(batch_id) > 200):
        raise BatchInputError("batch_id must be a non-empty string of at most 200 characters", field="batch_id")
    owns_ledger = not isinstance(ledger, Ledger)
    led = Ledger(ledger) if owns_ledger else ledger
    try:
        plan = _plan(plan_or_df, kind, led, opts.usd_per_credit, columns=columns, defaults=defaults,
                     cost_table=cost_table, durations=durations, stage=opts.stage)
        plan = _priced_from_ledger(plan, led, opts.usd_per_credit)
        api, owns_client = _async_client(client, opts.concurrency)
        stager = None
        try:
            batch = batch_id or default_batch_id_for(plan, api.base_url)
            stager = Stager.for_run(plan, opts, led, api.base_url)
            result = await Run(plan, api, led, batch, opts, stager=stager).run()
            if stager is not None:
                result.summary["staged_files"] = stager.report()
            return result
        finally:
            if stager is not None:
                stager.close()
            if owns_client:
                await api.aclose()
    finally:
        if owns_ledger:
            led.close()


def run_batch(plan_or_df: BatchPlan | pd.DataFrame, kind: str | None = None, **kwargs: Any) -> BatchResult:
    """Run a batch: submit every valid row once, wait for every job, return every row's outcome.

    Args:
        plan_or_df: a `BatchPlan` (from `plan_batch`) or a DataFrame (planned here with
            ``columns``, ``defaults``, ``cost_table``, ``durations``).
        kind: the job kind (required with a DataFrame).
        client: an `AkoolClient` / `AsyncAkoolClient`; ``None`` builds one from ``AKOOL_*`` variables.
        batch_id: ledger key of the batch; default: a hash of the kind and every row key, so the
            same input resumes the same batch.
        ledger: SQLite path or `Ledger`. Rerunning with the same ledger resumes: rows with a job id
            are polled, finished rows are kept, rows whose create was in flight when a run died are
            reported ``uncertain`` (with ``attempt_at``) and resubmitted only with
            ``resubmit_uncertain=True``. Batches sharing a ledger never send the identical request
            twice, even when they run at the same time.
        options: a `BatchOptions`; any of its fields may also be passed as a keyword:
        concurrency: HTTP requests in flight at once (creates and polls together).
        max_requests_per_second: client-side request rate limit.
        poll_interval: seconds between status polls of a running job. Until the first job of
            the batch finishes, only the oldest running jobs are polled (younger ones after 4
            intervals); afterwards no job is polled before it is as old as the fastest finished one.
        event_fallback_interval: with ``events``: a job whose webhook has not arrived is polled
            this long after creation and then as often (default ``max(poll_interval, 30)``).
        job_timeout: seconds to wait for one job; then it is ``timed_out`` (a rerun polls it again).
        budget_credits: the most this batch may spend (earlier runs included); submission stops
            before the next row's estimate would pass it (``stopped_by="budget"``).
        max_credits_per_row: with a budget, the ceiling reserved for a row whose price cannot be
            known before Akool runs it (text moderation of a document URL, unpriced kinds).
        usd_per_credit: for the USD figures (docs: 0.04).
        events: a webhook event store (``WebhookEventStore``): jobs complete from their events.
        webhook_url: sent as ``webhookUrl`` with every create (kinds that accept one).
        download_dir: local folder or fsspec URL: result files are downloaded with a sha256
            (a rerun downloads what is missing; results expire on Akool's side after 7 days).
        download_max_bytes: size limit per result file (default 2 GiB).
        results_path: CSV / Parquet written at the end (atomically); during the run finished
            rows stream to ``<results_path>.partial.csv``.
        progress: callable receiving `Progress` a couple of times per second and at the end.
        cancel: ``threading.Event`` / ``asyncio.Event``: stop submitting (the rest is
            ``cancelled``), stop waiting (running jobs stay ``submitted``: a rerun collects them).
        reuse: adopt the job of an identical request from another batch of the same ledger
            instead of paying for it again.
        strict: count rejected rows as a failure in ``summary["exit_status"]``.
        wait: ``False`` submits every row that needs it and returns without a single status
            call: rows whose job runs are ``submitted``. A later run with the same ledger and
            ``wait=True`` polls them to completion without submitting them again.
        lease_ttl: seconds the run's hold on the batch lasts without renewal.
        stage: where to upload files named in URL fields (local paths, ``s3://``... URIs): an
            fsspec URL (``s3://bucket/prefix``) or ``"sandbox:"`` (the sandbox the client talks
            to). Each file is uploaded once, just before its row's create, and the job gets a
            signed URL; the ledger remembers it, so a rerun uploads only changed files.
        stage_expiry: seconds a staged file's signed URL stays valid (default 24 h).
        stage_options: fsspec storage options for ``stage`` (credentials, ``client_kwargs``).

    ``summary["stopped_by"]`` says why a run ended early: budget, quota, auth, cancel, ``lease``
    (another run took the batch over: this one sent nothing more) or ``error`` (the ledger,
    results file or webhook store failed: nothing more was sent, every job id received is in
    the results and in ``summary["unsaved_job_ids"]`` if the ledger could not take it).

    Runs its own event loop; inside a running loop (Jupyter) it runs in a helper thread. In async
    code use ``await arun_batch(...)``.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(arun_batch(plan_or_df, kind, **kwargs))
    with ThreadPoolExecutor(1, thread_name_prefix="akool-batch") as pool:
        return pool.submit(asyncio.run, arun_batch(plan_or_df, kind, **kwargs)).result()
