"""`ModerationApp` driven as a user drives it: set values, click Run, watch, Cancel, Export."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from akool_flows.notebook import ModerationApp
from akool_flows.sandbox import Sandbox

from .conftest import wait_until

# What the sandbox's deterministic moderator answers for the sample data (notebooks/data/comments.csv).
EXPECTED = {"c001": "Compliant", "c003": "Non-Compliant", "c005": "Non-Compliant", "c008": "Unknown",
            "c011": "Compliant", "c015": "Non-Compliant", "c023": "Compliant", "c024": "Compliant"}


def make_app(df: pd.DataFrame, sandbox: Sandbox, tmp_path: Path, **kw) -> ModerationApp:
    return ModerationApp(df, content_column="comment", language="en", env=sandbox.env(),
                         ledger=tmp_path / "ledger.sqlite", **kw)


async def test_estimate_then_run_shows_every_row(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    assert "SANDBOX" in app.ui.header.value
    # Before anything is spent: 24 rows, the empty one rejected, the duplicate sent once, 22 x 0.1 credits.
    assert (app.plan.valid_count, app.plan.rejected_count, app.plan.duplicate_count) == (22, 1, 1)
    est = app.ui.estimate.value
    assert "2.2 credits" in est and "required field is missing" in est and "Identical to an earlier row" in est
    assert sandbox.create_count() == 0

    app.run_button.click()
    assert app.running and app.run_button.disabled and not app.cancel_button.disabled
    await app.wait(timeout=20)

    res = app.results.set_index("comment_id")
    assert len(res) == 24
    for cid, conclusion in EXPECTED.items():
        assert res.loc[cid, "conclusion"] == conclusion, cid
    assert res.loc["c005", "detail"].startswith("- violence: A threat of physical harm")
    assert res.loc["c007", "outcome"] == "rejected"
    # The duplicate of c001 carries its verdict instead of being rejected.
    assert res.loc["c013", "outcome"] == "completed" and res.loc["c013", "duplicate_of"] == 0
    # A job that fails is a row with Akool's message, not an exception.
    assert res.loc["c021", "outcome"] == "failed" and res.loc["c021", "error_message"]
    assert app.status == "finished" and app.status_text.startswith("Finished: 22 completed, 1 failed, 1 rejected")
    assert sandbox.create_count("moderation") == 22

    grid = app.ui.grid.cells
    assert len(grid) == 24
    # The user's own columns first (their id too), then the verdict; one line per row.
    assert list(grid.columns[:5]) == ["#", "comment_id", "comment", "channel", "conclusion"]
    assert grid["conclusion"].str.contains("akool-conclusion-non-compliant").sum() == 3
    assert grid["outcome"].str.contains("akool-outcome-rejected").sum() == 1
    assert not grid["reasons"].str.contains("Result:").any() and not grid["reasons"].str.contains("\n").any()
    assert "2.1 credits" in app.ui.summary.value
    assert '<svg class="akool-chart"' in app.ui.charts.value and 'data-label="Non-Compliant" data-value="3"' \
        in app.ui.charts.value
    assert app.ui.progress.value == app.ui.progress.max == 24
    assert app.cost_log.iloc[-1]["row_key"] == "TOTAL"
    assert app.cost_log.iloc[-1]["credits"] == pytest.approx(2.1)


async def test_filter_shows_only_the_chosen_verdicts(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.run_button.click()
    await app.wait(timeout=20)
    app.ui.filter.value = "Non-Compliant"
    cells = app.ui.grid.cells
    assert len(cells) == 3 and not cells["conclusion"].str.contains("akool-conclusion-compliant").any()
    app.ui.filter.value = "problems"
    assert len(app.ui.grid.cells) == 2 and len(app.shown) == 2  # 1 rejected + 1 failed
    app.ui.search.value = "fail"
    assert app.shown["comment_id"].tolist() == ["c021"] and len(app.ui.grid.cells) == 1


async def test_form_changes_update_the_estimate(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.language.value = "english"  # not ISO-639-1: every row rejected, with the reason
    assert app.plan.valid_count == 0
    assert "language" in app.ui.estimate.value and "pattern" in app.ui.estimate.value.lower() \
        or "ISO" in app.ui.estimate.value
    app.language.value = ""
    assert app.plan.valid_count == 22
    app.content_type.value = 1  # image: text is not a URL -> rejected
    assert app.plan.valid_count == 0 and "http(s) URL" in app.ui.estimate.value
    app.content_type.value = 4
    app.limit.value = 5
    assert "<b>5</b>" in app.ui.estimate.value


async def test_kernel_stays_responsive_during_a_run(comments, sandbox, tmp_path) -> None:
    sandbox.configure(latency=0.02)
    app = make_app(pd.concat([comments] * 4, ignore_index=True).assign(
        comment=lambda d: d["comment"] + " #" + d.index.astype(str)), sandbox, tmp_path, concurrency=4)
    app.run_button.click()
    gaps = []
    while app.running:
        t0 = time.monotonic()
        await asyncio.sleep(0.005)
        gaps.append(time.monotonic() - t0)
    assert len(gaps) > 20  # the run took a while, and the loop kept turning
    assert max(gaps) < 0.25, f"the loop was blocked for {max(gaps):.3f}s"
    # 96 rows: the empty comment stays empty (rejected) and sandbox-fail fails, four times each.
    assert app.results["outcome"].value_counts().to_dict() == {"completed": 88, "rejected": 4, "failed": 4}


async def test_live_table_shows_rows_as_they_finish(comments, sandbox, tmp_path) -> None:
    sandbox.configure(latency=0.05, job_seconds=0.6)
    app = make_app(comments, sandbox, tmp_path, concurrency=1)
    app.run_button.click()
    await wait_until(lambda: "akool-outcome-completed" in app.ui.grid.text(), timeout=30,
                     what="a completed row in the table")
    # Mid-run: finished rows next to rows still pending or running, and the progress line counts them.
    assert app.running
    live = app.results
    assert live["outcome"].eq("completed").any()
    assert live["outcome"].isin(["pending", "running", "submitting"]).any()
    assert "rows done" in app.ui.progress_text.value and "jobs created" in app.ui.progress_text.value
    await app.wait(timeout=20)
    assert app.results["outcome"].eq("completed").sum() == 22


async def test_cancel_mid_run_then_resume_without_paying_twice(comments, sandbox, tmp_path) -> None:
    sandbox.configure(latency=0.05)
    app = make_app(comments, sandbox, tmp_path, concurrency=1)
    app.run_button.click()
    await wait_until(lambda: app.progress is not None and app.progress.submitted >= 3, what="3 submissions")
    app.cancel_button.click()
    assert app.status == "cancelling" and "Cancelling" in app.status_text
    await app.wait(timeout=20)
    assert app.status == "cancelled" and app.status_text.startswith("Cancelled")
    first = app.results
    created = sandbox.create_count("moderation")
    assert 3 <= created < 22
    assert first["outcome"].eq("cancelled").sum() >= 22 - created - 1
    assert not app.run_button.disabled and app.cancel_button.disabled

    # A new app over the same data and ledger (as after a kernel restart) resumes the batch.
    again = make_app(comments, sandbox, tmp_path)
    assert "already knows" in again.ui.estimate.value
    again.run_button.click()
    await again.wait(timeout=20)
    assert again.results["outcome"].value_counts().to_dict() == {"completed": 22, "rejected": 1, "failed": 1}
    assert sandbox.create_count("moderation") == 22
    assert sandbox.duplicate_creates() == {}


async def test_try_a_few_rows_then_run_the_rest(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.limit.value = 5
    app.run_button.click()
    await app.wait(timeout=20)
    assert len(app.results) == 5 and sandbox.create_count("moderation") == 5
    app.limit.value = 0
    app.run_button.click()
    await app.wait(timeout=20)
    assert len(app.results) == 24
    assert sandbox.create_count("moderation") == 22  # the first five were reused from the ledger


async def test_export_csv_and_parquet_from_the_buttons(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.export_path.value = str(tmp_path / "out" / "verdicts.csv")
    app.export_button.click()
    assert "Export failed" in app.ui.export_status.value and "run the batch first" in app.ui.export_status.value

    app.run_button.click()
    await app.wait(timeout=20)
    app.export_button.click()
    # Only into folders that exist: a typo in the path must not grow new folders.
    assert "folder" in app.ui.export_status.value and "does not exist" in app.ui.export_status.value
    (tmp_path / "out").mkdir()
    app.export_button.click()
    csv_path = tmp_path / "out" / "verdicts.csv"
    assert "Wrote 24 rows" in app.ui.export_status.value
    exported = pd.read_csv(csv_path)
    assert len(exported) == 24 and {"comment", "conclusion", "detail", "outcome", "credits"} <= set(exported.columns)
    # Spreadsheet safety: a comment starting with "=" is not a formula in the export.
    assert exported.loc[exported["comment_id"] == "c009", "comment"].item().startswith("'=")
    costs = pd.read_csv(tmp_path / "out" / "verdicts.costs.csv")
    assert costs.iloc[-1]["row_key"] == "TOTAL"

    app.export_format.value = "parquet"
    assert app.export_path.value.endswith("verdicts.parquet")
    app.export_button.click()
    back = pd.read_parquet(tmp_path / "out" / "verdicts.parquet")
    assert len(back) == 24 and back["conclusion"].eq("Non-Compliant").sum() == 3


async def test_run_level_failure_is_shown_not_raised(comments, sandbox, tmp_path) -> None:
    env = {**sandbox.env(), "AKOOL_API_TOKEN": "wrong-token"}
    app = ModerationApp(comments, content_column="comment", env=env, ledger=tmp_path / "l.sqlite")
    app.run_button.click()
    await app.wait(timeout=20)
    text = app.status_text
    assert app.status in ("failed", "finished") and text
    # Either the engine stopped on authentication or every row reports it: nothing raised, rows named.
    if app.status == "failed":
        assert "Authentication" in text or "token" in text.lower()
    else:
        assert not app.results.empty and not app.results["outcome"].eq("completed").any()
    assert "wrong-token" not in text and "wrong-token" not in app.ui.grid.text()


def test_blocking_run_in_a_script(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    results = app.run(timeout=30)
    assert app.run_handle is not None and app.run_handle.mode == "thread"
    assert results["outcome"].eq("completed").sum() == 22


def test_bad_arguments_name_the_field(comments, sandbox) -> None:
    with pytest.raises(ValueError, match="content_column 'nope' is not a column of df; columns: comment_id"):
        ModerationApp(comments, content_column="nope", env=sandbox.env())
    with pytest.raises(ValueError, match="content_type must be one of text, image, video, audio"):
        ModerationApp(comments, content_type="pdf", env=sandbox.env())
    with pytest.raises(TypeError, match="df must be a pandas DataFrame"):
        ModerationApp([{"comment": "x"}], env=sandbox.env())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="concurrency must be an integer >= 1"):
        ModerationApp(comments, env=sandbox.env(), concurrency=0)


def test_live_api_badge_and_no_secret_anywhere(comments) -> None:
    env = {"AKOOL_BASE_URL": "https://openapi.akool.com", "AKOOL_API_TOKEN": "tok-SECRET-123"}
    app = ModerationApp(comments, content_column="comment", env=env)
    header = app.ui.header.value
    assert "LIVE API" in header and "SANDBOX" not in header and "real credits" in header
    visible = " ".join(str(getattr(wi, "value", "")) for wi in _walk(app.widget)) + repr(app) + repr(app.connection)
    assert "tok-SECRET-123" not in visible
    assert re.search(r"status='idle'", repr(app))


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)


async def test_budget_stops_the_run_and_says_so(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path, budget_credits=0.5)
    app.run_button.click()
    await app.wait(timeout=20)
    res = app.results
    sent = res[res["duplicate_of"].isna() & res["outcome"].isin(["completed", "failed"])]
    assert len(sent) == 5 and sandbox.create_count("moderation") == 5
    assert app.status_text.startswith("Stopped by the budget")
    assert app.result.summary["credits"] <= 0.5


def test_media_priced_per_minute_from_a_seconds_column(sandbox, tmp_path) -> None:
    df = pd.DataFrame({"url": ["https://example.com/a.mp4", "https://example.com/b.mp4"], "seconds": [30, 125]})
    app = ModerationApp(df, content_type="video", duration_column="seconds", env=sandbox.env(),
                        ledger=tmp_path / "l.sqlite")
    assert app.duration_column.layout.display is None  # shown for video
    assert app.plan.estimate.total_credits == pytest.approx(1.0 + 3.0)  # 1 C per started minute
    app.duration_column.value = "(none)"
    # No price known: "unknown" with the count of rows, never a bold 0.
    est = app.ui.estimate.value
    assert app.plan.estimate.unknown_rows == 2
    assert '<span class="akool-unknown">unknown</span>' in est and "2 rows of a kind" in est and "0 credits" not in est
    app.content_type.value = 4
    assert app.duration_column.layout.display == "none"


def test_cancel_a_thread_run_from_another_thread(comments, sandbox, tmp_path) -> None:
    sandbox.configure(latency=0.05)
    app = make_app(comments, sandbox, tmp_path, concurrency=1, background="thread")
    app.start()
    deadline = time.monotonic() + 10
    while (app.progress is None or app.progress.submitted < 2) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert app.cancel() == "cancelling"
    assert app.run_handle.join(timeout=10)
    assert app.status == "cancelled" and app.results["outcome"].eq("cancelled").any()
    assert sandbox.create_count("moderation") < 22


async def test_run_history_goes_to_the_log_widget(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.run_button.click()
    await app.wait(timeout=20)
    lines = "".join(o["text"] for o in app.ui.log.outputs if o["output_type"] == "stream")
    assert "Run: 22 of 24 rows, batch moderation-" in lines and "Finished: 22 completed" in lines
