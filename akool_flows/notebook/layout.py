"""The widgets of an app and how they are arranged; no behaviour beyond showing state.

Every widget carries an ``akool-*`` CSS class (``akool-run``, ``akool-cancel``, ``akool-export``,
``akool-results`` ...) so browser tests and users' own CSS select them exactly. The root is at
most as wide as its cell: rows wrap instead of overflowing a narrow window.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w

from akool_flows.notebook import render
from akool_flows.notebook.grid import ResultsGrid

__all__ = ["AppLayout", "button"]


def button(label: str, css: str, style: str, icon: str, handler: Callable[[Any], None],
           width: str = "110px") -> w.Button:
    b = w.Button(description=label, button_style=style, icon=icon, layout=w.Layout(width=width))
    b.add_class(css)
    b.on_click(handler)
    return b


def _inputs(widget: w.Widget) -> list[w.Widget]:
    """Every input widget (anything with `disabled`) inside `widget`."""
    found = [widget] if hasattr(widget, "disabled") and not isinstance(widget, w.Button) else []
    for child in getattr(widget, "children", ()):
        found += _inputs(child)
    return found


def _html(css: str, value: str = "", **layout: Any) -> w.HTML:
    widget = w.HTML(value, layout=w.Layout(**layout))
    widget.add_class(css)
    return widget


_WRAP = {"flex_flow": "row wrap", "align_items": "center", "max_width": "100%"}


class AppLayout:
    """The widget tree of one app. `form` is the kind-specific part (from the app)."""

    def __init__(self, *, title: str, slug: str, sandbox: bool, target: str, form: list[w.Widget], rows: int,
                 filters: list[str], on_run: Callable[[Any], None], on_cancel: Callable[[Any], None],
                 on_export: Callable[[Any], None], on_filter: Callable[[Any], None],
                 on_probe: Callable[[Any], None]) -> None:
        self.header = _html("akool-header", render.badge_html(title, sandbox=sandbox, target=target))
        if sandbox:
            self.header.add_class("akool-sandbox")
        self.form = w.VBox(form, layout=w.Layout(max_width="100%"))
        self.form.add_class("akool-form")
        self.limit = w.BoundedIntText(value=0, min=0, max=max(rows, 1), description="Rows",
                                      continuous_update=False, tooltip="Run only the first N rows (0 = all)",
                                      layout=w.Layout(width="180px"))
        self.limit.add_class("akool-limit")
        limit_help = w.HTML('<span class="akool-muted">first N rows only (0 = all): try a few, then run the '
                            'rest — rows already done are not paid again</span>')
        self.estimate = _html("akool-estimate")
        # Shown when rows have no known price: run a few, read the account's balance before and after.
        self.probe_rows = w.BoundedIntText(value=3, min=1, max=100, description="Probe rows",
                                           layout=w.Layout(width="180px"))
        self.probe_rows.add_class("akool-probe-rows")
        self.probe = button("Price probe", "akool-probe", "info", "search-dollar", on_probe, width="130px")
        self.probe_box = w.HBox([self.probe_rows, self.probe, w.HTML(
            '<span class="akool-muted">runs the first N rows and prices the rest from what the account was '
            'charged</span>')], layout=w.Layout(**_WRAP, display="none"))

        self.run = button("Run", "akool-run", "success", "play", on_run)
        self.cancel = button("Cancel", "akool-cancel", "warning", "stop", on_cancel)
        self.cancel.disabled = True
        self.status = _html("akool-status", '<span class="akool-muted">Ready.</span>')
        self.progress = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="320px"))
        self.progress.add_class("akool-progress")
        self.progress_text = _html("akool-progress-text")

        self.filter = w.Dropdown(options=filters, value=filters[0], description="Show", layout=w.Layout(width="240px"))
        self.filter.add_class("akool-filter")
        self.filter.observe(on_filter, names="value")
        # Enter (or leaving the box) searches: a search over 100,000 rows per keystroke would lag.
        self.search = w.Text(placeholder="search every column (Enter)", continuous_update=False,
                             layout=w.Layout(width="300px"))
        self.search.add_class("akool-search")
        self.search.observe(on_filter, names="value")
        self.shown = _html("akool-shown")
        self.grid = ResultsGrid()
        self.summary = _html("akool-summary")
        self.charts = _html("akool-charts")
        self.log = w.Output(layout=w.Layout(max_height="160px", overflow="auto"))
        self.log.add_class("akool-log")

        self.export_path = w.Text(value=f"{slug}-results.csv", description="File", layout=w.Layout(width="360px"))
        self.export_path.add_class("akool-export-path")
        self.export_format = w.Dropdown(options=[("CSV", "csv"), ("Parquet", "parquet")], value="csv",
                                        layout=w.Layout(width="110px"))
        self.export_format.add_class("akool-export-format")
        self.export = button("Export", "akool-export", "", "download", on_export)
        self.export_status = _html("akool-export-status")
        # The link goes through the notebook's output renderer, which makes relative links work.
        self.download = w.Output(layout=w.Layout(max_width="100%"))
        self.download.add_class("akool-download-area")

        self.root = w.VBox([
            self.header,
            self.form,
            w.HBox([self.limit, limit_help], layout=w.Layout(**_WRAP)),
            self.estimate,
            self.probe_box,
            w.HBox([self.run, self.cancel, self.status], layout=w.Layout(**_WRAP)),
            w.HBox([self.progress, self.progress_text], layout=w.Layout(**_WRAP)),
            w.HBox([self.filter, self.search, self.shown], layout=w.Layout(**_WRAP)),
            self.grid.container,
            w.HBox([self.summary, self.charts], layout=w.Layout(**_WRAP)),
            self.log,
            w.HBox([self.export_path, self.export_format, self.export], layout=w.Layout(**_WRAP)),
            self.export_status,
            self.download,
        ], layout=w.Layout(max_width="100%"))
        self.root.add_class("akool-app")
        self.root.add_class(f"akool-{slug}-app")

    def set_running(self, running: bool) -> None:
        self.run.disabled = running
        self.cancel.disabled = not running
        self.cancel.description = "Cancel"
        self.export.disabled = running
        self.probe.disabled = running
        # The form is read-only while a run goes: what runs is what was there at Run.
        for widget in (*_inputs(self.form), self.limit):
            widget.disabled = running

    def set_status(self, text: str, state: str) -> None:
        self.status.value = f'<span class="akool-status-{state}">{render.e(text)}</span>'

    def history(self, line: str) -> None:
        import time
        # Output.append_* and not `with output:`: this runs from background tasks and threads.
        self.log.append_stdout(f"[{time.strftime('%H:%M:%S')}] {line}\n")
