"""Multi-language video translation: one create for several languages, one job (and one result
row, one ledger row) per language, none left untracked."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.batch import Ledger, plan_batch, run_batch, translate_catalog
from akool_flows.cli import main

from .conftest import make_client

VIDEOS = pd.DataFrame({"sku": ["A1", "B2", "C3"],
                       "video": [f"https://example.com/catalog/{s}.mp4" for s in ("a", "b", "c")]})
LANGS = ["fr", "de", "ja", "es"]


def _catalog(**kw) -> pd.DataFrame:
    return translate_catalog(VIDEOS, "video", "en", LANGS, **kw)


def test_plan_splits_a_multi_language_row_into_one_row_per_language():
    plan = plan_batch(_catalog(one_create_per_video=True), "video_translation")
    assert len(plan) == 12 and plan.valid_count == 12
    assert plan.group_value == LANGS * 3
    assert plan.group_of == [0] * 4 + [4] * 4 + [8] * 4
    # The same key as a one-language row of the same video: either way, never paid twice.
    single = plan_batch(_catalog(), "video_translation")
    assert sorted(plan.keys) == sorted(single.keys)


def test_one_create_per_video_tracks_every_language_job(sandbox, ledger_path):
    sandbox.configure(job_seconds=0.2)
    c = make_client(sandbox, sync=True)
    r = run_batch(_catalog(one_create_per_video=True), "video_translation", client=c, ledger=ledger_path,
                  poll_interval=0.1)
    res = r.results
    assert len(res) == 12 and res["outcome"].eq("completed").all()
    assert res["language"].tolist() == LANGS * 3
    assert res["sku"].tolist() == [s for s in VIDEOS["sku"] for _ in LANGS]  # numbered by catalog row
    created = {j["_id"] for j in sandbox.jobs("video_translation")}
    assert created == set(res["job_id"])  # no job left untracked
    assert len(created) == 12
    assert sandbox.stats()["requests_by_path"].get("/api/open/v3/content/video/createbytranslate") == 3
    with Ledger(ledger_path) as led:
        rows = led.rows(r.summary["batch_id"])
        assert {row.job_id for row in rows.values()} == created
    again = run_batch(_catalog(one_create_per_video=True), "video_translation", client=c, ledger=ledger_path,
                      poll_interval=0.1)
    assert again.results["outcome"].eq("completed").all() and len(sandbox.jobs("video_translation")) == 12


def test_a_grouped_create_sends_only_the_languages_not_yet_paid(sandbox, ledger_path):
    sandbox.configure(job_seconds=0.1)
    c = make_client(sandbox, sync=True)
    run_batch(translate_catalog(VIDEOS.head(1), "video", "en", ["fr"]), "video_translation", client=c,
              ledger=ledger_path, poll_interval=0.1)
    r = run_batch(translate_catalog(VIDEOS.head(1), "video", "en", ["fr", "de"], one_create_per_video=True),
                  "video_translation", client=c, ledger=ledger_path, poll_interval=0.1)
    assert r.results["outcome"].eq("completed").all() and len(r.results) == 2
    assert len(sandbox.jobs("video_translation")) == 2  # fr reused, only de created
    assert sandbox.duplicate_creates() == {}


@pytest.mark.slow
def test_cli_translate_one_create_per_video(sandbox_env, tmp_path, capsys):
    src = tmp_path / "catalog.csv"
    VIDEOS.to_csv(src, index=False)
    out = tmp_path / "out.csv"
    code = main(["translate", str(src), "--url-column", "video", "--source", "en", "--to", ",".join(LANGS),
                 "--one-create-per-video", "--out", str(out), "--poll-interval", "0.1", "--quiet",
                 "--ledger", str(tmp_path / "l.sqlite")])
    assert code == 0, capsys.readouterr()
    res = pd.read_csv(out)
    assert len(res) == 12 and set(res["language"]) == set(LANGS)
    assert set(res["job_id"]) == {j["_id"] for j in sandbox_env.jobs("video_translation")}
