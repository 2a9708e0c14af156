"""The skeleton every notebook app shares: estimate, Run / Cancel, progress, results, costs, export.

A concrete app (moderation, catalog translation, the generic form) only supplies its form and
how the form turns into a batch plan; everything else — running the engine in the background,
live progress, the results table, the cost summary and chart, export — lives here once.

Widgets carry ``akool-*`` CSS classes (``akool-run``, ``akool-cancel``, ``akool-export``,
``akool-results`` ...) so browser tests and users' own CSS can select them exactly.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as w
import pandas as pd

from akool_flows.notebook import render
from akool_flows.notebook.connection import Connection, resolve_connection
from akool_flows.notebook.runner import BackgroundRun

__all__ = ["BatchAppBase"]

#: Why the engine stopped submitting early, as the status line says it.
_STOPPED_BY = {"budget": "by the budget", "quota": "by Akool: not enough credits",
               "auth": "by Akool: authentication failed", "cancel": ""}
#: Outcomes that mean "look at this row".
PROBLEM_OUTCOMES = ("failed", "rejected", "uncertain", "timed_out", "cancelled")
_UI_INTERVAL = 0.15     # seconds between progress repaints: smooth, without flooding the comm channel
_TABLE_INTERVAL = 0.75  # seconds between live results-table rebuilds (an HTML table of up to max_rows)


def _batch() -> Any:
    # Imported on first use so `import akool_flows.notebook` stays cheap.
    import akool_flows.batch as batch
    return batch


def check_input_frame(df: Any, *, needs: str | None = None, **columns: str | None) -> None:
    """Refuse what is not a DataFrame, a DataFrame without columns (when `needs` says what for),
    and a named column argument (``url_column="..."``) that df does not have."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if needs and len(df.columns) == 0:
        raise ValueError(f"df has no columns: {needs}")
    for arg, column in columns.items():
        if column is not None and column not in df.columns:
            raise ValueError(f"{arg} {column!r} is not a column of df; columns: {', '.join(map(str, df.columns))}")


