"""HTML for the notebook apps: results table, estimate, cost summary and SVG bar charts.

Pure functions from data to HTML strings, so they are testable without a kernel and the widgets
stay thin. Everything that came from the user's data or from the API is escaped: a CSV cell or
a moderation reason must never become markup in the notebook.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from akool_flows.notebook.status import (
    OUTCOME_ORDER,
    RunNumbers,
    format_credits,
    label,
    money_text,
)

__all__ = [
    "STYLE",
    "CONCLUSION_COLORS",
    "OUTCOME_COLORS",
    "badge_html",
    "bar_chart_svg",
    "cost_summary_html",
    "e",
    "format_credits",
    "outcome_charts",
    "progress_html",
    "results_table_html",
]

#: Moderation verdicts, as Akool spells them, and how they are shown.
CONCLUSION_COLORS: dict[str, str] = {
    "Compliant": "#1a7f37",
    "Non-Compliant": "#cf222e",
    "Unknown": "#9a6700",
}
#: Batch outcomes (plus "pending" for rows not finished yet) and how they are shown.
OUTCOME_COLORS: dict[str, str] = {
    "completed": "#1a7f37",
    "failed": "#cf222e",
    "rejected": "#6e7781",
    "cancelled": "#6e7781",
    "uncertain": "#9a6700",
    "timed_out": "#9a6700",
    "pending": "#8c959f",
    "submitting": "#0969da",
    "running": "#0969da",
    "submitted": "#0969da",
}
_FALLBACK_COLOR = "#57606a"


def _pill_rules() -> str:
    # One rule per outcome and verdict: grid cells carry a class, not an inline colour.
    rules = [f".akool-pill.akool-outcome-{slug(o)} {{ background: {c}; }}" for o, c in OUTCOME_COLORS.items()]
    rules += [f".akool-pill.akool-conclusion-{slug(o)} {{ background: {c}; }}" for o, c in CONCLUSION_COLORS.items()]
    return "\n".join([".akool-pill { background: #57606a; }", *rules])

# One stylesheet for every app, scoped by the akool- prefix. JupyterLab applies a <style> in an
# HTML widget to the whole page, so nothing here may match elements outside the apps.
STYLE = """<style>
.akool-app { font-size: 13px; }
.akool-app .akool-title { font-size: 15px; font-weight: 600; margin-right: 8px; }
.akool-badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 11px;
  font-weight: 700; letter-spacing: .04em; color: #fff; vertical-align: middle; }
