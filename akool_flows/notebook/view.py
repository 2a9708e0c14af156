"""How an app shows its state: the estimate, field errors, progress, the grid, export.

The presentation half of every app (`BatchAppBase` is the lifecycle half): everything here reads
the app's plan, ledger knowledge, progress and results and writes them into its widgets
(`layout.AppLayout`); nothing here starts or stops a run.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import ipywidgets as w
import pandas as pd

from akool_flows.api.kinds import get_kind
from akool_flows.notebook import render
from akool_flows.notebook.estimate import estimate_html
from akool_flows.notebook.export import download_link_html, export_table
from akool_flows.notebook.fields import field_errors, show_errors
from akool_flows.notebook.frames import input_columns
from akool_flows.notebook.grid import display_frame, search_mask
from akool_flows.notebook.ledger_view import Known
from akool_flows.notebook.status import label

__all__ = ["AppView", "PROBLEM_OUTCOMES"]

#: Outcomes that mean "look at this row".
PROBLEM_OUTCOMES = ("failed", "rejected", "uncertain", "timed_out", "cancelled", "submitted")


class AppView:
    """Mixed into `BatchAppBase`; expects its attributes (``ui``, ``plan``, ``result`` ...)."""

    ui: Any
    plan: Any
    result: Any
    progress: Any
    known: Known
    options: Any
    kind: str
    df: pd.DataFrame
    slug: str
    probed_price: float | None
    _live: Any
    _plan_error: str | None

    # Widget-facing names for tests and for users who want to drive the app from code.
    run_button = property(lambda self: self.ui.run)
    cancel_button = property(lambda self: self.ui.cancel)
    export_button = property(lambda self: self.ui.export)
    export_path = property(lambda self: self.ui.export_path)
    export_format = property(lambda self: self.ui.export_format)
    limit = property(lambda self: self.ui.limit)

    @property
    def shown(self) -> pd.DataFrame:
        """The rows the grid shows: `results` through the "Show" filter and the search box."""
        return self._filtered(self.results)

    def _filtered(self, df: pd.DataFrame) -> pd.DataFrame:
        if df.empty:
            return df
        mask = self._filters()[self.ui.filter.value](df).fillna(False).astype(bool)
        # What the grid shows is what is searched (not hidden keys and timestamps).
        return df[mask & search_mask(df, self.ui.search.value, self._grid_columns())]

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
    def status_text(self) -> str:
        """The status line as plain text (what the user reads next to the Run button)."""
        import html
        return html.unescape(re.sub(r"<[^>]+>", "", self.ui.status.value))

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

    def _field_error_labels(self) -> Mapping[str, w.HTML]:
        """``{field: label}``: where each constant field of the form shows its error."""
        return {}

    def _show_field_errors(self) -> None:
        labels = self._field_error_labels()
        if not labels:
            return
        try:
            defaults = self._plan_options().get("defaults") or {}
        except Exception:  # noqa: BLE001 - the form's own message is shown with the estimate
            defaults = {}
        show_errors(labels, field_errors(get_kind(self.kind), defaults))

    def _show_estimate(self) -> None:
        self._show_field_errors()
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
                                               observed=self._observed(plan), probe=self.probed_price)
        unpriced = any(ok and est is None and k not in self.known.keys
                       for k, ok, est in zip(plan.keys, plan.valid, plan.est))
        self.ui.probe_box.layout.display = None if unpriced else "none"
        # Nothing valid to send: Run would only say so.
        self.ui.run.disabled = self.running or plan.valid_count == 0

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
        self._show_cells(self._grid_cells(self.results))

    def _grid_cells(self, results: pd.DataFrame) -> tuple[pd.DataFrame, int, int]:
        """What the grid shows for `results`: its cells, and how many rows of how many. Pure
        computation (no widget is written), so the live table runs it on a worker thread."""
        shown = self._filtered(results)
        plan = self.result.plan if self.result is not None else (self._live.plan if self._live is not None else None)
        bodies = [plan.bodies[i] for i in shown.index] if plan is not None and len(plan.bodies) == len(results) \
            else None
        cells = display_frame(shown, self._grid_columns(), self._table_labels(), kind=get_kind(self.kind),
                              bodies=bodies)
        return cells, len(shown), len(results)

    def _show_cells(self, prepared: tuple[pd.DataFrame, int, int]) -> None:
        cells, n, total = prepared
        self.ui.grid.show(cells)
        self.ui.shown.value = ("" if not total else f'<span class="akool-muted">{n:,} of {total:,} rows '
                               f'shown; export writes these</span>' if n != total
                               else f'<span class="akool-muted">{total:,} rows</span>')

    @property
    def problems(self) -> dict[str, int]:
        """Rows of the last run that need a look, per outcome (failed, uncertain, timed out ...)."""
        if self.result is None:
            return {}
        counts = self.result.results["outcome"].value_counts().to_dict()
        return {o: int(counts[o]) for o in PROBLEM_OUTCOMES if counts.get(o) and o != "rejected"}

    def raise_on_problems(self) -> None:
        """Raise (failing a headless notebook) when the last run left rows failed, uncertain, timed
        out, cancelled or running; rejected rows are reported, not raised."""
        if self.result is None:
            raise RuntimeError("no finished run to check")
        if self.problems:
            what = ", ".join(f"{n:,} {label(o)}" for o, n in self.problems.items())
            raise RuntimeError(f"the batch left rows that need a look: {what}; see app.results (filter "
                               f"'problems') and the cost log")


def _with_total(log: pd.DataFrame, usd_per_credit: float) -> pd.DataFrame:
    """A cost log cut to some rows, with its TOTAL row recomputed for them."""
    rows = log[log["row_key"] != "TOTAL"]
    credits = float(pd.to_numeric(rows["credits"], errors="coerce").sum(skipna=True))
    total = {"row_key": "TOTAL", "input_index": None, "outcome": f"{len(rows)} rows", "credits": credits,
             "credits_source": "", "paid_in": "", "usd": credits * usd_per_credit}
    return pd.concat([rows, pd.DataFrame([total])], ignore_index=True)
