"""Issue 13: numbers a content team can trust - unknown prices, new vs already paid, cancel,
the ledger note, field errors, a read-only form, cells that wait for the run."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.notebook import CatalogTranslationApp, ModerationApp

from .conftest import wait_until


def make_app(df, sandbox, tmp_path, **kw) -> ModerationApp:
    return ModerationApp(df, content_column="comment", language="en", env=sandbox.env(),
                         ledger=tmp_path / "ledger.sqlite", **kw)


async def test_rerun_splits_new_spend_from_already_paid(comments, sandbox, tmp_path) -> None:
    first = make_app(comments, sandbox, tmp_path)
    first.limit.value = 5
    first.run_button.click()
    await first.wait(timeout=20)
    assert first.result.summary["credits_new"] == pytest.approx(0.5)

    again = make_app(comments, sandbox, tmp_path)
    est = again.ui.estimate.value
    # The five rows paid before are "already paid", not part of the new spend (17 x 0.1).
    assert "<b>1.7 credits (≈ $0.07)</b>" in est and "<b>0.5 credits (earlier runs; not charged again)</b>" in est
    again.run_button.click()
    await again.wait(timeout=20)
    assert sandbox.create_count("moderation") == 22
    text = again.status_text
    assert "1.6 credits new" in text and "0.5 already paid" in text  # 16 sent (1 fails, not charged)
    assert "New this run" in again.ui.summary.value and "0.5 credits (earlier runs" in again.ui.summary.value
    assert "0.5 already paid" in again.ui.progress_text.value
    paid_in = again.cost_log.set_index("row_key")["paid_in"]
    # The copy of a row paid before (c013 = c001) is paid before too.
    assert (paid_in == "earlier run").sum() == 6 and (paid_in == "this run").sum() == 17


async def test_cancel_tells_one_story_everywhere(comments, sandbox, tmp_path) -> None:
    sandbox.configure(latency=0.05, job_seconds=3)  # jobs keep running after the cancel
    app = make_app(comments, sandbox, tmp_path, concurrency=1)
    app.run_button.click()
    await wait_until(lambda: app.progress is not None and app.progress.submitted >= 3, what="3 submissions")
    app.cancel_button.click()
    await app.wait(timeout=20)
    res = app.results
    running = int(res["outcome"].eq("submitted").sum())
    not_sent = int(res["outcome"].eq("cancelled").sum())
    assert running >= 3 and not_sent >= 1 and not res["outcome"].eq("timed_out").any()
    # The same words and the same counts in the status line, the progress line, the summary, the grid.
    for where in (app.status_text, app.ui.progress_text.value, app.ui.summary.value):
        assert f"{running} running (not waited for)" in where or f"{running}</b>" in where, where
    assert f"{not_sent:,} cancelled (not sent)" in app.status_text
    assert app.status_text.startswith("Cancelled:") and "Run again to collect the rest" in app.status_text
    assert app.ui.grid.cells["outcome"].str.contains("running (not waited for)", regex=False).sum() == running
    assert app.ui.progress.value == app.ui.progress.max - running - not_sent
    # Resumable: the note counts them, and Run collects them without sending them again.
    jobs = int((res["outcome"].eq("submitted") & res["duplicate_of"].isna()).sum())  # a copy shares its job
    assert "already knows" in app.ui.estimate.value and f"({jobs} submitted)" in app.ui.estimate.value
    created = sandbox.create_count("moderation")
    sandbox.configure(job_seconds=0.2)
    app.run_button.click()
    await app.wait(timeout=30)
    assert app.results["outcome"].value_counts().to_dict() == {"completed": 22, "rejected": 1, "failed": 1}
    assert sandbox.create_count("moderation") == 22 and created < 22 and sandbox.duplicate_creates() == {}


@pytest.mark.parametrize("mode", ["loop", "thread"])
async def test_ledger_note_after_cancelling_a_large_run(sandbox, tmp_path, mode) -> None:
    sandbox.configure(latency=0.002)
    df = pd.DataFrame({"comment": [f"comment number {i}" for i in range(3000)]})
    app = make_app(df, sandbox, tmp_path, concurrency=16, background=mode)
    app.run_button.click()
    await wait_until(lambda: app.progress is not None and app.progress.submitted >= 200, timeout=60, what="200")
    app.cancel_button.click()
    await app.wait(timeout=60)
    known = sum(app.known.states.values())
    assert known == int(app.results["job_id"].notna().sum()) >= 200
    assert f"already knows {known:,} of these rows" in app.ui.estimate.value


def test_field_errors_show_at_the_field_and_run_is_off(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.language.value = "english"
    assert "expected ISO-639-1 code" in app._errors["language"].value and "english" in app._errors["language"].value
    assert app.plan.valid_count == 0 and app.run_button.disabled
    app.language.value = "fr"
    assert app._errors["language"].value == "" and not app.run_button.disabled


def test_generic_form_shows_a_bad_constant_at_its_field(sandbox, tmp_path) -> None:
    from akool_flows.notebook import BatchApp

    df = pd.DataFrame({"content": ["hello"]})
    app = BatchApp(df, "moderation", constants={"type": 4, "language": "english"}, env=sandbox.env(),
                   ledger=tmp_path / "l.sqlite")
    assert "ISO-639-1" in app.fields["language"].error.value and app.fields["type"].error.value == ""
    assert app.run_button.disabled


async def test_the_form_is_read_only_during_a_run(comments, sandbox, tmp_path) -> None:
    sandbox.configure(latency=0.05)
    app = make_app(comments, sandbox, tmp_path, concurrency=1)
    app.run_button.click()
    assert app.language.disabled and app.content_column.disabled and app.rules.disabled and app.limit.disabled
    await app.wait(timeout=30)
    assert not app.language.disabled and not app.limit.disabled


def test_multi_select_says_how_to_pick_several(catalog, sandbox, tmp_path) -> None:
    app = CatalogTranslationApp(catalog, env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    text = " ".join(getattr(wi, "value", "") for wi in _walk(app.widget) if isinstance(getattr(wi, "value", ""), str))
    assert "Ctrl-click" in text and "Shift-click" in text


async def test_cells_below_wait_for_the_run_then_fill_in(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    out = app.when_done(lambda a: a.results[["comment_id", "conclusion"]])
    assert "Waiting for the batch" in str(out.outputs)
    app.run_button.click()
    await app.wait(timeout=20)
    assert "Non-Compliant" in str(out.outputs) and "c005" in str(out.outputs)
    # After the run, the same call shows the results at once.
    assert len(app.when_done()) == 24


async def test_raise_on_problems(comments, sandbox, tmp_path) -> None:
    app = make_app(comments, sandbox, tmp_path)
    app.run_button.click()
    await app.wait(timeout=20)
    assert app.problems == {"failed": 1}
    with pytest.raises(RuntimeError, match="1 failed"):
        app.raise_on_problems()


async def test_price_probe_learns_an_unpublished_price(catalog, sandbox, tmp_path) -> None:
    app = CatalogTranslationApp(catalog, targets=["fr"], env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    assert app.ui.probe_box.layout.display is None  # offered: every row is of unknown price
    app.probe_price(2)
    await app.wait(timeout=30)
    charged = sandbox.stats()["credits_charged"]
    assert app.probed_price == pytest.approx(charged / 2)
    assert app.limit.value == 0 and app.cost_table["video_translation"] == app.probed_price
    est = app.ui.estimate.value
    assert "price probe" in est and ">unknown<" not in est and "already knows 2" in est


def _walk(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _walk(child)
