"""A plan streamed chunk by chunk gives the figures of the whole plan, and its keys are the keys.

`summarize_plan` (the ``--dry-run`` path, flat memory) must say exactly what `plan_batch` says on
the whole input: rows, valid, duplicates (also across chunks), rejections with their first rows,
and the estimate. The row key is spliced from its parts for speed and must stay byte for byte the
key users' ledgers already hold.
"""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akool_flows.batch import plan_batch, row_key_for
from akool_flows.batch.plan_stream import frames, summarize_plan
from akool_flows.cli import main as cli_main
from akool_flows.cli.batch_input import TableChunks, read_table


def _reference_key(kind: str, body: dict) -> str:
    text = json.dumps({"kind": kind, "body": body}, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
                     lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(), _json, max_size=5))
def test_the_spliced_key_is_the_encoded_key(body):
    assert row_key_for("moderation", body) == _reference_key("moderation", body)


def test_keys_of_known_bodies_did_not_move():
    # Pinned: a ledger written by an earlier version must resume onto the same rows.
    assert row_key_for("moderation", {"content": "hello", "type": 4}) == _reference_key(
        "moderation", {"content": "hello", "type": 4})
    assert row_key_for("moderation", {"type": 4, "content": "é \u2028 \"q\" \ud800"}) == _reference_key(
        "moderation", {"content": "é \u2028 \"q\" \ud800", "type": 4})


def _moderation_input() -> pd.DataFrame:
    texts = [f"text {i % 23}" for i in range(60)]  # repeats far apart: duplicates across chunks
    texts[5] = ""  # rejected: content is required
    texts[17] = "x" * 50  # rejected: over max_cell_chars
    texts[40] = "x" * 50
    texts[33] = "  "
    df = pd.DataFrame({"text": texts, "other": range(60)})
    df.index = pd.RangeIndex(1, 61, name="row")
    return df


_MOD = dict(columns={"content": "text"}, defaults={"type": 4}, max_cell_chars=40)


def _figures(plan) -> dict:
    return {"rows": len(plan), "valid": plan.valid_count, "duplicates": plan.duplicate_count,
            "rejected": plan.rejected_count, "rejections": plan.rejections(limit=None),
            "estimate": plan.estimate.to_dict()}


@pytest.mark.parametrize("rows", [1, 7, 23, 60])
@pytest.mark.parametrize("dedupe", [True, False])
def test_streamed_figures_equal_the_whole_plan(rows, dedupe):
    df = _moderation_input()
    whole = plan_batch(df, "moderation", dedupe=dedupe, **_MOD)
    streamed = summarize_plan(frames(df, rows), "moderation", dedupe=dedupe, **_MOD)
    assert _figures(streamed) == _figures(whole)
    whole_summary = whole.summary()
    del whole_summary["batch_id"]  # a batch id hashes every key: not kept by a streamed plan
    assert streamed.summary() == whole_summary
    assert (whole.duplicate_count > 30) == dedupe  # sanity: the input does repeat


def test_multi_language_rows_stream_like_the_whole_plan():
    df = pd.DataFrame({"url": ["https://e.com/a.mp4", "https://e.com/b.mp4", "https://e.com/a.mp4"],
                       "language": ["fr,de", "es", "de"]})
    kw = dict(columns={"url": "url", "language": "language"}, defaults={"source_language": "en"})
    whole = plan_batch(df, "video_translation", **kw)
    streamed = summarize_plan(frames(df, 1), "video_translation", **kw)
    assert _figures(streamed) == _figures(whole)
    assert whole.duplicate_count == 1  # row 3 is row 1's German


def test_worker_processes_give_the_same_figures():
    df = pd.concat([_moderation_input()] * 3, ignore_index=True)
    whole = plan_batch(df, "moderation", **_MOD)
    streamed = summarize_plan(frames(df, 20), "moderation", workers=2, **_MOD)
    assert _figures(streamed) == _figures(whole)


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_table_chunks_read_what_read_table_reads(tmp_path, suffix):
    df = pd.DataFrame({"text": [f"t{i}" for i in range(10)], "n": [str(i) for i in range(10)]})
    path = tmp_path / f"in{suffix}"
    df.to_csv(path, index=False) if suffix == ".csv" else df.to_parquet(path, index=False)
    chunks = list(TableChunks(str(path), rows=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    pd.testing.assert_frame_equal(pd.concat(chunks), read_table(str(path)))


def test_cli_dry_run_streams_the_input_with_the_same_figures(tmp_path, monkeypatch, capsys):
    df = _moderation_input()
    path = tmp_path / "in.csv"
    df.to_csv(path, index=False)
    monkeypatch.setattr(TableChunks, "DEFAULT_ROWS", 7)
    read = []
    original = TableChunks._frames
    monkeypatch.setattr(TableChunks, "_frames", lambda self: (read.append(1) or c for c in original(self)))
    code = cli_main(["batch", "moderation", str(path), "--map", "content=text", "--set", "type=4",
                     "--max-cell-chars", "40", "--dry-run", "--ledger", str(tmp_path / "l.sqlite")])
    out = capsys.readouterr().out
    assert code == 0
    whole = plan_batch(read_table(str(path)), "moderation", **_MOD)
    assert len(read) == 9  # 60 rows, 7 at a time: never the whole file at once
    assert (f"{len(whole)} rows, {whole.valid_count} valid, {whole.rejected_count} rejected, "
            f"{whole.duplicate_count} identical") in out
    assert whole.estimate.describe() in out
