"""The estimate before anything is spent: unknown prices, new vs already paid, grouped rejections."""

from __future__ import annotations

import pandas as pd

from akool_flows.batch import plan_batch
from akool_flows.notebook.estimate import estimate_html, group_rejections
from akool_flows.notebook.ledger_view import Known


def _moderation(comments: list[str], languages: list[str] | None = None):
    df = pd.DataFrame({"comment": comments, "lang": languages or ["en"] * len(comments)})
    return plan_batch(df, "moderation", columns={"content": "comment", "language": "lang"}, defaults={"type": 4})


def test_rejections_are_grouped_by_reason_with_counts_examples_and_more() -> None:
    langs = ["english", "e1", "en", "xx-yy-zz", *[f"bad{i}" for i in range(20)]]
    plan = _moderation([f"comment {i}" for i in range(len(langs))], langs)
    groups = group_rejections(plan)
    # One reason for every bad language code, however many distinct values.
    assert len(groups) == 1 and groups[0]["count"] == 23
    assert groups[0]["reason"] == "moderation: language: expected ISO-639-1 code, e.g. en"
    assert groups[0]["examples"][:2] == ["'english'", "'e1'"]
    html = estimate_html(plan)
    assert html.count('<li class="akool-problem">') == 1
    assert "23 rows" in html and "+18 more" in html and "+20 more values" in html


def test_more_reasons_than_shown_say_how_many_are_left_out() -> None:
    bodies = [{"content": f"c{i}", "type": 4, "language": "en", "input": "x"} for i in range(3)]
    df = pd.DataFrame({"n": range(12)})
    # Twelve different reasons: a row function failing with a different message per row.
    plan = plan_batch(df, "moderation", columns=lambda row: (_ for _ in ()).throw(ValueError(f"reason {row['n']}")))
    assert len(group_rejections(plan)) == 12 and bodies
    html = estimate_html(plan)
    assert html.count('<li class="akool-problem">') == 8
    assert "+4 more reasons (4 rows)" in html


def test_unknown_price_is_unknown_not_zero() -> None:
    df = pd.DataFrame({"url": [f"https://example.com/{i}.mp4" for i in range(3)]})
    plan = plan_batch(df, "video_translation", columns={"url": "url"},
                      defaults={"source_language": "en", "language": "fr"})
    html = estimate_html(plan)
    assert '<span class="akool-unknown">unknown</span>' in html and "3 rows of a kind" in html
    assert "0 credits" not in html and "$0.00" not in html


def test_known_rows_are_already_paid_not_new_spend() -> None:
    plan = _moderation([f"comment {i}" for i in range(10)])
    known = Known(states={"completed": 4}, paid=0.4, keys=frozenset(plan.keys[:4]))
    html = estimate_html(plan, known)
    assert "already knows 4 of these rows (4 completed)" in html
    # 6 new rows at 0.1 credits; the 4 known ones are shown apart, not added to the new spend.
    assert "<b>0.6 credits (≈ $0.02)</b>" in html
    assert "Already paid" in html and "0.4 credits (earlier runs; not charged again)" in html
