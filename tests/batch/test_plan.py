"""Planning: mapping, coercion, validation messages, duplicates, keys and the cost estimate."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from akool_flows.batch import BatchInputError, plan_batch, row_key_for
from akool_flows.batch.ledger import Ledger

FACE = {"path": "https://example.com/face.png", "opts": "262,175:363,175:313,215:272,279"}


def test_columns_named_as_fields_are_used_and_others_carried():
    df = pd.DataFrame({"content": ["hi", "there"], "type": ["4", "4"], "user": ["a", "b"]})
    plan = plan_batch(df, "moderation")
    assert plan.valid_count == 2 and plan.rejected_count == 0
    assert plan.rows["fields"].iloc[0] == {"content": "hi", "type": 4}  # "4" from a CSV -> 4
    assert list(plan.rows.columns) == ["row_key", "input_index", "fields", "valid", "duplicate_of", "error",
                                       "est_credits", "cost_source"]


def test_mapping_defaults_and_row_function():
    df = pd.DataFrame({"text": ["hello", "bye"], "lang": ["en", None]})
    plan = plan_batch(df, "moderation", columns={"content": "text", "language": "lang"},
                      defaults={"type": 4, "language": "fr"})
    # A row's own value wins; an empty cell falls back to the default.
    assert [f["language"] for f in plan.rows["fields"]] == ["en", "fr"]
    fn = plan_batch(df, "moderation", columns=lambda row: {"content": row["text"].upper(), "type": 4})
    assert fn.rows["fields"].iloc[1] == {"content": "BYE", "type": 4}


def test_rejected_rows_say_which_field_and_what_is_allowed():
    df = pd.DataFrame({"content": ["ok", "", "not a url", "fine"], "type": ["4", "4", "1", "7"]})
    plan = plan_batch(df, "moderation")
    assert plan.valid == [True, False, False, False]
    assert "content: required field is missing" in plan.errors[1]
    assert "content must be an http(s) URL when type=1" in plan.errors[2]
    assert "type: got 7, allowed: 1, 2, 3 or 4" in plan.errors[3]
    summary = plan.summary()
    json.dumps(summary)
    assert summary["rejected"] == 3 and summary["rejections"][0]["first_rows"]


def test_json_cells_for_list_fields():
    df = pd.DataFrame({"sourceImage": [json.dumps([FACE])], "targetImage": [json.dumps([FACE])],
                       "modifyImage": ["https://example.com/m.jpg"], "face_enhance": ["1"]})
    plan = plan_batch(df, "faceswap_image")
    assert plan.valid == [True], plan.errors
    assert plan.bodies[0]["sourceImage"] == [FACE] and plan.bodies[0]["face_enhance"] == 1


def test_whole_input_problems_raise_with_the_column_names():
    df = pd.DataFrame({"text": ["a"]})
    with pytest.raises(BatchInputError, match=r"needs field\(s\) content, type .*columns: text"):
        plan_batch(df, "moderation")
    with pytest.raises(BatchInputError, match=r"column 'nope' \(for field 'content'\) is not in the input"):
        plan_batch(df, "moderation", columns={"content": "nope"}, defaults={"type": 4})
    with pytest.raises(BatchInputError, match="'contnet' is not a moderation field"):
        plan_batch(df, "moderation", columns={"contnet": "text"}, strict_fields=True)
    with pytest.raises(BatchInputError, match="defaults: 'typo' not moderation field"):
        plan_batch(df, "moderation", columns={"content": "text"}, defaults={"type": 4, "typo": 1}, strict_fields=True)
    # Not strict: a field the docs do not list is sent, so a typo shows as the field it misses.
    with pytest.raises(BatchInputError, match=r"needs field\(s\) content.*'contnet' are not fields the docs list"):
        plan_batch(df, "moderation", columns={"contnet": "text"}, defaults={"type": 4})
    with pytest.raises(BatchInputError, match="expected a pandas DataFrame"):
        plan_batch([{"content": "x"}], "moderation")
    with pytest.raises(Exception, match="unknown job kind 'moderate'; allowed: tts"):
        plan_batch(df, "moderate")


def test_duplicates_sent_once_by_default_or_each_submitted():
    df = pd.DataFrame({"content": ["same", "same", "other", "same"], "type": [4, 4, 4, 4]})
    plan = plan_batch(df, "moderation")
    assert plan.valid == [True, False, True, False]
    assert plan.duplicate_of == [None, 0, None, 0] and plan.errors[1] is None
    assert plan.rejected_count == 0 and plan.duplicate_count == 2
    assert plan.estimate.total_credits == pytest.approx(0.2)  # the copies cost nothing more
    assert len(set(plan.keys)) == 4  # every row still has its own key
    allowed = plan_batch(df, "moderation", dedupe=False)
    assert allowed.valid_count == 4 and len(set(allowed.keys)) == 4


def test_huge_cell_and_nul_are_rejected_per_row():
    big = "x" * (10 * 1024 * 1024)
    df = pd.DataFrame({"content": ["fine", big, "nul\x00byte"], "type": [4, 4, 4]})
    plan = plan_batch(df, "moderation")
    assert plan.valid == [True, False, False]
    assert "10,485,760 characters, over the limit of 100,000 (max_cell_chars)" in plan.errors[1]
    assert "NUL" in plan.errors[2]
    assert len(json.dumps(plan.rows["fields"].iloc[1])) < 1000  # the 10 MB cell is not copied around


def test_row_key_is_stable_across_processes_and_field_order():
    body = {"content": "hello", "type": 4, "language": "en"}
    key = row_key_for("moderation", body)
    assert key == row_key_for("moderation", dict(reversed(list(body.items()))))
    code = ("from akool_flows.batch import row_key_for;"
            "print(row_key_for('moderation', {'type': 4, 'language': 'en', 'content': 'hello'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == key
    assert key != row_key_for("moderation", {**body, "content": "hello!"})


def test_moderation_estimate_from_the_docs_price_list():
    df = pd.DataFrame({"content": ["a" * 600, "a" * 601, "https://x.example/i.png", "https://x.example/a.mp3",
                                   "https://x.example/v.mp4", "https://x.example/v2.mp4"],
                       "type": [4, 4, 1, 3, 2, 2], "seconds": [None, None, None, 61, 30, None]})
    plan = plan_batch(df, "moderation", durations="seconds")
    est = plan.rows["est_credits"].tolist()
    assert est[:5] == [0.1, 0.2, 0.2, 1.0, 1.0]  # audio 61 s = 2 started minutes x 0.5
    assert math.isnan(est[5])  # video without a duration: unknown, not invented
    assert plan.estimate.total_credits == pytest.approx(2.5)
    assert plan.estimate.unknown_rows == 1
    assert plan.estimate.usd == pytest.approx(0.1)
    assert "1 row(s) of unknown price" in plan.estimate.describe()


def test_other_kinds_unknown_unless_cost_table_or_observed(tmp_path):
    df = pd.DataFrame({"talking_photo_url": ["https://x.example/p.jpg"], "audio_url": ["https://x.example/a.mp3"]})
    assert plan_batch(df, "talking_photo").estimate.unknown_rows == 1
    priced = plan_batch(df, "talking_photo", cost_table={"talking_photo": 3})
    assert priced.estimate.total_credits == 3 and priced.estimate.sources["cost_table"] == 1
    with pytest.raises(Exception, match=r"cost_table\['talking_photo'\] must be a number"):
        plan_batch(df, "talking_photo", cost_table={"talking_photo": -1})
    with Ledger(tmp_path / "l.sqlite") as led:
        led.begin_batch("b", "talking_photo", [("k1", 0), ("k2", 1)])
        led.finish_many("b", [("k1", "completed", 1.0, 3, 4.0, None, None, None),
                              ("k2", "completed", 1.0, 3, 6.0, None, None, None)])
        observed = plan_batch(df, "talking_photo", ledger=led)
    assert observed.estimate.total_credits == 5.0 and observed.estimate.sources["observed"] == 1
