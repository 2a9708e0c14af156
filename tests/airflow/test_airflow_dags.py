"""The example DAGs, run with ``dag.test()`` on real Airflow against the sandbox."""

from __future__ import annotations

from conftest import load_dag, task_states, xcom, xcom_writes


def test_tts_talking_photo_chain_deferred(airflow):
    sb = airflow
    dag = load_dag("akool_tts_talking_photo")
    run = dag.test()
    assert str(run.state) == "success", task_states(run)
    speak = xcom(run, "speak")
    animate = xcom(run, "animate")
    assert speak["state"] == "completed" and speak["result_url"].startswith(sb.base_url)
    assert animate["state"] == "completed" and animate["result_url"]
    # The talking photo was asked to speak exactly the TTS result: the sandbox derives a clip's
    # duration from its audio URL, so the job's duration names the URL it was given.
    from akool_flows.sandbox.moderation import media_duration_seconds

    job = sb.job_payload(animate["job_id"])
    assert job["video_lock_duration"] == media_duration_seconds(speak["result_url"])
    assert sb.create_count("tts") == 1 and sb.create_count("talking_photo") == 1
    # XCom holds each task's result and nothing else: one write per task (13 before: a key per XCom).
    assert xcom_writes(run) == {"speak": ["return_value"], "animate": ["return_value"]}


def test_moderation_gate_only_compliant_images_get_a_background(airflow):
    sb = airflow
    run = load_dag("akool_moderation_gate").test()
    states = task_states(run)
    assert str(run.state) == "success", states
    passed = xcom(run, "compliant")
    assert len(passed) == 2 and all("gun" not in url for url in passed)
    # Three images moderated, two background changes paid for: the gun banner stopped at the gate.
    assert sb.create_count("moderation") == 3
    assert sb.create_count("background_change") == 2
    changed = {sb.job_payload(xcom(run, "change_background", map_index=i)["job_id"]).get("_id") for i in range(2)}
    assert len(changed) == 2


def test_catalog_translation_maps_one_deferred_task_per_video_and_language(airflow):
    sb = airflow
    run = load_dag("akool_catalog_translation").test()
    states = task_states(run)
    assert str(run.state) == "success", states
    assert sum(1 for k in states if k.startswith("translate[")) == 8  # 2 videos x 4 languages
    catalog = xcom(run, "catalog")
    assert catalog["translations"] == 8 and catalog["videos"] == 2
    assert all(url and url.startswith(sb.base_url) for langs in catalog["catalog"].values() for url in langs.values())
    assert sb.create_count("video_translation") == 8


def test_catalog_translation_refuses_a_target_equal_to_the_source(airflow):
    """The DAG plans through `translate_catalog`: a target that is the source language fails the
    plan with the helper's message (it used to be dropped silently), and nothing is paid."""
    sb = airflow
    run = load_dag("akool_catalog_translation").test(run_conf={"languages": ["fr", "en"]})
    states = task_states(run)
    assert str(run.state) == "failed" and states["plan"] == "failed", states
    assert sb.create_count("video_translation") == 0


def test_bulk_moderation_of_a_dropped_csv_reports_non_compliant_rows_and_cost(airflow, tmp_path):
    import os
    from pathlib import Path

    import pandas as pd

    sb = airflow
    incoming = Path(os.environ["AKOOL_EXAMPLE_DATA_DIR"]) / "moderation" / "incoming"
    incoming.mkdir(parents=True, exist_ok=True)
    rows = [{"id": "c1", "text": "Love the new update, thank you!"},
            {"id": "c2", "text": "You people are idiots and worthless."},
            {"id": "c3", "text": "=HYPERLINK(\"http://evil\") I will kill you"},
            {"id": "c4", "text": ""},
            {"id": "c5", "text": "Shipping was quick and the support team was helpful."}]
    pd.DataFrame(rows).to_csv(incoming / "comments.csv", index=False)

    run = load_dag("akool_bulk_moderation").test()
    states = task_states(run)
    assert str(run.state) == "success", states
    summary = xcom(run, "moderate", map_index=0)
    assert summary["counts"]["completed"] == 4 and summary["counts"]["rejected"] == 1  # the empty row
    assert summary["conclusions"] == {"Compliant": 2, "Non-Compliant": 2}
    assert summary["credits"] == 0.4 and summary["usd"] == 0.016  # 4 texts x 0.1 credit x $0.04
    assert sb.create_count("moderation") == 4

    results = pd.read_csv(summary["results_path"], dtype=str, keep_default_na=False)
    assert list(results["id"]) == ["c1", "c2", "c3", "c4", "c5"]
    # Spreadsheet-safe: the formula in the input comes back neutralised.
    assert results.loc[results["id"] == "c3", "text"].item().startswith("'=")
    cost = pd.read_csv(summary["cost_log_path"])
    assert cost.iloc[-1]["row_key"] == "TOTAL" and abs(cost.iloc[-1]["credits"] - 0.4) < 1e-9

    report = xcom(run, "report")
    assert report["non_compliant"] == 2 and report["rejected"] == 1 and report["credits"] == 0.4
    flagged = pd.read_csv(report["reports"][0], dtype=str, keep_default_na=False)
    assert sorted(flagged["id"]) == ["c2", "c3", "c4"]
    assert not list(incoming.glob("*.csv"))  # claimed

    # The results file is an Asset: the event carries counts and cost.
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        extra = session.execute(
            select(AssetEvent.extra).join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "akool_moderation_results").order_by(AssetEvent.id.desc())).scalars().first()
    assert extra["counts"]["completed"] == 4 and extra["credits"] == 0.4
    assert extra["results_path"] == summary["results_path"]
