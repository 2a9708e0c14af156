"""`AkoolBatchOperator` outside a DAG run: shards, reruns that pay nothing, input errors."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from conftest import StateStore


def _csv(tmp_path, n: int = 6):
    path = tmp_path / "comments.csv"
    texts = ["Great service, thanks!", "You are an idiot", "Fast delivery", "I will hurt you",
             "Lovely colours", "Average product"]
    pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts[:n]}).to_csv(path, index=False)
    return path


def _op(path, **kw):
    from akool_flows.airflow.batch import AkoolBatchOperator

    return AkoolBatchOperator(task_id="b", kind="moderation", input_path=str(path), columns={"content": "text"},
                              defaults={"type": 4}, poll_interval=0.1, deferrable=False, **kw)


def _texts_csv(tmp_path, texts, name="comments.csv"):
    path = tmp_path / name
    pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_csv(path, index=False)
    return path


def _run_shards(path, n, **kw):
    """Every shard of `path` in `n` shards, one after another (as mapped tasks would)."""
    summaries = [_op(path, shard_index=i, shard_count=n, **kw).execute({}) for i in range(n)]
    frames = [pd.read_csv(s["results_path"], dtype=str, keep_default_na=False) for s in summaries]
    return summaries, frames


def test_shards_split_the_rows_and_a_rerun_pays_nothing(airflow, tmp_path):
    sb = airflow
    path = _csv(tmp_path)
    summaries, frames = _run_shards(path, 2)
    assert sum(s["rows"] for s in summaries) == 6
    assert sb.create_count("moderation") == 6
    assert sorted(i for f in frames for i in f["id"]) == [f"r{i}" for i in range(6)]  # each row in one shard
    assert summaries[0]["results_path"].endswith("comments.shard-0-of-2.akool-results.csv")
    # One ledger for the input, whatever the sharding: its name has no shard in it.
    assert {s["ledger_path"] for s in summaries} == {str(tmp_path / "comments.akool-ledger.sqlite")}
    again = _op(path, shard_index=1, shard_count=2).execute({})  # a retry, or the same file again
    assert again["counts"] == summaries[1]["counts"] and sb.create_count("moderation") == 6
    assert again["credits"] == summaries[1]["credits"]


def test_changing_the_shard_count_pays_for_nothing_again(airflow, tmp_path):
    sb = airflow
    texts = [f"Comment number {i}: the parcel came on time." for i in range(24)]
    path = _texts_csv(tmp_path, texts)
    _run_shards(path, 3)
    assert sb.create_count("moderation") == 24
    summaries, frames = _run_shards(path, 5)
    assert sb.create_count("moderation") == 24 and sb.duplicate_creates() == {}
    # Every input row is in exactly one of the new shards, with its result and input index.
    rows = pd.concat(frames)
    assert sorted(rows["id"]) == sorted(f"r{i}" for i in range(24))
    assert sorted(rows["input_index"].astype(int)) == list(range(24))
    assert set(rows["outcome"]) == {"completed"}


def test_identical_requests_land_in_one_shard_and_are_paid_once(airflow, tmp_path):
    sb = airflow
    distinct = ["Great service, thanks!", "You are an idiot", "Fast delivery", "I will hurt you"]
    # Copies spread over positions: position-based sharding puts each copy in another shard.
    texts = [distinct[i % 4] for i in range(12)]
    path = _texts_csv(tmp_path, texts)
    summaries, frames = _run_shards(path, 3)
    assert sb.create_count("moderation") == 4 and sb.duplicate_creates() == {}
    shard_of_text = {}
    for shard, frame in enumerate(frames):
        for text in frame["text"]:
            assert shard_of_text.setdefault(text, shard) == shard, f"{text!r} is in shards {shard_of_text[text]}, {shard}"
    rows = pd.concat(frames)
    assert sorted(rows["input_index"].astype(int)) == list(range(12))  # no row disappears
    # Every copy carries its original's verdict; only 4 were sent.
    copies = rows["duplicate_of"].astype(str).str.strip().replace("nan", "") != ""
    assert (rows["outcome"] == "completed").sum() == 12 and copies.sum() == 8


def test_shards_running_at_the_same_time_share_the_ledger(airflow, tmp_path):
    """Mapped shards run in parallel: all of them write the input's one ledger at once."""
    from concurrent.futures import ThreadPoolExecutor

    sb = airflow
    texts = [f"Review {i}: works as described." for i in range(20)] + ["Fast delivery"] * 4
    path = _texts_csv(tmp_path, texts)
    with ThreadPoolExecutor(4) as pool:
        summaries = list(pool.map(lambda i: _op(path, shard_index=i, shard_count=4).execute({}), range(4)))
    assert sb.create_count("moderation") == 21 and sb.duplicate_creates() == {}
    assert sum(s["counts"]["completed"] for s in summaries) == 24  # the 3 copies carry the original's verdict
    assert sum(s["duplicates"] for s in summaries) == 3  # reported, not paid


