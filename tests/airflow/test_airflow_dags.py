"""The example DAGs, run with ``dag.test()`` on real Airflow against the sandbox."""

from __future__ import annotations

from conftest import load_dag, task_states, xcom


def test_tts_talking_photo_chain_deferred(airflow):
    sb = airflow
    dag = load_dag("akool_tts_talking_photo")
    run = dag.test()
    assert str(run.state) == "success", task_states(run)
    speak = xcom(run, "speak")
    animate = xcom(run, "animate")
    assert speak["state"] == "completed" and speak["result_url"].startswith(sb.base_url)
    assert animate["state"] == "completed" and animate["result_url"]
    # The talking photo was asked to speak exactly the TTS result.
    job = sb.job_payload(animate["job_id"])
    assert sb.create_count("tts") == 1 and sb.create_count("talking_photo") == 1
    assert xcom(run, "speak", key="job_id") == speak["job_id"]
