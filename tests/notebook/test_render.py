"""The HTML the apps show: escaped, highlighted, readable."""

from __future__ import annotations

import math

import pandas as pd

from akool_flows.notebook import render


def test_results_table_escapes_user_text_and_highlights_conclusions() -> None:
    df = pd.DataFrame({
        "input_index": [0, 1, 2],
        "content": ["<script>alert(1)</script>", "fine", "x" * 500],
        "conclusion": ["Non-Compliant", "Compliant", None],
        "detail": ["- violence: \"kill\"\nResult: Non-Compliant", None, None],
        "outcome": ["completed", "completed", "failed"],
        "credits": [0.1, 0.1, math.nan],
        "error_message": [None, None, "Sentiment analysis fails"],
    })
    html = render.results_table_html(df, ["input_index", "content", "conclusion", "detail", "outcome", "credits",
                                          "error_message"])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.count('class="akool-row') == 3
    assert "akool-conclusion-non-compliant" in html and "akool-conclusion-compliant" in html
    assert "akool-outcome-failed" in html
    # Long text is cut, with the whole text in the tooltip.
    assert "x" * 500 in html and "…" in html
    assert "Sentiment analysis fails" in html


def test_results_table_caps_rows_and_says_where_the_rest_is() -> None:
    df = pd.DataFrame({"outcome": ["completed"] * 30})
    html = render.results_table_html(df, ["outcome"], max_rows=10)
    assert html.count("<tr class=") == 10
    assert "first 10 of 30" in html and "app.results" in html


def test_empty_table_message() -> None:
    assert "No results yet" in render.results_table_html(pd.DataFrame(), ["outcome"])


def test_bar_chart_scales_bars_to_the_largest_value() -> None:
    svg = render.bar_chart_svg({"Compliant": 8, "Non-Compliant": 2, "<b>": 0}, title="Conclusions",
                               colors=render.CONCLUSION_COLORS)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert 'data-label="Compliant" data-value="8"' in svg
    assert "&lt;b&gt;" in svg and "<b>" not in svg
    widths = [float(part.split('"')[0]) for part in svg.split('<rect x="110" y="')[1:]
              for part in [part.split('width="')[1]]]
    assert widths[0] > widths[1] * 3.9 and widths[2] == 0


def test_badge_says_sandbox_or_live() -> None:
    assert "SANDBOX" in render.badge_html("T", sandbox=True, target="http://127.0.0.1:1")
    live = render.badge_html("T", sandbox=False, target="https://openapi.akool.com")
    assert "LIVE API" in live and "SANDBOX" not in live


def test_format_credits() -> None:
    assert render.format_credits(2.1000) == "2.1"
    assert render.format_credits(0.0) == "0"
    assert render.format_credits(1234.5) == "1,234.5"
    assert render.format_credits(None) == "unknown"
    assert render.format_credits(math.nan) == "unknown"
    assert render.format_credits(-0.0) == "0"