def test_budget_stop_fails_the_task_and_keeps_the_results(airflow, tmp_path):
    from airflow.sdk.exceptions import AirflowException

    sb = airflow
    path = _csv(tmp_path)
    with pytest.raises(AirflowException, match=r"cancelled .*resumes from the ledger"):
        _op(path, budget_credits=0.25, output_dir=str(tmp_path / "out")).execute({})
    assert sb.create_count("moderation") == 2  # 0.1 credit each: the third would pass 0.25
    results = pd.read_csv(tmp_path / "out" / "comments.akool-results.csv", dtype=str)
    assert (results["outcome"] == "cancelled").sum() == 4


def test_missing_input_and_unknown_columns_are_clear_errors(airflow, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match="does not exist"):
        _op(tmp_path / "nope.csv").execute({})
    path = _csv(tmp_path)
    from akool_flows.airflow.batch import AkoolBatchOperator

    op = AkoolBatchOperator(task_id="b", kind="moderation", input_path=str(path), columns={"content": "body"},
                            defaults={"type": 4}, deferrable=False)
    with pytest.raises(AirflowFailException, match="body"):
        op.execute({})
    with pytest.raises(AirflowFailException, match="output_dir is required"):
        AkoolBatchOperator(task_id="b", kind="moderation", input_path="https://example.com/in.csv").paths()


def test_deferred_batch_collects_after_the_trigger_and_refuses_a_swapped_input(airflow, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

    from akool_flows.airflow.batch import AkoolBatchOperator

    sb = airflow
    path = _csv(tmp_path)
    op = AkoolBatchOperator(task_id="b", kind="moderation", input_path=str(path), columns={"content": "text"},
                            defaults={"type": 4}, poll_interval=0.1, deferrable=True)
    store = StateStore()
    polls_before = sb.stats()["polls"]
    with pytest.raises(TaskDeferred) as deferred:
        op.execute({"task_state_store": store})
    trigger = deferred.value.trigger
    assert trigger.kind == "moderation" and len(trigger.job_ids) == 6 and not trigger.include_jobs
    assert sb.create_count("moderation") == 6
    assert sb.stats()["polls"] == polls_before  # the submit pass leaves every status call to the trigger

    _csv(tmp_path, n=5)  # the file is replaced while the jobs run
    with pytest.raises(AirflowFailException, match="changed while its batch was running"):
        op.execute_complete({"task_state_store": store}, {"status": "success"})

    _csv(tmp_path, n=6)  # restored: collection works and pays nothing more
    summary = op.execute_complete({"task_state_store": store}, {"status": "success"})
    assert summary["counts"]["completed"] == 6 and sb.create_count("moderation") == 6


def test_sensor_pokes_until_the_job_is_done(airflow):
    from akool_flows.airflow.sensors import AkoolJobSensor
    from akool_flows.api import AkoolClient

    sb = airflow
    with AkoolClient.from_env(sb.env("client")) as client:
        job = client.submit("tts", input_text="Hello", voice_id="LcfcDJNUP1GQjkzn1xUU")
    sensor = AkoolJobSensor(task_id="s", kind="tts", job_id=job.job_id, deferrable=False, poke_interval=0.1)
    first = sensor.poke({})
    assert not first.is_done
    deadline = time.monotonic() + 10
    while not (done := sensor.poke({})).is_done and time.monotonic() < deadline:
        time.sleep(0.1)
    assert done.xcom_value["state"] == "completed" and done.xcom_value["result_url"].endswith(".mp3")
