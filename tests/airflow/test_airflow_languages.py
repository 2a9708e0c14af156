"""A video translation into several languages is one create and several paid jobs: the operator
tracks, waits for and returns every one (in the worker, on the triggerer, and across retries)."""

from __future__ import annotations

import pytest
from conftest import StateStore, load_dag, task_states, xcom, xcom_writes

VIDEO = "https://example.com/talk.mp4"


class TI:
    """What the operator uses of a task instance: XCom pushes."""

    def __init__(self) -> None:
        self.xcom: dict[str, object] = {}

    def xcom_push(self, key, value):
        self.xcom[key] = value


def _translate(**kw):
    from akool_flows.airflow.operators import AkoolVideoTranslationOperator

    return AkoolVideoTranslationOperator(task_id="translate", url=VIDEO, source_language="en", deferrable=False,
                                         poll_interval=0.1, **kw)


def test_every_language_is_waited_for_and_returned(airflow):
    sb = airflow
    store, ti = StateStore(), TI()
    result = _translate(language="fr,de,ja").execute({"task_state_store": store, "ti": ti})
    assert [(r["language"], r["state"]) for r in result["results"]] == [
        ("fr", "completed"), ("de", "completed"), ("ja", "completed")]
    assert all(r["result_url"] for r in result["results"]) and len({r["job_id"] for r in result["results"]}) == 3
    assert result["job_id"] == result["results"][0]["job_id"] and result["state"] == "completed"
    assert ti.xcom == {}  # a task that succeeds writes its return value only
    assert sorted(j["_id"] for j in sb.jobs()) == sorted(r["job_id"] for r in result["results"])
    assert [p["language"] for p in store["akool_job"]["parts"]] == ["fr", "de", "ja"]
    # A retry of the task reattaches to all three; nothing is paid twice.
    again = _translate(language="fr,de,ja").execute({"task_state_store": store, "ti": TI()})
    assert again["results"] == result["results"] and sb.create_count() == 3


def test_a_refused_language_fails_the_task_and_every_result_is_kept(airflow):
    from akool_flows.airflow.operators import AkoolJobFailedException

    sb = airflow
    _translate(language="fr", lipsync=True).execute({})
    ti = TI()
    with pytest.raises(AkoolJobFailedException, match=r"1 of 2 video_translation jobs failed; fr: \[1202\]") as info:
        _translate(language="fr,de", lipsync=True).execute({"task_state_store": StateStore(), "ti": ti})
    assert info.value.code == 1202 and info.value.job_id is None
    de, fr = ti.xcom["results"]  # the jobs, then the refused languages
    assert (fr["language"], fr["state"], fr["job_id"], fr["error_code"]) == ("fr", "failed", None, 1202)
    assert (de["language"], de["state"]) == ("de", "completed") and de["result_url"]
    assert sb.create_count() == 2


def test_without_waiting_every_job_id_is_returned(airflow):
    result = _translate(language="fr,de", wait_for_completion=False).execute({})
    assert [(r["language"], r["state"]) for r in result["results"]] == [("fr", "queued"), ("de", "queued")]
    assert airflow.create_count() == 2


def test_deferred_on_the_triggerer_with_fields_the_docs_do_not_list(airflow):
    sb = airflow
    run = load_dag("akool_test_translate_languages").test()
    assert str(run.state) == "success", task_states(run)
    result = xcom(run, "translate")
    assert [(r["language"], r["state"]) for r in result["results"]] == [
        ("fr", "completed"), ("de", "completed"), ("ja", "completed")]
    assert xcom_writes(run) == {"translate": ["return_value"]}  # `results` is kept apart only on failure
    requests = [sb.job_request(r["job_id"]) for r in result["results"]]
    assert all(r["speaker_num"] == 0 and r["remove_bgm"] is True and r["language"] == "fr,de,ja" for r in requests)
    assert sb.create_count() == 3