def _num(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


class BatchAppBase:
    """Common machinery of the notebook apps. Subclasses define `title`, `slug` and the hooks
    `_build_form`, `_plan_options` and (optionally) `_plan_input`, `_table_columns`, `_charts`
    and `_filters`.

    Options every app takes (keywords):

    * ``client`` — an `AkoolClient` / `AsyncAkoolClient` to use as is; ``env`` — a mapping of
      ``AKOOL_*`` variables to build clients from (default: the process environment). With
      neither and no credentials in the environment, the kernel's local sandbox is used.
    * ``ledger`` — SQLite path or `Ledger`: where the run records every row (default
      ``akool-ledger.sqlite``; with the in-process sandbox, a ledger of that sandbox in the
      temp folder). ``batch_id`` — the ledger's name for the batch (default: from the rows).
    * ``concurrency``, ``poll_interval`` (default 0.5 s on a sandbox, else 5 s), ``job_timeout``,
      ``budget_credits``, ``usd_per_credit``, ``download_dir``, ``webhook_url``, ``events`` —
      passed to the batch engine (see `akool_flows.batch.run_batch`); ``cost_table``
      (``{kind: credits per job}``) prices kinds the docs publish no price for.
    * ``background`` — ``"auto"`` (a task on the kernel's loop; a thread when none runs),
      ``"loop"`` or ``"thread"``. ``max_rows_shown`` — rows drawn in the results table.
    """

    title: ClassVar[str] = "Akool batch"
    #: Name for widgets' CSS classes and default export file names.
    slug: ClassVar[str] = "batch"

    def __init__(self, df: pd.DataFrame, *, kind: str, client: Any = None, env: Mapping[str, str] | None = None,
                 ledger: str | Path | None = None, batch_id: str | None = None, concurrency: int = 16,
                 poll_interval: float | None = None, job_timeout: float | None = None,
                 budget_credits: float | None = None, usd_per_credit: float = 0.04,
                 cost_table: Mapping[str, float] | None = None,
                 download_dir: str | None = None, webhook_url: str | None = None, events: Any = None,
                 background: str = "auto", max_rows_shown: int = 200) -> None:
        check_input_frame(df)
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if poll_interval is not None and poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        if budget_credits is not None and budget_credits < 0:
            raise ValueError(f"budget_credits must be >= 0, got {budget_credits}")
        if background not in ("auto", "loop", "thread"):
            raise ValueError(f"background must be 'auto', 'loop' or 'thread', got {background!r}")
        self.df = df
        self.kind = kind
        self.connection: Connection = resolve_connection(client, env=env)
        self.ledger = ledger if ledger is not None else self._default_ledger()
        self._explicit_batch_id = batch_id
        self.concurrency = concurrency
        # The sandbox finishes jobs in about a second; polling it every 5 s would make a demo crawl.
        self.poll_interval = poll_interval or (0.5 if self.connection.sandbox else 5.0)
        self.job_timeout = job_timeout
        self.budget_credits = budget_credits
        self.usd_per_credit = usd_per_credit
        self.cost_table = dict(cost_table or {})
        self.download_dir = download_dir
        self.webhook_url = webhook_url
        self.events = events
        self.background = background
        self.max_rows_shown = max_rows_shown

        #: The plan for the current form over all rows (updated by `estimate()`).
        self.plan: Any = None
        #: The last finished run's `BatchResult` (None before the first run ends).
        self.result: Any = None
        #: The latest `Progress` reported by the engine.
        self.progress: Any = None
        self.run_handle: BackgroundRun[Any] | None = None
        self._plan_error: str | None = None
        self._partial: pd.DataFrame | None = None
        self._last_ui = 0.0
        self._last_table = 0.0
        self._table_interval = _TABLE_INTERVAL
        self._run_batch_id: str | None = None
        self._live_ledger: Any = None
        self._refreshing = False
        self._generation = 0  # bumped per run, so a late table refresh never lands on the next run
        self._build_widgets()
        self.estimate()

    # ============================================================================ public API ==

    @property
    def batch_id(self) -> str:
        """The ledger's name for the batch the Run button starts: the one given, else the plan's
        own (a hash of the kind and the rows), so rerunning the same rows resumes the same batch.
        Rows run before under another batch (e.g. "first 5" before "all") are not paid again
        either: the engine adopts identical requests from the ledger."""
        if self._explicit_batch_id:
            return self._explicit_batch_id
        return str(self._make_plan(self._rows_to_run()).batch_id)

    @property
    def status(self) -> str:
        """idle, running, cancelling, finished, cancelled or failed."""
        run = self.run_handle
        if run is None:
            return "idle"
        if run.state == "running" and run.cancel_requested:
            return "cancelling"
        return run.state

    @property
    def running(self) -> bool:
        """True from Run until the engine returns (the app's own bookkeeping after that is not a run)."""
        return self.run_handle is not None and self.run_handle.state == "running"

    @property
    def results(self) -> pd.DataFrame:
        """One row per planned row of the last run (live while a run is going, rows not finished
        yet shown as ``pending``); an empty DataFrame before any run."""
        if self.result is not None:
            return self.result.results
        if self._partial is not None:
            return self._partial
        return pd.DataFrame()

    @property
    def cost_log(self) -> pd.DataFrame:
        """Credits and USD per row of the last finished run, with a totals row."""
        return self.result.cost_log if self.result is not None else pd.DataFrame()

    def estimate(self) -> Any:
        """Validate every row with the current form and show the cost estimate. Returns the plan
        (None when the form itself is incomplete; the reason is shown in the app)."""
        try:
            self.plan = self._make_plan(self.df)
            self._plan_error = None
        except Exception as exc:  # noqa: BLE001 - a form problem is shown, not raised
            self.plan = None
            self._plan_error = str(exc)
        self._show_estimate()
        return self.plan

    def start(self) -> BackgroundRun[Any] | None:
        """Start a run in the background (the Run button). Returns the run handle, or None when
        nothing can run (the reason is shown in the app)."""
        if self.running:
            return self.run_handle
        # Plan again from the form as it is now (a click may come before a pending estimate).
        if self._limit():
            run_plan, run_input = (self._plan_with_input(self._rows_to_run()) if self.estimate() is not None
                                   else (None, None))
        else:
            try:
                run_plan, run_input = self._plan_with_input(self.df)
                self.plan, self._plan_error = run_plan, None
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                run_plan, run_input, self.plan, self._plan_error = None, None, None, str(exc)
            self._show_estimate()
        if run_plan is None:
            self._set_status(f"Cannot run: {self._plan_error}", "error")
            return None
        batch_id = self._explicit_batch_id or str(run_plan.batch_id)
        self._run_batch_id = batch_id
        self._generation += 1
        self._refreshing = False
        self.result = None
        self.progress = None
        self._partial = self._pending_frame(run_plan, run_input)
        self._render_results()
        self._summary_html.value = ""
        self._chart_html.value = ""
        self.run_handle = BackgroundRun(lambda cancel: self._run(run_plan, batch_id, cancel),
                                        on_done=self._finished, mode=self.background,  # type: ignore[arg-type]
                                        name=f"akool-{self.slug}-run")
        self._set_running(True)
        self._set_status(f"Running {run_plan.valid_count:,} rows (batch {batch_id})…", "running")
        self._history(f"Run: {run_plan.valid_count:,} of {len(run_plan.rows):,} rows, batch {batch_id}, "
                      f"ledger {self.ledger}")
        self.run_handle.start()
        return self.run_handle

    def cancel(self) -> str:
        """Stop submitting new rows (the Cancel button); a second call aborts the run at once.
        Rows already submitted are kept in the ledger, so nothing is paid twice on a rerun."""
        if not self.running:
            return "idle"
        assert self.run_handle is not None
        what = self.run_handle.cancel()
        if what == "cancelling":
            self._set_status("Cancelling: no new rows are submitted; jobs already running are kept in the "
                             "ledger (Run again collects them). Click again to stop at once.", "cancelling")
            self._cancel_button.description = "Stop now"
        elif what == "aborted":
            self._set_status("Stopping now…", "cancelling")
        return what

    async def wait(self, timeout: float | None = None) -> pd.DataFrame:
        """Wait (without blocking the kernel) for the current run; returns `results`."""
        if self.run_handle is not None:
            await self.run_handle.wait(timeout)
        return self.results

    def run(self, timeout: float | None = None) -> pd.DataFrame:
        """Run to the end and return `results`, blocking the caller (headless notebooks, scripts).

        In a kernel the run goes to a worker thread, because the kernel's loop cannot wait for a
        task of its own. Raises `TimeoutError` when `timeout` seconds pass first (the run keeps
        going; `app.cancel()` stops it).
        """
        if not self.running:
            background, self.background = self.background, "thread"
            try:
                if self.start() is None:
                    return self.results
            finally:
                self.background = background
        assert self.run_handle is not None
        if not self.run_handle.join(timeout):
            raise TimeoutError(f"the run did not finish within {timeout} s; it continues in the background")
        return self.results

    def export(self, path: str | Path, *, format: str | None = None, cost_log: bool = True) -> Path:
        """Write `results` as spreadsheet-safe CSV or as Parquet (by `format`, else by the file's
        extension); with `cost_log`, the cost log goes next to it as ``<name>.costs.csv``.
        Returns the path written."""
        path = Path(path).expanduser()
        is_parquet = path.suffix.lower() in (".parquet", ".pq")
        fmt = (format or ("parquet" if is_parquet else "csv")).lower()
        if fmt not in ("csv", "parquet"):
            raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
        if fmt == "parquet" and not is_parquet:
            path = path.with_suffix(".parquet")
        elif fmt == "csv" and is_parquet:
            path = path.with_suffix(".csv")
        df = self.results
        if df.empty:
            raise ValueError("nothing to export yet: run the batch first")
        batch = _batch()
        batch.write_table(df, path)
        if cost_log and not self.cost_log.empty:
            batch.write_table(self.cost_log, path.with_name(path.stem + ".costs.csv"))
        return path

    @property
    def widget(self) -> w.VBox:
        """The app's root widget (displaying the app displays this)."""
        return self._root

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self._root._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rows={len(self.df)}, kind={self.kind!r}, status={self.status!r}, "
                f"target={self.connection.target!r}, sandbox={self.connection.sandbox})")

    # ========================================================================= subclass hooks ==

    def _build_form(self) -> list[w.Widget]:
        """The kind-specific inputs. Call `self._watch(widget)` on each so the estimate follows."""
        raise NotImplementedError

    def _plan_options(self) -> dict[str, Any]:
        """`plan_batch` keyword arguments from the form: ``columns``, ``defaults``, ``durations``.
        Raise ``ValueError`` with a readable message when the form is incomplete."""
        raise NotImplementedError

    def _plan_input(self, df: pd.DataFrame) -> pd.DataFrame:
        """The table the plan is made from (the catalog app fans rows out per language here)."""
        return df

    def _make_plan(self, df: pd.DataFrame) -> Any:
        """A `BatchPlan` for `df` with the current form values."""
        return self._plan_with_input(df)[0]

    def _plan_with_input(self, df: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        options = self._plan_options()
        table = self._plan_input(df)
        plan = _batch().plan_batch(table, self.kind, usd_per_credit=self.usd_per_credit,
                                   cost_table=self.cost_table,
                                   ledger=self.ledger if Path(str(self.ledger)).exists() else None, **options)
        return plan, table

    def _table_columns(self) -> list[str]:
        return ["input_index", "outcome", "job_id", "result_url", "credits", "error_message"]

    def _table_labels(self) -> dict[str, str]:
        return {"input_index": "#", "result_url": "result", "error_message": "error"}

    def _charts(self, results: pd.DataFrame) -> str:
        """Small charts for the summary area: rows and credits per outcome."""
        counts = results["outcome"].value_counts().to_dict() if "outcome" in results else {}
        credits = _credits_by(results, "outcome")
        return (render.bar_chart_svg(counts, title="Rows per outcome", colors=render.OUTCOME_COLORS)
                + render.bar_chart_svg(credits, title="Credits per outcome", colors=render.OUTCOME_COLORS,
                                       value_format="{:,.2f}"))

    def _filters(self) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
        return {
            "all rows": lambda df: pd.Series(True, index=df.index),
            "problems": lambda df: df["outcome"].isin(PROBLEM_OUTCOMES),
            "completed": lambda df: df["outcome"].eq("completed"),
        }

    # ============================================================================== internals ==

    def _default_ledger(self) -> str:
        server = self.connection.sandbox_server
        if server is not None:
            # The in-process sandbox forgets its jobs when the kernel stops; a ledger shared with
            # a later kernel (a different sandbox) would poll ids that no longer exist. So each
            # sandbox instance gets its own ledger (ports are reused; process and client id not).
            tag = hashlib.sha256(f"{os.getpid()}:{server.port}:{server.client_id}".encode()).hexdigest()[:12]
            return str(Path(tempfile.gettempdir()) / f"akool-sandbox-ledger-{tag}.sqlite")
        return _batch().DEFAULT_LEDGER

    def _limit(self) -> int:
        return max(0, int(self._limit_input.value or 0))

    def _rows_to_run(self) -> pd.DataFrame:
        limit = self._limit()
        return self.df.head(limit) if limit else self.df

    def _watch(self, *widgets: w.Widget) -> None:
        for widget in widgets:
            widget.observe(lambda _change: self._form_changed(), names="value")

    def _form_changed(self) -> None:
        if not self.running:
            self.estimate()

    async def _run(self, plan: Any, batch_id: str, cancel: Any) -> Any:
        client, owned = self.connection.async_client(max_connections=max(64, self.concurrency + 8))
        try:
            return await _batch().arun_batch(
                plan, client=client, batch_id=batch_id, ledger=self.ledger, concurrency=self.concurrency,
                poll_interval=self.poll_interval, job_timeout=self.job_timeout,
                budget_credits=self.budget_credits, usd_per_credit=self.usd_per_credit,
                events=self.events, webhook_url=self.webhook_url, download_dir=self.download_dir,
                progress=self._on_progress, cancel=cancel)
        finally:
            if owned:
                close = getattr(client, "aclose", None)
                if close is not None:
                    await close()
                else:
                    client.close()

    def _on_progress(self, progress: Any) -> None:
        self.progress = progress
        now = time.monotonic()
        if now - self._last_ui >= _UI_INTERVAL:
            self._last_ui = now
            self._render_progress()
        if now - self._last_table >= self._table_interval and not self._refreshing:
            self._last_table = now
            self._refresh_partial_in_background()

    def _refresh_partial_in_background(self) -> None:
        """Read the ledger and merge it into the live table on a worker thread, then redraw on
        the loop: with 10,000 rows the read and merge take ~0.1 s the loop should not lose."""
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._refresh_partial()
            return
        self._refreshing = True
        generation = self._generation
        future = loop.run_in_executor(None, self._read_partial)

        def apply(done: Any) -> None:
            self._refreshing = False
            if generation != self._generation or not self.running or done.cancelled() or done.exception():
                return  # the run ended meanwhile: its final result is what the table shows
            frame, took = done.result()
            self._show_partial(frame, took)

        future.add_done_callback(apply)

    def _read_partial(self) -> tuple[pd.DataFrame | None, float]:
        """The live frame updated from the ledger (None: nothing to update), and the time it took."""
        started = time.monotonic()
        partial, batch_id = self._partial, self._run_batch_id
        if partial is None or batch_id is None:
            return None, 0.0
        try:
            rows = self._ledger_reader().rows(batch_id)
        except Exception:  # noqa: BLE001 - the table is a view; the run's own result is what counts
            return None, 0.0
        return (_apply_ledger(partial, rows) if rows else None), time.monotonic() - started

    def _show_partial(self, frame: pd.DataFrame | None, took: float) -> None:
        started = time.monotonic()
        if frame is not None:
            self._partial = frame
        self._render_results()
        # Keep refreshes to about a tenth of the run's time on very large batches.
        self._table_interval = max(_TABLE_INTERVAL, 10 * (took + time.monotonic() - started))

    def _refresh_partial(self) -> None:
        """Fold what the ledger says about each row into the live table and redraw it, now.

        The ledger is the engine's own record (written before and after every call), read
        through a second SQLite connection, so the table shows submitted, running and finished
        rows without the engine knowing about widgets.
        """
        self._show_partial(*self._read_partial())

    def _ledger_reader(self) -> Any:
        if self._live_ledger is None:
            batch = _batch()
            if isinstance(self.ledger, batch.Ledger):
                self._live_ledger = self.ledger
            else:
                self._live_ledger = batch.Ledger(self.ledger, create=False)
        return self._live_ledger

    def _close_ledger_reader(self) -> None:
        reader, self._live_ledger = self._live_ledger, None
        if reader is not None and reader is not self.ledger:
            reader.close()

    def _ledger_counts(self, plan: Any) -> dict[str, int]:
        """How many of the plan's rows the ledger already holds, per state (this batch or an
        identical request in another batch), for the "resuming" note of the estimate."""
        path = self.ledger
        batch = _batch()
        if not isinstance(path, batch.Ledger) and not Path(str(path)).exists():
            return {}
        try:
            ledger = path if isinstance(path, batch.Ledger) else batch.Ledger(path, create=False)
            try:
                batch_id = self._explicit_batch_id or str(plan.batch_id)
                here = ledger.rows(batch_id)
                keys = [k for k, ok in zip(plan.keys, plan.valid) if ok]
                missing = [k for k in keys if k not in here or here[k].state == "pending"]
                elsewhere = ledger.find_elsewhere(self.kind, missing, batch_id) if missing else {}
                counts: dict[str, int] = {}
                for key in keys:
                    row = elsewhere[key][1] if key in elsewhere else here.get(key)
                    if row is not None and row.state != "pending":
                        counts[row.state] = counts.get(row.state, 0) + 1
                return counts
            finally:
                if ledger is not path:
                    ledger.close()
        except Exception:  # noqa: BLE001 - an unreadable ledger shows no note; the run reports it
            return {}

    def _pending_frame(self, plan: Any, table: pd.DataFrame) -> pd.DataFrame:
        """Every planned row, marked pending (or rejected with its validation error), with the
        input columns: what the live table shows until the engine reports the row finished."""
        rows = plan.rows
        frame = pd.DataFrame({
            "row_key": rows["row_key"].to_numpy(),
            "input_index": rows["input_index"].to_numpy(),
            "outcome": ["pending" if ok else "rejected" for ok in rows["valid"]],
            "error_message": rows["error"].to_numpy(),
        })
        for col in ("job_id", "result_url", "conclusion", "detail", "credits"):
            frame[col] = None
        inputs = table.reset_index(drop=True)
        inputs = inputs[[c for c in inputs.columns if c not in frame.columns]]
        return pd.concat([frame, inputs], axis=1)

    def _finished(self, run: BackgroundRun[Any]) -> None:
        if run.result is not None:
            self.result = run.result
        else:
            self._refresh_partial()  # an aborted or failed run: show what the ledger recorded
        self._close_ledger_reader()
        self._partial = None if run.result is not None else self._partial
        self._set_running(False)
        self._render_progress(final=True)
        self._render_results()
        if run.state == "failed":
            msg = f"{type(run.error).__name__}: {run.error}"
            self._set_status(f"Run failed: {msg}", "error")
            self._log.append_stderr(f"[{time.strftime('%H:%M:%S')}] Run failed: {msg}\n")
            return
        summary = dict(getattr(self.result, "summary", {}) or {})
        counts = summary.get("counts") or {}
        parts = [f"{n:,} {k}" for k, n in counts.items() if n]
        credits = summary.get("credits")
        head = "Cancelled" if run.state == "cancelled" else "Finished"
        stopped = _STOPPED_BY.get(summary.get("stopped_by") or "", "")
        if stopped and run.state != "cancelled":
            head = f"Stopped {stopped}"
        self._set_status(f"{head}: {', '.join(parts) or 'no rows'} · {render.format_credits(credits)} credits "
                         f"· {run.elapsed:,.1f} s", "cancelled" if run.state == "cancelled" else "finished")
        est = (summary.get("estimate") or {}).get("total_credits")
        self._summary_html.value = render.cost_summary_html(summary, estimate_credits=est)
        self._chart_html.value = self._charts(self.results)
        self._history(self.status_text)
        self.estimate()  # the ledger now knows these rows: the estimate says a rerun reuses them

    # ================================================================================ widgets ==

    def _build_widgets(self) -> None:
        self._header = w.HTML(render.badge_html(self.title, sandbox=self.connection.sandbox,
                                                target=self.connection.target))
        self._header.add_class("akool-header")
        if self.connection.sandbox:
            self._header.add_class("akool-sandbox")
        form = self._build_form()
        self._limit_input = w.BoundedIntText(value=0, min=0, max=max(len(self.df), 1), description="Rows",
                                             continuous_update=False,
                                             tooltip="Run only the first N rows (0 = all)",
                                             layout=w.Layout(width="180px"))
        self._limit_input.add_class("akool-limit")
        limit_help = w.HTML('<span class="akool-muted">first N rows only (0 = all): try a few, then run the '
                            'rest — rows already done are not paid again</span>')
        self._watch(self._limit_input)
        self._estimate_html = w.HTML()
        self._estimate_html.add_class("akool-estimate")

        self._run_button = self._button("Run", "akool-run", "success", "play", self._on_run_click)
        self._cancel_button = self._button("Cancel", "akool-cancel", "warning", "stop", self._on_cancel_click)
        self._cancel_button.disabled = True
        self._status_label = w.HTML('<span class="akool-muted">Ready.</span>')
        self._status_label.add_class("akool-status")
        self._progress_bar = w.IntProgress(value=0, min=0, max=1, description="",
                                           layout=w.Layout(width="320px"))
        self._progress_bar.add_class("akool-progress")
        self._progress_text = w.HTML()
        self._progress_text.add_class("akool-progress-text")

        self._filter = w.Dropdown(options=list(self._filters()), value="all rows", description="Show",
                                  layout=w.Layout(width="240px"))
        self._filter.add_class("akool-filter")
        self._filter.observe(lambda _c: self._render_results(), names="value")
        self._results_html = w.HTML(render.results_table_html(pd.DataFrame(), []))
        self._results_html.add_class("akool-results")
        self._summary_html = w.HTML()
        self._summary_html.add_class("akool-summary")
        self._chart_html = w.HTML()
        self._chart_html.add_class("akool-charts")
        self._log = w.Output(layout=w.Layout(max_height="160px", overflow="auto"))
        self._log.add_class("akool-log")

        self._export_path = w.Text(value=f"{self.slug}-results.csv", description="File",
                                   layout=w.Layout(width="360px"))
        self._export_path.add_class("akool-export-path")
        self._export_format = w.Dropdown(options=[("CSV", "csv"), ("Parquet", "parquet")], value="csv",
                                         layout=w.Layout(width="110px"))
        self._export_format.add_class("akool-export-format")
        self._export_format.observe(self._on_format_change, names="value")
        self._export_button = self._button("Export", "akool-export", "", "download", self._on_export_click)
        self._export_status = w.HTML()
        self._export_status.add_class("akool-export-status")

        self._root = w.VBox([
            self._header,
            w.VBox(form),
            w.HBox([self._limit_input, limit_help]),
            self._estimate_html,
            w.HBox([self._run_button, self._cancel_button, self._status_label]),
            w.HBox([self._progress_bar, self._progress_text]),
            self._filter,
            self._results_html,
            w.HBox([self._summary_html, self._chart_html]),
            self._log,
            w.HBox([self._export_path, self._export_format, self._export_button]),
            self._export_status,
        ])
        self._root.add_class("akool-app")
        self._root.add_class(f"akool-{self.slug}-app")

    @staticmethod
    def _button(label: str, css: str, style: str, icon: str, handler: Callable[[Any], None]) -> w.Button:
        button = w.Button(description=label, button_style=style, icon=icon, layout=w.Layout(width="110px"))
        button.add_class(css)
        button.on_click(handler)
        return button

    # Widget-facing names for tests and for users who want to drive the app from code.
    @property
    def run_button(self) -> w.Button:
        return self._run_button

    @property
    def cancel_button(self) -> w.Button:
        return self._cancel_button

    @property
    def export_button(self) -> w.Button:
        return self._export_button

    @property
    def export_path(self) -> w.Text:
        return self._export_path

    @property
    def export_format(self) -> w.Dropdown:
        return self._export_format

    @property
    def limit(self) -> w.BoundedIntText:
        return self._limit_input

    @property
    def status_text(self) -> str:
        """The status line as plain text (what the user reads next to the Run button)."""
        import re
        return re.sub(r"<[^>]+>", "", self._status_label.value)

    def _on_run_click(self, _button: Any) -> None:
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 - a button must never raise into the kernel
            self._set_status(f"Cannot run: {type(exc).__name__}: {exc}", "error")

    def _on_cancel_click(self, _button: Any) -> None:
        self.cancel()

    def _on_format_change(self, change: Mapping[str, Any]) -> None:
        path = Path(self._export_path.value or f"{self.slug}-results")
        self._export_path.value = str(path.with_suffix("." + change["new"]))

    def _on_export_click(self, _button: Any) -> None:
        try:
            path = self.export(self._export_path.value, format=self._export_format.value)
        except Exception as exc:  # noqa: BLE001
            self._export_status.value = f'<span class="akool-problem">Export failed: {render._e(exc)}</span>'
            return
        self._export_status.value = (f'Wrote {len(self.results):,} rows to <code>{render._e(path.resolve())}'
                                     f'</code>')

    def _history(self, line: str) -> None:
        # Output.append_* and not `with output:`: this runs from background tasks and threads.
        self._log.append_stdout(f"[{time.strftime('%H:%M:%S')}] {line}\n")

    def _set_running(self, running: bool) -> None:
        self._run_button.disabled = running
        self._cancel_button.disabled = not running
        self._cancel_button.description = "Cancel"
        self._export_button.disabled = running

    def _set_status(self, text: str, state: str) -> None:
        self._status_label.value = f'<span class="akool-status-{state}">{render._e(text)}</span>'

    def _show_estimate(self) -> None:
        if self.plan is None:
            self._estimate_html.value = f'<div class="akool-problem">{render._e(self._plan_error)}</div>'
            self._run_button.disabled = True
            return
        self._run_button.disabled = self.running
        plan = self._make_plan(self._rows_to_run()) if self._limit() else self.plan
        est = plan.estimate
        summary = {"total": len(plan.rows), "valid": plan.valid_count, "rejected": plan.rejected_count,
                   "duplicates": plan.duplicate_count,
                   "credits": est.total_credits, "unknown_rows": est.unknown_rows,
                   "usd": getattr(est, "usd", None)}
        self._estimate_html.value = render.estimate_html(summary, plan.rejections(),
                                                         usd_per_credit=self.usd_per_credit,
                                                         resumed=self._ledger_counts(plan))

    def _render_progress(self, final: bool = False) -> None:
        p = self.progress
        if p is None:
            if final:
                self._progress_text.value = ""
            return
        done = sum(int(getattr(p, k, 0) or 0) for k in
                   ("completed", "failed", "rejected", "uncertain", "cancelled", "timed_out"))
        total = int(getattr(p, "total", 0) or 0)
        self._progress_bar.max = max(total, 1)
        self._progress_bar.value = min(done, self._progress_bar.max)
        if final and self.run_handle is not None and self.run_handle.state == "finished":
            self._progress_bar.value = self._progress_bar.max
        bits = [f"<b>{done:,} / {total:,}</b> rows done", f"{int(getattr(p, 'submitted', 0) or 0):,} submitted"]
        for key in ("failed", "rejected", "uncertain", "cancelled"):
            n = int(getattr(p, key, 0) or 0)
            if n:
                bits.append(f"{n:,} {key}")
        bits.append(f"{render.format_credits(_num(getattr(p, 'credits', None)) or 0.0)} credits")
        rate = _num(getattr(p, "rate", None))
        if rate:  # the account's pace as the client found it (api.ratecontrol)
            refused = int(getattr(p, "refused_calls", 0) or 0)
            bits.append(f"{rate:,.0f} req/s" + (f" ({refused:,} refused)" if refused else ""))
        elapsed = _num(getattr(p, "elapsed", None))
        if elapsed is not None:
            bits.append(f"{elapsed:,.1f} s")
        self._progress_text.value = " · ".join(bits)

    def _render_results(self) -> None:
        df = self.results
        if not df.empty:
            mask = self._filters()[self._filter.value](df)
            df = df[mask.fillna(False).astype(bool)]
        self._results_html.value = render.results_table_html(
            df, self._table_columns(), labels=self._table_labels(), max_rows=self.max_rows_shown,
            empty="No results yet." if self.results.empty else "No rows match this filter.")


#: Ledger states as the live table shows them.
_LIVE_OUTCOME = {"pending": "pending", "intent": "submitting", "submitted": "running", "uncertain": "uncertain",
                 "timed_out": "timed_out", "completed": "completed", "failed": "failed"}


def _apply_ledger(frame: pd.DataFrame, rows: Mapping[str, Any]) -> pd.DataFrame:
    """`frame` (one row per planned row) updated from the ledger's rows of the batch."""
    out = frame.copy()
    position = {key: i for i, key in enumerate(out["row_key"])}
    updates: dict[str, list[tuple[int, Any]]] = {c: [] for c in
                                                 ("outcome", "job_id", "credits", "error_message", "conclusion",
                                                  "detail", "result_url")}
    for key, row in rows.items():
        i = position.get(key)
        if i is None:
            continue
        updates["outcome"].append((i, _LIVE_OUTCOME.get(row.state, row.state)))
        updates["job_id"].append((i, row.job_id))
        updates["credits"].append((i, row.credits))
        if row.error_message:
            updates["error_message"].append((i, row.error_message))
        if row.state in ("completed", "failed") and row.result:
            try:
                data = row.result_data
            except ValueError:
                data = {}
            urls = data.get("result_urls") or ([data["result_url"]] if data.get("result_url") else [])
            updates["conclusion"].append((i, data.get("conclusion")))
            updates["detail"].append((i, data.get("detail")))
            updates["result_url"].append((i, urls[0] if urls else None))
    for col, items in updates.items():
        if items:
            if col not in out:
                out[col] = None
            values = out[col].astype(object).to_numpy(copy=True)
            for i, value in items:
                values[i] = value
            out[col] = values
    return out


def _credits_by(results: pd.DataFrame, column: str) -> dict[str, float]:
    if column not in results or "credits" not in results:
        return {}
    credits = pd.to_numeric(results["credits"], errors="coerce").fillna(0.0)
    return credits.groupby(results[column].fillna("–")).sum().to_dict()

