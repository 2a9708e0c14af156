"""`CatalogTranslationApp` (rows x languages) and `BatchApp` (any kind, form from the model)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from akool_flows.api import KINDS
from akool_flows.notebook import BatchApp, CatalogTranslationApp
from akool_flows.notebook.fields import CONSTANT


def test_languages_come_from_akool(catalog, sandbox, tmp_path) -> None:
    app = CatalogTranslationApp(catalog, env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    codes = [code for _, code in app.targets.options]
    assert "fr" in codes and "zh" in codes and len(codes) == len(app.languages) > 3
    assert app.url_column.value == "video_url"
    # No target chosen yet: the form says so and Run is off.
    assert app.plan is None and app.run_button.disabled
    assert "at least one target language" in app.ui.estimate.value
    assert app.start() is None


async def test_rows_times_languages_run_and_export(catalog, sandbox, tmp_path) -> None:
    app = CatalogTranslationApp(catalog, env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    app.targets.value = ("fr", "de")
    app.lipsync.value = True
    assert (app.plan.valid_count, app.plan.rejected_count) == (10, 2)  # "not-a-url" x 2 languages
    assert "url: must be an http(s) URL" in app.ui.estimate.value
    assert {label for label in app.ui.filter.options} >= {"language fr", "language de"}

    app.run_button.click()
    await app.wait(timeout=30)
    res = app.results
    assert len(res) == 12 and set(res["language"]) == {"fr", "de"}
    assert res["outcome"].value_counts().to_dict() == {"completed": 8, "rejected": 2, "failed": 2}
    done = res[res["outcome"] == "completed"]
    assert done["result_url"].str.startswith(sandbox.base_url).all()
    assert set(done["catalog_row"]) == {0, 1, 2, 3}
    jobs = sandbox.jobs("video_translation")
    assert len(jobs) == 10 and sandbox.duplicate_creates() == {}
    assert "Completed per language" in app.ui.charts.value
    app.ui.filter.value = "language fr"
    assert len(app.ui.grid.cells) == 6
    # Numbered by catalog row (0-5 for 6 videos), not by language job (0-11).
    assert sorted(set(app.ui.grid.cells["#"])) == [0, 1, 2, 3, 4, 5]

    # Export writes what the filter shows, or every row when asked.
    assert set(pd.read_csv(app.export(tmp_path / "fr.csv"))["language"]) == {"fr"}
    path = app.export(tmp_path / "translations.parquet", rows="all")
    back = pd.read_parquet(path)
    assert len(back) == 12 and back.loc[back["outcome"] == "completed", "lipsync"].all()


def test_unknown_language_is_refused_by_name(catalog, sandbox) -> None:
    with pytest.raises(ValueError, match=r"language\(s\) 'xx' not in Akool's language list; allowed: en"):
        CatalogTranslationApp(catalog, targets=["xx"], env=sandbox.env())


def test_language_list_failure_falls_back_and_says_so(catalog, tmp_path) -> None:
    # Nothing listens on this port: the list cannot load; common codes are offered instead.
    env = {"AKOOL_BASE_URL": "http://127.0.0.1:9", "AKOOL_API_TOKEN": "t"}
    app = CatalogTranslationApp(catalog, env=env, ledger=tmp_path / "l.sqlite")
    assert "could not load Akool" in app._languages_html.value and "ConnectError" in app._languages_html.value
    assert "fr" in [code for _, code in app.targets.options]


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_gets_a_working_form(kind, sandbox, tmp_path) -> None:
    example = dict(KINDS[kind].example)
    # The example's scalar fields as DataFrame columns, nested ones as JSON constants.
    columns = {k: v for k, v in example.items() if not isinstance(v, (list, dict))}
    nested = {k: v for k, v in example.items() if isinstance(v, (list, dict))}
    df = pd.DataFrame([columns])
    app = BatchApp(df, kind, constants=nested, env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    assert list(app.fields) == [s for s in app.fields]  # one row per model field
    assert set(app.fields) == set(KINDS[kind].field_names)
    for name in columns:
        assert app.fields[name].source.value == ("column", name)
    for name in nested:
        assert app.fields[name].source.value == CONSTANT and json.loads(app.fields[name].value.value) == nested[name]
    assert app.plan is not None and app.plan.valid_count == 1, app.ui.estimate.value


async def test_generic_tts_batch_from_constants_and_columns(sandbox, tmp_path) -> None:
    df = pd.DataFrame({"line": ["Welcome to the store.", "Thanks for visiting!", "sandbox-fail on purpose"]})
    app = BatchApp(df, "tts", columns={"input_text": "line"}, env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    assert app.title == "Text to speech" and "akool-batch-app" in app.widget._dom_classes
    # voice_id is required and not set: every row rejected, the reason shown.
    assert app.plan is None and "voice_id" in app.ui.estimate.value and app.run_button.disabled
    app.fields["voice_id"].set_constant("LcfcDJNUP1GQjkzn1xUU")
    app.fields["rate"].set_constant("90%")
    assert app.plan.valid_count == 3
    app.run_button.click()
    await app.wait(timeout=30)
    res = app.results
    assert res["outcome"].tolist() == ["completed", "completed", "failed"]
    assert res.loc[0, "result_url"].endswith(".mp3")
    assert "line" in app.ui.grid.cells.columns
    assert app.plan.bodies[0] == {"input_text": "Welcome to the store.", "voice_id": "LcfcDJNUP1GQjkzn1xUU",
                                  "rate": "90%"}
    assert len(sandbox.jobs("tts")) == 3


def test_generic_form_rejects_unknown_fields(sandbox) -> None:
    df = pd.DataFrame({"a": [1]})
    with pytest.raises(ValueError, match="constants: 'voice' not tts field"):
        BatchApp(df, "tts", constants={"voice": "x"}, env=sandbox.env())
    with pytest.raises(ValueError, match="columns: column 'b' .* is not in df"):
        BatchApp(df, "tts", columns={"input_text": "b"}, env=sandbox.env())
    with pytest.raises(Exception, match="unknown job kind 'nope'"):
        BatchApp(df, "nope", env=sandbox.env())


def test_cost_table_prices_kinds_without_a_published_price(catalog, sandbox, tmp_path) -> None:
    app = CatalogTranslationApp(catalog, targets=["fr"], env=sandbox.env(), ledger=tmp_path / "l.sqlite")
    assert app.plan.estimate.unknown_rows == 5 and ">unknown</span>" in app.ui.estimate.value
    assert "5 rows of a kind the docs publish no price for" in app.ui.estimate.value
    priced = CatalogTranslationApp(catalog, targets=["fr"], env=sandbox.env(), ledger=tmp_path / "l.sqlite",
                                   cost_table={"video_translation": 12.0})
    assert priced.plan.estimate.total_credits == 60.0 and priced.plan.estimate.unknown_rows == 0
