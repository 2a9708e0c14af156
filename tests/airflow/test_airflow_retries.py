"""A task killed after submission and retried never creates a second paid job."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from conftest import StateStore, load_dag, task_states, xcom


def _state_record(run, task_id: str):
    from airflow.models.task_state_store import TaskStateStoreModel
    from airflow.utils.session import create_session
    from sqlalchemy import select
    import json

    with create_session() as session:
        value = session.execute(select(TaskStateStoreModel.value).where(
            TaskStateStoreModel.dag_id == run.dag_id, TaskStateStoreModel.run_id == run.run_id,
            TaskStateStoreModel.task_id == task_id, TaskStateStoreModel.key == "akool_job")).scalar_one_or_none()
    return json.loads(value) if value else None


def _try_number(run, task_id: str) -> int:
    from airflow.utils.session import create_session

    with create_session() as session:
        (ti,) = [t for t in run.get_task_instances(session=session) if t.task_id == task_id]
        return ti.try_number


def test_killed_while_waiting_then_retried_reattaches_without_a_second_create(airflow):
    sb = airflow
    sb.configure(job_seconds=4.0)  # longer than execution_timeout: the first try is killed mid-wait
    try:
        run = load_dag("akool_test_killed_while_waiting").test()
    finally:
        sb.configure(job_seconds=0.4)
    assert str(run.state) == "success", task_states(run)
    assert _try_number(run, "animate") >= 2  # really killed and retried
    assert sb.create_count("talking_photo") == 1
    assert sb.duplicate_creates() == {}
    record = _state_record(run, "animate")
    result = xcom(run, "animate")
    assert record["phase"] == "submitted" and record["job_id"] == result["job_id"] and record["try_number"] == 1
    assert result["state"] == "completed"


def test_killed_during_create_the_retry_refuses_to_pay_again(airflow, capfd):
    sb = airflow
    sb.faults.slow(3.0, next=1, path_prefix="/api/open/v3/audio/create")
    run = load_dag("akool_test_killed_during_create").test()
    assert str(run.state) == "failed"
    assert _try_number(run, "speak") == 2
    deadline = time.monotonic() + 10
    while sb.create_count("tts") < 1 and time.monotonic() < deadline:
        time.sleep(0.1)  # the delayed create lands after the kill
    time.sleep(0.5)
    assert sb.create_count("tts") == 1  # the first try's create happened; the retry did not create again
    record = _state_record(run, "speak")
    assert record["phase"] == "intent" and record["job_id"] is None
    out = capfd.readouterr()
    assert "resubmit_uncertain=True" in out.out + out.err
    assert "may have been charged" in out.out + out.err


def test_killed_during_create_with_consent_the_retry_pays_again(airflow):
    sb = airflow
    sb.faults.slow(3.0, next=1, path_prefix="/api/open/v3/audio/create")
    run = load_dag("akool_test_killed_during_create_resubmit").test()
    assert str(run.state) == "success", task_states(run)
    deadline = time.monotonic() + 10
    while sb.create_count("tts") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sb.create_count("tts") == 2
    assert _state_record(run, "speak")["phase"] == "submitted"


def test_a_retry_after_a_create_that_may_have_happened_does_not_create_again(airflow):
    """The create reaches Akool (job made, credits charged) but the answer is lost. Whatever the
    first try raises, the next try of the task (a retry, or a clear) must not create again."""
    from airflow.sdk.exceptions import AirflowFailException

    from akool_flows.airflow.operators import AkoolTtsOperator

    sb = airflow
    sb.faults.drop_after_create(next=1, path_prefix="/api/open/v3/audio/create")
    store = StateStore()

    def one_try():
        op = AkoolTtsOperator(task_id="speak", input_text="Hello there", voice_id="LcfcDJNUP1GQjkzn1xUU",
                              deferrable=False, poll_interval=0.1)
        return op.execute({"task_state_store": store})

    with pytest.raises(Exception):  # noqa: B017 - whatever it is, Airflow may run the task again
        one_try()
    assert sb.create_count("tts") == 1  # the lost answer's job exists on Akool
    refused = None
    try:
        one_try()
    except AirflowFailException as exc:
        refused = str(exc)
    assert sb.create_count("tts") == 1 and sb.duplicate_creates() == {}  # not paid twice
    assert refused and "resubmit_uncertain=True" in refused and "may have been charged" in refused
    assert store["akool_job"]["phase"] == "intent"  # kept for the next try, which must refuse too


def test_killed_before_the_create_left_the_worker_the_retry_submits_by_itself(airflow):
    from akool_flows.airflow import hooks

    sb = airflow
    hooks._SHARED_CREDENTIALS.clear()  # this machine's tasks share a token: make this one exchange
    shutil.rmtree(Path(os.environ["AKOOL_FLOWS_STATE_DIR"]) / "tokens", ignore_errors=True)
    sb.faults.slow(3.0, next=1, path_prefix="/api/open/v3/getToken")
    run = load_dag("akool_test_killed_before_sending").test()
    assert str(run.state) == "success", task_states(run)
    assert _try_number(run, "speak") >= 2  # really killed during the token exchange and retried
    time.sleep(0.5)
    assert sb.create_count("tts") == 1 and sb.duplicate_creates() == {}
    record = _state_record(run, "speak")
    assert record["phase"] == "submitted" and record["try_number"] >= 2


def test_a_lost_create_answer_is_resolved_by_its_callback_without_paying_again(airflow, tmp_path, monkeypatch,
                                                                                serve_asgi):
    """With webhooks each create carries its own signed callback path: the callback names the job
    whose create answer was lost, and the next try attaches it."""
    from conftest import conn_json

    from akool_flows.airflow.operators import AkoolTtsOperator
    from akool_flows.webhook import WebhookEventStore, create_webhook_app

    sb = airflow
    store_url = f"sqlite:///{tmp_path / 'events.sqlite'}"
    events = WebhookEventStore(store_url)
    base = serve_asgi(create_webhook_app(events, sb.client_id, sb.client_secret))
    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_DEFAULT", conn_json(sb, webhook_url=f"{base}/webhook",
                                                               webhook_store_url=store_url))
    sb.faults.drop_after_create(next=1, path_prefix="/api/open/v3/audio/create")
    state = StateStore()

    def one_try():
        op = AkoolTtsOperator(task_id="speak", input_text="Hello there", voice_id="LcfcDJNUP1GQjkzn1xUU",
                              deferrable=False, poll_interval=0.1)
        return op.execute({"task_state_store": state})

    with pytest.raises(Exception):  # noqa: B017 - the answer was lost: the job may exist
        one_try()
    assert sb.create_count("tts") == 1 and state["akool_job"]["phase"] == "intent"
    assert state["akool_job"]["sent"] is True and state["akool_job"]["intent_key"]
    (job,) = sb.jobs("tts")
    deadline = time.monotonic() + 10
    while events.job_for_intent(state["akool_job"]["intent_key"]) is None and time.monotonic() < deadline:
        time.sleep(0.05)  # the job finishes on Akool and calls back on its own path
    result = one_try()
    events.close()
    assert result["job_id"] == job["_id"] and result["state"] == "completed"
    assert sb.create_count("tts") == 1 and sb.duplicate_creates() == {}  # attached, not paid again
    assert state["akool_job"]["phase"] == "submitted" and state["akool_job"]["job_id"] == job["_id"]
    # The callback path cannot be forged: a path we did not sign is not a route.
    import httpx

    assert httpx.post(f"{base}/webhook/{'a' * 40}.{'0' * 32}", json={}).status_code == 404
