"""An app as part of a document: what a saved or headless-run notebook shows, and cells that wait.

A widget lives in the kernel; a notebook saved by papermill or nbclient (or viewed on GitHub)
has no kernel behind it. So an app is displayed with a display id and a static HTML snapshot
next to the widget view, and when a run ends every display of the app is updated with the
final snapshot: the output notebook reads as a report, never as ``VBox(children=...)``.

Cells below an app that read ``app.results`` run at once under Run All, before anyone clicked
Run. `Document.when_done` shows, in such a cell, that it waits for the run, and fills the cell's
output in when the run ends (at once when a run has already ended).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from akool_flows.notebook import render

__all__ = ["Document", "snapshot_html"]

#: Rows of the results a snapshot shows (the file written by export has all of them).
SNAPSHOT_ROWS = 50


def snapshot_html(app: Any) -> str:
    """The app's state as self-contained HTML: header, status, estimate or summary, first rows."""
    ui = app.ui
    parts = [f'<div class="akool-app akool-snapshot">{ui.header.value}',
             f'<div class="akool-status">{ui.status.value}</div>']
    if app.result is None:
        parts.append(ui.estimate.value)
    else:
        parts.append(f'<div class="akool-progress-text">{ui.progress_text.value}</div>')
        parts.append(f'<div style="display:flex;flex-wrap:wrap;gap:16px">{ui.summary.value}{ui.charts.value}</div>')
        results = app.results
        cols = [c for c in app._grid_columns() if c != "preview"]
        parts.append(render.results_table_html(results, cols, labels=app._table_labels(), max_rows=SNAPSHOT_ROWS))
    parts.append("</div>")
    return "".join(parts)


class Document:
    """The displays of one app and the cells waiting for its run."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._handles: list[Any] = []
        self._waiting: list[tuple[Callable[[Any], Any], Any]] = []

    def bundle(self, **kwargs: Any) -> dict[str, Any]:
        data = dict(self.app.ui.root._repr_mimebundle_(**kwargs) or {})
        data["text/html"] = snapshot_html(self.app)
        data["text/plain"] = repr(self.app)
        return data

    def display(self) -> None:
        from IPython.display import display

        handle = display(self.bundle(), raw=True, display_id=True)
        if handle is not None:
            self._handles.append(handle)

    def when_done(self, show: Callable[[Any], Any]) -> Any:
        """``show(app)`` now if a run has ended and none is going; else a note that fills in later.

        The note is an Output widget: widget updates reach the browser from any thread or task,
        where a display update from a background task may not reach the cell it belongs to."""
        import ipywidgets as w

        app = self.app
        if app.result is not None and not app.running:
            return show(app)
        out = w.Output()
        out.add_class("akool-when-done")
        out.append_display_data(_waiting_note())
        self._waiting.append((show, out))
        return out

    def finished(self) -> None:
        """A run ended: refresh every display of the app and fill in the waiting cells."""
        for handle in self._handles:
            handle.update(self.bundle(), raw=True)
        waiting, self._waiting = self._waiting, []
        for show, out in waiting:
            try:
                value = show(self.app)
            except Exception as exc:  # noqa: BLE001 - shown in the cell that asked, not raised into the run
                value = pd.DataFrame({"error": [f"{type(exc).__name__}: {exc}"]})
            out.outputs = ()
            if value is not None:
                out.append_display_data(value)


def _waiting_note() -> Any:
    from IPython.display import HTML

    return HTML('<div class="akool-waiting akool-muted">Waiting for the batch: click <b>Run</b> in the app above. '
                'This output fills in when the run ends (or run this cell again).</div>')