.akool-badge-sandbox { background: #bf8700; }
.akool-badge-live { background: #0969da; }
.akool-pill { display: inline-block; padding: 0 6px; border-radius: 8px; color: #fff; font-size: 11px;
  font-weight: 600; white-space: nowrap; }
.akool-app .akool-estimate .widget-html-content, .akool-app .akool-results .widget-html-content,
.akool-app .akool-summary .widget-html-content { line-height: 1.4; }
.akool-results-table { border-collapse: collapse; width: 100%; }
.akool-results-table th, .akool-results-table td { border-bottom: 1px solid #d0d7de; padding: 3px 6px;
  text-align: left; vertical-align: top; }
.akool-results-table th { position: sticky; top: 0; background: var(--jp-layout-color1, #fff); }
.akool-results-table td.akool-num { text-align: right; font-variant-numeric: tabular-nums; }
.akool-results-table .akool-detail { white-space: pre-wrap; max-width: 38em; }
.akool-results-table .akool-error { color: #cf222e; }
.akool-results-scroll { max-height: 420px; overflow: auto; }
.akool-muted { color: #6e7781; }
.akool-kv td { padding: 1px 10px 1px 0; line-height: 1.4; }
.akool-rejections ul { margin: 2px 0 4px 0; }
.akool-problem { color: #cf222e; }
.akool-app { max-width: 100%; }
.akool-unknown { color: #9a6700; }
.akool-grid-table td { vertical-align: middle; }
.akool-grid-table .akool-detail, .akool-grid-table .akool-error { display: inline-block; max-width: 36em;
  overflow: hidden; text-overflow: ellipsis; white-space: nowrap; vertical-align: middle; }
.akool-grid-table .akool-error { color: #cf222e; }
.akool-thumb { width: 72px; height: 72px; object-fit: cover; border-radius: 4px; vertical-align: middle; }
.akool-player { vertical-align: middle; }
video.akool-player { width: 160px; max-height: 120px; background: #000; }
audio.akool-player { width: 220px; height: 32px; }
.akool-before-after { display: inline-flex; align-items: center; gap: 4px; }
.akool-arrow { color: #6e7781; }
%PILLS%
</style>"""


def e(value: Any) -> str:
    """`value` as text safe inside HTML (and inside a quoted attribute)."""
    return html.escape("" if value is None else str(value), quote=True)


_e = e  # older callers


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False  # lists, dicts: present


def _pill(label: str, color: str, css: str) -> str:
    return f'<span class="akool-pill {css}" style="background:{color}">{_e(label)}</span>'


def slug(value: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in value.lower()).strip("-")


STYLE = STYLE.replace("%PILLS%", _pill_rules())


def badge_html(title: str, *, sandbox: bool, target: str) -> str:
    """The app header: title plus a SANDBOX (or LIVE API) badge naming where requests go."""
    if sandbox:
        badge = (f'<span class="akool-badge akool-badge-sandbox" title="{_e(target)}">SANDBOX</span>'
                 f' <span class="akool-muted">local Akool sandbox at {_e(target)}: no credits are spent</span>')
    else:
        badge = (f'<span class="akool-badge akool-badge-live" title="{_e(target)}">LIVE API</span>'
                 f' <span class="akool-muted">{_e(target)}: runs spend real credits</span>')
    return f'{STYLE}<div class="akool-header-line"><span class="akool-title">{_e(title)}</span>{badge}</div>'


def _cell(column: str, value: Any, *, max_chars: int) -> str:
    if _is_missing(value) or value == "":
        return '<td class="akool-muted">–</td>'
    if column == "conclusion":
        color = CONCLUSION_COLORS.get(str(value), _FALLBACK_COLOR)
        return f'<td class="akool-conclusion">{_pill(str(value), color, "akool-conclusion-" + slug(str(value)))}</td>'
    if column == "outcome":
        color = OUTCOME_COLORS.get(str(value), _FALLBACK_COLOR)
        return f'<td class="akool-outcome">{_pill(label(str(value)), color, "akool-outcome-" + slug(str(value)))}</td>'
    if column == "credits" or column.startswith("est_credits"):
        return f'<td class="akool-num">{_e(format_credits(float(value)))}</td>'
    text = str(value)
    if column in ("result_url", "url", "result_urls") and text.startswith(("http://", "https://")):
        short = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
        return (f'<td><a href="{_e(text)}" target="_blank" rel="noopener noreferrer">{_e(short)}</a></td>')
    css = "akool-detail" if column == "detail" else "akool-error" if column == "error_message" else ""
    shown = text if len(text) <= max_chars else text[: max_chars - 1] + "…"
    title = f' title="{_e(text)}"' if shown != text else ""
    return f'<td class="{css}"{title}>{_e(shown)}</td>'


def results_table_html(results: pd.DataFrame, columns: Sequence[str], *, labels: Mapping[str, str] | None = None,
                       max_rows: int = 200, max_chars: int = 160, empty: str = "No results yet.") -> str:
    """The results as an HTML table: one `<tr class="akool-row ...">` per row, the conclusion and
    outcome as coloured pills, long text cut with the full text in a tooltip.

    Only the first `max_rows` rows are drawn (a notebook cannot show 100,000 rows usefully);
    the caption says how many exist and where the rest are.
    """
    if results is None or len(results) == 0:
        return f'<div class="akool-results-empty akool-muted">{_e(empty)}</div>'
    labels = labels or {}
    shown_cols = [c for c in columns if c in results.columns]
    head = "".join(f"<th>{_e(labels.get(c, c))}</th>" for c in shown_cols)
    body = []
    for _, row in results.head(max_rows).iterrows():
        classes = ["akool-row"]
        for key in ("outcome", "conclusion"):
            if key in results.columns and not _is_missing(row.get(key)):
                classes.append(f"akool-row-{key}-{slug(str(row[key]))}")
        cells = "".join(_cell(c, row.get(c), max_chars=max_chars) for c in shown_cols)
        body.append(f'<tr class="{" ".join(classes)}">{cells}</tr>')
    caption = ""
    if len(results) > max_rows:
        caption = (f'<div class="akool-muted">Showing the first {max_rows:,} of {len(results):,} rows; '
                   f'<code>app.results</code> has all of them.</div>')
    return (f'<div class="akool-results-scroll"><table class="akool-results-table"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>{caption}')


def bar_chart_svg(values: Mapping[str, float], *, title: str, colors: Mapping[str, str] | None = None,
                  value_format: str = "{:,.0f}", width: int = 320, bar_height: int = 18) -> str:
    """A small horizontal bar chart as inline SVG (no plotting library needed in the kernel)."""
    colors = colors or {}
    items = [(str(k), float(v)) for k, v in values.items() if v is not None and not _is_missing(v)]
    label_w, value_w, gap = 110, 70, 4
    bar_w = width - label_w - value_w
    height = 22 + len(items) * (bar_height + gap)
    top = max((v for _, v in items), default=0.0)
    parts = [f'<svg class="akool-chart" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="{_e(title)}">',
             f'<text x="0" y="13" font-size="12" font-weight="600" fill="currentColor">{_e(title)}</text>']
    if not items:
        parts.append('<text x="0" y="34" font-size="11" fill="#6e7781">nothing yet</text>')
    for i, (name, value) in enumerate(items):
        y = 20 + i * (bar_height + gap)
        w = 0 if top <= 0 else max(1.0, bar_w * value / top) if value > 0 else 0
        color = colors.get(name, _FALLBACK_COLOR)
        parts.append(f'<g class="akool-bar" data-label="{_e(name)}" data-value="{value:g}">'
                     f'<text x="{label_w - 6}" y="{y + bar_height - 5}" font-size="11" text-anchor="end" '
                     f'fill="currentColor">{_e(name)}</text>'
                     f'<rect x="{label_w}" y="{y}" width="{w:.1f}" height="{bar_height}" rx="2" fill="{color}"/>'
                     f'<text x="{label_w + w + 4:.1f}" y="{y + bar_height - 5}" font-size="11" '
                     f'fill="currentColor">{_e(value_format.format(value))}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def progress_html(numbers: RunNumbers) -> str:
    """The line beside the progress bar: rows done of all, then the same counts as everywhere."""
    text = e(numbers.progress_line())
    head = f"{numbers.done:,} / {numbers.total:,}"
    return text.replace(head, f"<b>{head}</b>", 1)


def cost_summary_html(numbers: RunNumbers, *, estimate_credits: float | None = None,
                      usd_per_credit: float | None = None, unknown_rows: int = 0) -> str:
    """After a run: rows per outcome, credits new this run and already paid, estimate, wall time."""
    rows = [(label(o), f"{numbers.counts[o]:,}") for o in OUTCOME_ORDER if numbers.counts.get(o)]
    rows.append(("New this run", money_text(numbers.credits_new, 0.0, usd_per_credit)))
    rows.append(("Already paid", f"{format_credits(numbers.credits_earlier)} credits (earlier runs; not charged "
                                 "again)"))
    if unknown_rows and not estimate_credits:
        rows.append(("Estimated", f"unknown ({unknown_rows:,} rows without a price)"))
    elif estimate_credits is not None and not _is_missing(estimate_credits):
        more = f" + {unknown_rows:,} rows without a price" if unknown_rows else ""
        rows.append(("Estimated", f"{format_credits(estimate_credits)} credits{more}"))
    if numbers.elapsed is not None and not _is_missing(numbers.elapsed):
        rows.append(("Wall time", f"{float(numbers.elapsed):,.1f} s"))
    return ('<table class="akool-kv akool-cost-summary">'
            + "".join(f"<tr><td>{e(k)}</td><td><b>{e(v)}</b></td></tr>" for k, v in rows) + "</table>")


def credits_by(results: pd.DataFrame, column: str) -> dict[str, float]:
    """Credits per value of `column` (rows without a figure count 0)."""
    if column not in results or "credits" not in results:
        return {}
    credits = pd.to_numeric(results["credits"], errors="coerce").fillna(0.0)
    return credits.groupby(results[column].fillna("–")).sum().to_dict()


def outcome_charts(results: pd.DataFrame) -> str:
    """Rows and credits per outcome, outcomes named as everywhere else."""
    if "outcome" not in results:
        return bar_chart_svg({}, title="Rows per outcome")
    named = results.assign(_label=results["outcome"].map(label))
    colors = {label(o): c for o, c in OUTCOME_COLORS.items()}
    return (bar_chart_svg(named["_label"].value_counts().to_dict(), title="Rows per outcome", colors=colors)
            + bar_chart_svg(credits_by(named, "_label"), title="Credits per outcome", colors=colors,
                            value_format="{:,.2f}"))
