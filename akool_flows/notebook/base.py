"""The lifecycle every notebook app shares: estimate, Run / Cancel, wait, results, export.

A concrete app (moderation, catalog translation, the generic form) supplies its form and how
the form turns into a batch plan. The widgets are `layout.AppLayout`; what the ledger already
knows is `ledger_view.LedgerView`; the live table is `live.LiveTable`; the words and numbers of
a run are `status.RunNumbers`. How a batch runs is one `akool_flows.batch.BatchOptions`, the same
object the CLI and Airflow pass to the engine.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as w
import pandas as pd

from akool_flows.api.kinds import get_kind

from akool_flows.notebook import render
from akool_flows.notebook.connection import Connection, resolve_connection
from akool_flows.notebook.estimate import estimate_html
from akool_flows.notebook.export import download_link_html, export_table
from akool_flows.notebook.frames import input_columns, order_columns
from akool_flows.notebook.grid import display_frame, search_mask
from akool_flows.notebook.layout import AppLayout
from akool_flows.notebook.ledger_view import Known, LedgerView
from akool_flows.notebook.live import LiveTable
from akool_flows.notebook.runner import BackgroundRun
from akool_flows.notebook.status import RunNumbers

__all__ = ["BatchAppBase", "PROBLEM_OUTCOMES", "check_input_frame"]

#: Outcomes that mean "look at this row".
PROBLEM_OUTCOMES = ("failed", "rejected", "uncertain", "timed_out", "cancelled", "submitted")
#: Seconds between progress repaints: smooth, without flooding the comm channel.
_UI_INTERVAL = 0.15


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


class BatchAppBase:
    """Common machinery of the notebook apps. Subclasses define `title`, `slug` and the hooks
    `_build_form`, `_plan_options` and (optionally) `_plan_input`, `_answer_columns`, `_charts`
    and `_filters`.

    Options every app takes (keywords):

    * ``client`` — an `AkoolClient` / `AsyncAkoolClient` to use as is; ``env`` — a mapping of
      ``AKOOL_*`` variables to build clients from (default: the process environment). With
      neither and no credentials in the environment, the kernel's local sandbox is used.
    * ``ledger`` — SQLite path or `Ledger`: where the run records every row (default
      ``akool-ledger.sqlite``; with the in-process sandbox, a ledger of that sandbox in the
      temp folder). ``batch_id`` — the ledger's name for the batch (default: from the rows).
    * ``options`` — a `BatchOptions`; or any of its fields as keywords (``concurrency``,
      ``poll_interval``, ``job_timeout``, ``budget_credits``, ``usd_per_credit``, ``download_dir``,
      ``webhook_url``, ``events`` ...). Without ``options`` the apps use 16 requests at once and
      poll a sandbox every 0.5 s (else 5 s). ``cost_table`` (``{kind: credits per job}``) prices
      kinds the docs publish no price for.
    * ``background`` — ``"auto"`` (a task on the kernel's loop; a thread when none runs),
      ``"loop"`` or ``"thread"``.
    """

    title: ClassVar[str] = "Akool batch"
    #: Name for widgets' CSS classes and default export file names.
    slug: ClassVar[str] = "batch"

    def __init__(self, df: pd.DataFrame, *, kind: str, client: Any = None, env: Mapping[str, str] | None = None,
                 ledger: str | Path | None = None, batch_id: str | None = None, options: Any = None,
                 cost_table: Mapping[str, float] | None = None, background: str = "auto",
                 **option_kwargs: Any) -> None:
        check_input_frame(df)
        if background not in ("auto", "loop", "thread"):
            raise ValueError(f"background must be 'auto', 'loop' or 'thread', got {background!r}")
        self.df = df
        self.kind = kind
        self.connection: Connection = resolve_connection(client, env=env)
        if options is None:
            # The sandbox finishes jobs in about a second; polling it every 5 s would make a demo crawl.
            option_kwargs = {"concurrency": 16, "poll_interval": 0.5 if self.connection.sandbox else 5.0,
                             **option_kwargs}
        #: How the Run button runs the batch (`akool_flows.batch.BatchOptions`).
        self.options: Any = _batch().BatchOptions.from_kwargs(options, **option_kwargs)
        self.ledger = ledger if ledger is not None else self._default_ledger()
        self.ledger_view = LedgerView(self.ledger, endpoint=self.connection.target)
        self._explicit_batch_id = batch_id
        self.cost_table = dict(cost_table or {})
        self.background = background

        #: The plan for the current form over all rows (updated by `estimate()`).
        self.plan: Any = None
        #: The last finished run's `BatchResult` (None before the first run ends).
        self.result: Any = None
        #: The latest `Progress` reported by the engine.
        self.progress: Any = None
        self.run_handle: BackgroundRun[Any] | None = None
        self.known = Known()
        self._plan_error: str | None = None
        self._live: LiveTable | None = None
        self._last_ui = 0.0
        self.ui = AppLayout(title=self.title, slug=self.slug, sandbox=self.connection.sandbox,
                            target=self.connection.target, form=self._build_form(), rows=len(self.df),
                            filters=list(self._filters()), on_run=self._on_run_click,
                            on_cancel=lambda _b: self.cancel(), on_export=self._on_export_click,
                            on_filter=lambda _c: self._render_results())
        self.ui.export_format.observe(self._on_format_change, names="value")
        self._watch(self.ui.limit)
        self.estimate()

    # ============================================================================ public API ==

    @property
    def batch_id(self) -> str:
        """The ledger's name for the batch the Run button starts: the one given, else the plan's
        own (a hash of the kind and the rows), so rerunning the same rows resumes the same batch.
        Rows run before under another batch (e.g. "first 5" before "all") are not paid again
        either: the engine adopts identical requests from the ledger."""
        return self._batch_id_for(self._make_plan(self._rows_to_run()))

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
        """One row per planned row of the last run, the user's columns first (live while a run is
        going, rows not finished yet shown as ``pending``); an empty DataFrame before any run."""
        if self.result is not None:
            return order_columns(self.result.results, input_columns(self.result.plan.source))
        if self._live is not None:
            return self._live.frame
        return pd.DataFrame()

    @property
    def cost_log(self) -> pd.DataFrame:
        """Credits and USD per row of the last finished run (``paid_in``: this run or an earlier
        one), with a totals row."""
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
        run_plan = run_input = None
        if self.estimate() is not None:
            try:
                run_plan, run_input = self._plan_with_input(self._rows_to_run())
            except Exception as exc:  # noqa: BLE001 - shown, not raised
                self._plan_error = str(exc)
        if run_plan is None:
            self.ui.set_status(f"Cannot run: {self._plan_error}", "error")
            return None
        batch_id = self._batch_id_for(run_plan)
        self.result = None
        self.progress = None
        self._live = LiveTable(self.ledger_view, run_plan, run_input, batch_id, redraw=lambda _f: self._render_results())
        self._render_results()
        self.ui.summary.value = ""
        self.ui.charts.value = ""
        self.run_handle = BackgroundRun(lambda cancel: self._run(run_plan, batch_id, cancel),
                                        on_done=self._finished, mode=self.background,  # type: ignore[arg-type]
                                        name=f"akool-{self.slug}-run")
        self.ui.set_running(True)
        self.ui.set_status(f"Running {run_plan.valid_count:,} rows (batch {batch_id})…", "running")
        self.ui.history(f"Run: {run_plan.valid_count:,} of {len(run_plan.rows):,} rows, batch {batch_id}, "
                        f"ledger {self.ledger}")
        self.run_handle.start()
        return self.run_handle

    def cancel(self) -> str:
        """Stop submitting new rows (the Cancel button); a second call aborts the run at once.
        Jobs already running are left running (not waited for) and kept in the ledger, so Run
        collects them later and nothing is paid twice."""
        if not self.running:
            return "idle"
        assert self.run_handle is not None
        what = self.run_handle.cancel()
        if what == "cancelling":
            self.ui.set_status("Cancelling: no new rows are sent; jobs already running are left running "
                               "(Run again collects them). Click again to stop at once.", "cancelling")
            self.ui.cancel.description = "Stop now"
        elif what == "aborted":
            self.ui.set_status("Stopping now…", "cancelling")
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

    @property
    def shown(self) -> pd.DataFrame:
        """The rows the grid shows: `results` through the "Show" filter and the search box."""
        df = self.results
        if df.empty:
            return df
        mask = self._filters()[self.ui.filter.value](df).fillna(False).astype(bool)
        return df[mask & search_mask(df, self.ui.search.value)]

    def export(self, path: str | Path, *, format: str | None = None, cost_log: bool = True, rows: str = "shown",
               make_dirs: bool = False) -> Path:
        """Write the rows the grid shows (``rows="all"``: every row) as spreadsheet-safe CSV or as
        Parquet (by `format`, else by the file's extension); with `cost_log`, the cost log of
        those rows goes next to it as ``<name>.costs.csv``. Only into an existing folder unless
        `make_dirs`. Returns the path written."""
        if rows not in ("shown", "all"):
            raise ValueError(f"rows must be 'shown' or 'all', got {rows!r}")
        df = self.shown if rows == "shown" else self.results
        if self.results.empty:
            raise ValueError("nothing to export yet: run the batch first")
        costs = None
        if cost_log and not self.cost_log.empty:
            log = self.cost_log
            keep = log["row_key"].isin(df["row_key"]) | log["row_key"].eq("TOTAL")
            costs = log if len(df) == len(self.results) else _with_total(log[keep], self.options.usd_per_credit)
        return export_table(df, path, format=format, cost_log=costs, make_dirs=make_dirs)

    @property
    def widget(self) -> w.VBox:
        """The app's root widget (displaying the app displays this)."""
        return self.ui.root

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.ui.root._repr_mimebundle_(**kwargs)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rows={len(self.df)}, kind={self.kind!r}, status={self.status!r}, "
                f"target={self.connection.target!r}, sandbox={self.connection.sandbox})")

    # Widget-facing names for tests and for users who want to drive the app from code.
    run_button = property(lambda self: self.ui.run)
    cancel_button = property(lambda self: self.ui.cancel)
    export_button = property(lambda self: self.ui.export)
    export_path = property(lambda self: self.ui.export_path)
    export_format = property(lambda self: self.ui.export_format)
    limit = property(lambda self: self.ui.limit)

    @property
    def status_text(self) -> str:
        """The status line as plain text (what the user reads next to the Run button)."""
        import html
        return html.unescape(re.sub(r"<[^>]+>", "", self.ui.status.value))

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

    def _row_number_column(self) -> str:
        """The column the grid numbers rows by (the input's own row label)."""
        return "input_index"

    def _answer_columns(self) -> list[str]:
        """What each row came to, after the user's columns."""
        return ["outcome", "result_url", "credits", "paid_in", "error_message"]

    def _table_labels(self) -> dict[str, str]:
        return {self._row_number_column(): "#", "result_url": "result", "error_message": "error",
                "paid_in": "paid in"}

    def _charts(self, results: pd.DataFrame) -> str:
        """Small charts for the summary area: rows and credits per outcome."""
        return render.outcome_charts(results)

    def _filters(self) -> dict[str, Callable[[pd.DataFrame], pd.Series]]:
        return {
            "all rows": lambda df: pd.Series(True, index=df.index),
            "problems": lambda df: df["outcome"].isin(PROBLEM_OUTCOMES),
            "completed": lambda df: df["outcome"].eq("completed"),
        }

    # ============================================================================== internals ==

    def _make_plan(self, df: pd.DataFrame) -> Any:
        """A `BatchPlan` for `df` with the current form values."""
        return self._plan_with_input(df)[0]

    def _plan_with_input(self, df: pd.DataFrame) -> tuple[Any, pd.DataFrame]:
        table = self._plan_input(df)
        plan = _batch().plan_batch(table, self.kind, usd_per_credit=self.options.usd_per_credit,
                                   cost_table=self.cost_table,
                                   ledger=self.ledger if self.ledger_view.exists() else None, **self._plan_options())
        return plan, table

    def _batch_id_for(self, plan: Any) -> str:
        return self._explicit_batch_id or str(plan.batch_id)

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
        return max(0, int(self.ui.limit.value or 0))

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
        client, owned = self.connection.async_client(max_connections=max(64, self.options.concurrency + 8))
        try:
            options = replace(self.options, progress=self._on_progress, cancel=cancel)
            return await _batch().arun_batch(plan, client=client, batch_id=batch_id, ledger=self.ledger,
                                             options=options)
        finally:
            if owned:
                close = getattr(client, "aclose", None)
                if close is not None:
                    await close()
                else:
                    client.close()

    def _on_progress(self, progress: Any) -> None:
        import time

        self.progress = progress
        now = time.monotonic()
        if now - self._last_ui >= _UI_INTERVAL:
            self._last_ui = now
            self._render_progress()
        if self._live is not None:
            self._live.tick()

    def _finished(self, run: BackgroundRun[Any]) -> None:
        live, self._live = self._live, None
        if run.result is not None:
            self.result = run.result
        elif live is not None:
            live.refresh()  # an aborted or failed run: show what the ledger recorded
            self._live = live
        if live is not None:
            live.close()
        self.ui.set_running(False)
        self._render_progress(final=True)
        self._render_results()
        if run.state == "failed":
            msg = f"{type(run.error).__name__}: {run.error}"
            self.ui.set_status(f"Run failed: {msg}", "error")
            self.ui.log.append_stderr(f"Run failed: {msg}\n")
            return
        numbers = self._numbers(final=True)
        state = "cancelled" if run.state == "cancelled" else "finished"
        self.ui.set_status(numbers.status_line(run.state, self.options.usd_per_credit), state)
        summary = dict(getattr(self.result, "summary", {}) or {})
        est = (summary.get("estimate") or {}).get("total_credits")
        self.ui.summary.value = render.cost_summary_html(numbers, estimate_credits=est,
                                                         usd_per_credit=self.options.usd_per_credit)
        self.ui.charts.value = self._charts(self.results)
        self.ui.history(self.status_text)
        self.estimate()  # the ledger now knows these rows: the estimate says a rerun reuses them

    def _numbers(self, final: bool = False) -> RunNumbers:
        """The run's numbers: the engine's summary once it has one, else its latest progress."""
        if final and self.result is not None:
            elapsed = self.run_handle.elapsed if self.run_handle is not None else None
            return RunNumbers.from_summary(self.result.summary, elapsed)
        if self.progress is not None:
            return RunNumbers.from_progress(self.progress)
        return RunNumbers(total=0)

    def _on_run_click(self, _button: Any) -> None:
        try:
            self.start()
        except Exception as exc:  # noqa: BLE001 - a button must never raise into the kernel
            self.ui.set_status(f"Cannot run: {type(exc).__name__}: {exc}", "error")

    def _grid_columns(self) -> list[str]:
        """The row number, the user's own columns, a media preview, then what each row came to."""
        number = self._row_number_column()
        source = self.result.plan.source if self.result is not None else (
            self._live.plan.source if self._live is not None else self.df)
        own = [c for c in input_columns(source) if c != number]
        return [number, *own, "preview", *[c for c in self._answer_columns() if c not in own]]

    def _on_format_change(self, change: Mapping[str, Any]) -> None:
        path = Path(self.ui.export_path.value or f"{self.slug}-results")
        self.ui.export_path.value = str(path.with_suffix("." + change["new"]))

    def _on_export_click(self, _button: Any) -> None:
        from IPython.display import HTML, display

        self.ui.download.clear_output()
        try:
            path = self.export(self.ui.export_path.value, format=self.ui.export_format.value)
        except Exception as exc:  # noqa: BLE001
            self.ui.export_status.value = f'<span class="akool-problem">Export failed: {render.e(exc)}</span>'
            return
        n, total = len(self.shown), len(self.results)
        which = f"{n:,} rows" if n == total else f"{n:,} of {total:,} rows (as filtered)"
        self.ui.export_status.value = f"Wrote {which} to <code>{render.e(path.resolve())}</code>"
        with self.ui.download:
            display(HTML(download_link_html(path)))

    def _show_estimate(self) -> None:
        if self.plan is None:
            self.ui.estimate.value = f'<div class="akool-problem">{render.e(self._plan_error)}</div>'
            self.ui.run.disabled = True
            return
        self.ui.run.disabled = self.running
        plan = self._make_plan(self._rows_to_run()) if self._limit() else self.plan
        try:
            self.known = self.ledger_view.known(plan, self._batch_id_for(plan))
        except Exception:  # noqa: BLE001 - an unreadable ledger shows no note; the run reports it
            self.known = Known()
        self.ui.estimate.value = estimate_html(plan, self.known, usd_per_credit=self.options.usd_per_credit,
                                               observed=self._observed(plan))

    def _observed(self, plan: Any) -> tuple[float | None, int]:
        if not plan.estimate.sources.get("observed"):
            return None, 0
        try:
            return self.ledger_view.observed_price(self.kind)
        except Exception:  # noqa: BLE001 - only the note on where the price comes from is lost
            return None, 0

    def _render_progress(self, final: bool = False) -> None:
        if self.progress is None and not (final and self.result is not None):
            return
        numbers = self._numbers(final)
        self.ui.progress.max = max(numbers.total, 1)
        self.ui.progress.value = min(numbers.done, self.ui.progress.max)
        self.ui.progress_text.value = render.progress_html(numbers)

    def _render_results(self) -> None:
        shown = self.shown
        plan = self.result.plan if self.result is not None else (self._live.plan if self._live is not None else None)
        bodies = [plan.bodies[i] for i in shown.index] if plan is not None and len(plan.bodies) == len(self.results) \
            else None
        self.ui.grid.show(display_frame(shown, self._grid_columns(), self._table_labels(),
                                        kind=get_kind(self.kind), bodies=bodies))
        total = len(self.results)
        self.ui.shown.value = ("" if not total else f'<span class="akool-muted">{len(shown):,} of {total:,} rows '
                               f'shown; export writes these</span>' if len(shown) != total
                               else f'<span class="akool-muted">{total:,} rows</span>')


def _with_total(log: pd.DataFrame, usd_per_credit: float) -> pd.DataFrame:
    """A cost log cut to some rows, with its TOTAL row recomputed for them."""
    rows = log[log["row_key"] != "TOTAL"]
    credits = float(pd.to_numeric(rows["credits"], errors="coerce").sum(skipna=True))
    total = {"row_key": "TOTAL", "input_index": None, "outcome": f"{len(rows)} rows", "credits": credits,
             "credits_source": "", "paid_in": "", "usd": credits * usd_per_credit}
    return pd.concat([rows, pd.DataFrame([total])], ignore_index=True)
