"""The lifecycle every notebook app shares: estimate, Run / Cancel, wait, results, export.

A concrete app (moderation, catalog translation, the generic form) supplies its form and how
the form turns into a batch plan. The widgets are `layout.AppLayout`; what the ledger already
knows is `ledger_view.LedgerView`; the live table is `live.LiveTable`; the words and numbers of
a run are `status.RunNumbers`. How a batch runs is one `akool_flows.batch.BatchOptions`, the same
object the CLI and Airflow pass to the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

import ipywidgets as w
import pandas as pd

from akool_flows.notebook import render
from akool_flows.notebook.connection import Connection, resolve_connection
from akool_flows.notebook.document import Document
from akool_flows.notebook.frames import check_input_frame, input_columns, order_columns
from akool_flows.notebook.layout import AppLayout
from akool_flows.notebook.ledger_view import Known, LedgerView, default_ledger
from akool_flows.notebook.live import LiveTable
from akool_flows.notebook.probe import PriceProbe
from akool_flows.notebook.runner import BackgroundRun
from akool_flows.notebook.status import RunNumbers
from akool_flows.notebook.view import PROBLEM_OUTCOMES, AppView

__all__ = ["BatchAppBase", "PROBLEM_OUTCOMES"]

#: Seconds between progress repaints: smooth, without flooding the comm channel.
_UI_INTERVAL = 0.15


def _batch() -> Any:
    # Imported on first use so `import akool_flows.notebook` stays cheap.
    import akool_flows.batch as batch
    return batch


class BatchAppBase(AppView):
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
        self.ledger = ledger if ledger is not None else default_ledger(self.connection)
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
                            on_filter=lambda _c: self._render_results(),
                            on_probe=lambda _b: self.probe_price(self.ui.probe_rows.value))
        self.ui.export_format.observe(self._on_format_change, names="value")
        self._watch(self.ui.limit)
        self.document = Document(self)
        #: Credits per row learnt from the account's balance by `probe_price` (None: no probe yet).
        self.probed_price: float | None = None
        self._probe = PriceProbe()
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
        self._live = LiveTable(self.ledger_view, run_plan, run_input, batch_id, prepare=self._grid_cells,
                               redraw=self._show_cells)
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

    def probe_price(self, rows: int = 3) -> BackgroundRun[Any] | None:
        """Learn the price of a kind the docs publish none for: run the first `rows` rows and divide
        what the account's balance dropped by the jobs created. Later estimates (and budgets) use
        it (`cost_table`). Only as exact as the account is quiet meanwhile."""
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        if self.running:
            return self.run_handle
        self._probe.arm(self.ui.limit, rows)
        handle = self.start()
        if handle is None:
            self._probe.disarm(self.ui.limit)
        return handle

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
        # Again from this (the cell's) thread: a display update sent from the run's thread may not
        # reach the notebook's output (headless runners attribute messages to the running cell).
        self.document.finished()
        return self.results

    @property
    def widget(self) -> w.VBox:
        """The app's root widget (displaying the app displays this)."""
        return self.ui.root

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.document.bundle(**kwargs)

    def _ipython_display_(self) -> None:
        # With a display id, so the end of a run can replace the static snapshot beside the widget.
        self.document.display()

    def when_done(self, show: Callable[[Any], Any] = lambda app: app.results) -> Any:
        """For the cells below the app: ``show(app)`` once the run has ended. Under Run All (before
        anyone clicked Run) the cell says it waits, and fills in when the run ends."""
        return self.document.when_done(show)

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
        async with self.connection.run_client(max_connections=max(64, self.options.concurrency + 8)) as client:
            options = replace(self.options, progress=self._on_progress, cancel=cancel)
            result = await _batch().arun_batch(plan, client=client, batch_id=batch_id, ledger=self.ledger,
                                               options=options)
            await self._probe.read_balance(client)
            return result

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
            self.document.finished()
            return
        if self._probe.active:
            self._learn_price(run.result)
        numbers = self._numbers(final=True)
        state = "cancelled" if run.state == "cancelled" else "finished"
        self.ui.set_status(numbers.status_line(run.state, self.options.usd_per_credit), state)
        summary = dict(getattr(self.result, "summary", {}) or {})
        est = summary.get("estimate") or {}
        self.ui.summary.value = render.cost_summary_html(numbers, estimate_credits=est.get("total_credits"),
                                                         usd_per_credit=self.options.usd_per_credit,
                                                         unknown_rows=int(est.get("unknown_rows") or 0))
        self.ui.charts.value = self._charts(self.results)
        self.ui.history(self.status_text)
        self.estimate()  # the ledger now knows these rows: the estimate says a rerun reuses them
        self.document.finished()

    def _learn_price(self, result: Any) -> None:
        self._probe.disarm(self.ui.limit)
        price, line = self._probe.price(result)
        if price is not None:
            self.probed_price = price
            self.cost_table.setdefault(self.kind, price)
        self.ui.history(line)

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


