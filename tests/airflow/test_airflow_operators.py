"""Operators, sensor and plugin behaviour against the sandbox (direct execute and dag.test)."""

from __future__ import annotations

import inspect
import json
import socket
import threading
import time

import pytest
from conftest import conn_json, load_dag, task_states, xcom


def _execute(op, context=None):
    return op.execute(context or {})


# --- the generated operators ---------------------------------------------------------------------

def test_one_importable_operator_per_registry_kind():
    import akool_flows.airflow as provider
    import akool_flows.airflow.operators as ops
    from akool_flows.api.kinds import KINDS

    assert set(ops.OPERATORS) == set(KINDS)
    for kind_name, cls in ops.OPERATORS.items():
        assert getattr(ops, cls.__name__) is cls and getattr(provider, cls.__name__) is cls
        assert cls.__module__ == "akool_flows.airflow.operators" and cls.__doc__.startswith(KINDS[kind_name].title)
        params = inspect.signature(cls.__init__).parameters
        fields = KINDS[kind_name].request_model.model_fields
        assert set(cls.template_fields) == set(fields)
        for name, info in fields.items():
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
            derived = name == "targetImage" and "modifyImage" in fields
            assert (params[name].default is inspect.Parameter.empty) == (info.is_required() and not derived), name


#: The names DAGs import. A registry rename must not silently rename (and break) a public class.
PUBLIC_OPERATORS = {
    "tts": "AkoolTtsOperator", "voice_clone": "AkoolVoiceCloneOperator",
    "background_change": "AkoolBackgroundChangeOperator", "image_generate": "AkoolImageGenerateOperator",
    "image_button": "AkoolImageButtonOperator", "faceswap_image": "AkoolFaceswapImageOperator",
    "faceswap_video": "AkoolFaceswapVideoOperator", "reage_image": "AkoolReageImageOperator",
    "reage_video": "AkoolReageVideoOperator", "moderation": "AkoolModerationOperator",
    "lipsync": "AkoolLipsyncOperator", "talking_photo": "AkoolTalkingPhotoOperator",
    "talking_avatar": "AkoolTalkingAvatarOperator", "video_translation": "AkoolVideoTranslationOperator",
    "avatar_upload": "AkoolAvatarUploadOperator", "live_session": "AkoolLiveSessionOperator",
    "image_to_video": "AkoolImageToVideoOperator",
}


def _example_op(cls, kind, **kw):
    """An operator of `cls` built from the registry's example fields (docs names -> argument names)."""
    fields = kind.request_model.model_fields
    by_docs = {(f.alias or n): n for n, f in fields.items()}
    return cls(task_id=kind.name, **{by_docs[k]: v for k, v in kind.example.items()}, **kw)


def test_operators_are_plain_classes_that_pickle_and_serialize():
    import pickle

    from airflow.sdk import DAG
    from airflow.serialization.serialized_objects import DagSerialization

    import akool_flows.airflow.operators as ops
    from akool_flows.api.kinds import KINDS

    assert {k: c.__name__ for k, c in ops.OPERATORS.items()} == PUBLIC_OPERATORS
    with DAG("ops_roundtrip", schedule=None) as dag:
        built = {k: _example_op(cls, KINDS[k]) for k, cls in ops.OPERATORS.items()}
    again = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    for kind_name, cls in ops.OPERATORS.items():
        # Real source, not text compiled at import time: tracebacks, coverage and inspect work.
        assert inspect.getsourcefile(cls.__init__.__wrapped__).endswith("operator_factory.py")
        assert cls.__init__.__qualname__ == f"{cls.__name__}.__init__"
        assert pickle.loads(pickle.dumps(cls)) is cls
        copy = pickle.loads(pickle.dumps(built[kind_name]))
        assert type(copy) is cls and all(getattr(copy, f) == getattr(built[kind_name], f) for f in cls.field_args)
        task = again.task_dict[kind_name]
        assert task.task_type == cls.__name__ and task._task_module == "akool_flows.airflow.operators"
        assert list(task.template_fields) == list(cls.template_fields)


def test_generated_docstrings_describe_each_field():
    from akool_flows.airflow.operators import AkoolBackgroundChangeOperator, AkoolTtsOperator

    # Descriptions nested inside an Optional (rate, color_code) are read too.
    assert ':param rate: optional; str. speaking speed "0%".."100%"' in AkoolTtsOperator.__doc__
    assert ":param input_text: required; str." in AkoolTtsOperator.__doc__
    assert 'hex color, e.g. "#aafbe3"' in AkoolBackgroundChangeOperator.__doc__


def test_waiting_by_default_comes_from_the_registry():
    from akool_flows.airflow.operators import OPERATORS, AkoolJobOperator
    from akool_flows.api.kinds import KINDS

    for kind_name, cls in OPERATORS.items():
        assert _example_op(cls, KINDS[kind_name]).wait_for_completion is KINDS[kind_name].waits_by_default
        assert _example_op(cls, KINDS[kind_name], wait_for_completion=True).wait_for_completion is True
    assert not KINDS["live_session"].waits_by_default
    # The generic operator follows the same rule: a live session is handed on, not waited for.
    generic = AkoolJobOperator(task_id="g", kind="live_session", fields=dict(KINDS["live_session"].example))
    assert generic.wait_for_completion is False


def test_face_fields_come_from_the_registry_not_a_list_of_names():
    """A kind whose face lists and media are named differently still gets its faces detected."""
    import dataclasses

    from akool_flows.airflow.faces import fill_faces, needs_detection
    from akool_flows.api.kinds import KINDS
    from akool_flows.api.models import FaceList, Url, WebhookMixin

    class GroupSwap(WebhookMixin):
        newFaces: FaceList
        targetImage: FaceList
        photo: Url

    kind = dataclasses.replace(KINDS["faceswap_image"], name="group_swap", request_model=GroupSwap,
                               face_fields=("photo",))
    calls = []

    def detect(url, single):
        calls.append((url, single))
        return ["1,2:3,4:5,6:7,8", "9,9:9,9:9,9:9,9"][: 1 if single else 2]

    fields = {"newFaces": ["https://example.com/new.jpg"], "photo": "https://example.com/group.jpg"}
    assert needs_detection(kind, fields)
    out = fill_faces(kind, fields, detect)
    assert out["newFaces"] == [{"path": "https://example.com/new.jpg", "opts": "1,2:3,4:5,6:7,8"}]
    assert out["targetImage"] == [{"path": "https://example.com/group.jpg", "opts": "1,2:3,4:5,6:7,8"}]
    assert calls == [("https://example.com/new.jpg", True), ("https://example.com/group.jpg", True)]
    kind.validate(out)


def test_a_failed_job_reads_the_same_from_operator_trigger_event_and_sensor():
    from akool_flows.airflow.operators import AkoolJobFailedException, AkoolLipsyncOperator
    from akool_flows.airflow.sensors import AkoolJobSensor
    from akool_flows.api.jobs import JobStatus

    status = JobStatus(job_id="j1", kind="lipsync", state="failed", status_code=4, error_code=1015,
                       error_message="no face in video")
    op = AkoolLipsyncOperator(task_id="l", video_url="https://example.com/v.mp4", audio_url="https://example.com/a.mp3")
    sensor = AkoolJobSensor(task_id="s", kind="lipsync", job_id="j1")
    event = {"status": "failed", "jobs": [status.to_dict()]}
    raised = []
    for call in (lambda: op._finish(status), lambda: op.execute_complete({}, event),
                 lambda: sensor.execute_complete({}, event)):
        with pytest.raises(AkoolJobFailedException) as err:
            call()
        raised.append((str(err.value), err.value.job_id, err.value.code, err.value.akool_message))
    assert raised == [("lipsync job j1 failed: [1015] no face in video", "j1", 1015, "no face in video")] * 3


def test_worker_wait_backs_off_through_the_shared_backoff_and_recovers(airflow, monkeypatch):
    import akool_flows.airflow.operators as ops
    from akool_flows.api import AkoolClient
    from akool_flows.api.errors import ServerError

    real_status = AkoolClient.status
    failures = {"left": 2}
    delays = []

    def flaky(self, kind, job_id):
        if failures["left"]:
            failures["left"] -= 1
            raise ServerError("HTTP 502", endpoint="status", http_status=502)
        return real_status(self, kind, job_id)

    def recorded(attempt, *, base, cap, **kw):
        delays.append((attempt, base, cap))
        return 0.01

    monkeypatch.setattr(AkoolClient, "status", flaky)
    monkeypatch.setattr(ops, "backoff_delay", recorded)
    op = ops.AkoolModerationOperator(task_id="m", content="Lovely", type=4, deferrable=False, poll_interval=0.2)
    assert _execute(op)["state"] == "completed"
    assert delays == [(1, 0.2, ops.MAX_BACKOFF), (2, 0.2, ops.MAX_BACKOFF)] and failures["left"] == 0


def test_unknown_argument_fails_at_parse_time_naming_the_fields():
    from akool_flows.airflow.operators import AkoolModerationOperator
    from akool_flows.api.errors import ValidationError

    with pytest.raises(ValidationError, match=r"unknown argument\(s\) langauge; the request fields are: .*language"):
        AkoolModerationOperator(task_id="m", content="hi", type=4, langauge="en")
    with pytest.raises(TypeError, match="missing keyword argument 'content'"):
        AkoolModerationOperator(task_id="m", type=4)


def test_invalid_fields_fail_before_any_request(airflow):
    from airflow.sdk.exceptions import AirflowFailException

    from akool_flows.airflow.operators import AkoolModerationOperator

    sb = airflow
    op = AkoolModerationOperator(task_id="m", content="not a url", type=1)
    with pytest.raises(AirflowFailException, match=r"content must be an http\(s\) URL when type=1"):
        _execute(op)
    assert sb.stats()["requests"] == 0  # not even a token exchange


def test_worker_wait_returns_a_small_json_result(airflow):
    from akool_flows.airflow.operators import AkoolModerationOperator

    sb = airflow
    op = AkoolModerationOperator(task_id="m", content="I will kill you", type=4, language="en",
                                 deferrable=False, poll_interval=0.1)
    result = _execute(op)
    assert result["state"] == "completed" and result["conclusion"] == "Non-Compliant"
    assert result["credits"] == 0.1 and "violence" in result["detail"]
    assert set(result) >= {"job_id", "kind", "state", "result_url", "result_urls", "conclusion", "credits",
                           "error_code", "error_message"}
    assert len(json.dumps(result)) < 2000
    assert sb.client_secret not in json.dumps(result)


def test_failed_job_fails_the_task_with_akools_code_and_message(airflow):
    from akool_flows.airflow.operators import AkoolJobFailedException, AkoolLipsyncOperator

    op = AkoolLipsyncOperator(task_id="l", video_url="https://example.com/sandbox-fail.mp4",
                              audio_url="https://example.com/a.mp3", deferrable=False, poll_interval=0.1)
    with pytest.raises(AkoolJobFailedException) as err:
        _execute(op)
    assert err.value.code is not None and err.value.akool_message
    assert f"[{err.value.code}]" in str(err.value) and err.value.job_id in str(err.value)


def test_faceswap_with_plain_urls_fills_landmarks_through_face_detect(airflow):
    from akool_flows.airflow.operators import AkoolFaceswapImageOperator

    sb = airflow
    op = AkoolFaceswapImageOperator(task_id="f", sourceImage=["https://example.com/new-face.jpg"],
                                    modifyImage="https://example.com/group-photo.jpg", deferrable=False,
                                    poll_interval=0.1)
    result = _execute(op)
    assert result["state"] == "completed" and result["result_url"]
    assert sb.stats()["requests_by_path"]["/detect"] == 2  # the source face, then the photo's faces
    assert sb.create_count("faceswap_image") == 1


def test_video_faceswap_without_target_faces_says_what_to_give(airflow):
    from airflow.sdk.exceptions import AirflowFailException

    from akool_flows.airflow.operators import AkoolFaceswapVideoOperator, AkoolJobOperator

    sb = airflow
    with pytest.raises(TypeError, match="missing keyword argument 'targetImage'"):
        AkoolFaceswapVideoOperator(task_id="f", sourceImage=["https://example.com/face.jpg"],
                                   modifyVideo="https://example.com/clip.mp4")
    op = AkoolJobOperator(task_id="f", kind="faceswap_video", fields={
        "sourceImage": ["https://example.com/face.jpg"], "modifyVideo": "https://example.com/clip.mp4"})
    with pytest.raises(AirflowFailException, match="targetImage is required for videos"):
        _execute(op)
    assert sb.stats()["requests"] == 0


def test_on_kill_cancels_a_faceswap_job(airflow):
    from akool_flows.airflow.operators import AkoolFaceswapImageOperator

    sb = airflow
    sb.configure(job_seconds=30)
    op = AkoolFaceswapImageOperator(task_id="f", sourceImage=["https://example.com/a.jpg"],
                                    modifyImage="https://example.com/b.jpg", deferrable=False, poll_interval=0.1)
    worker = threading.Thread(target=lambda: pytest.raises(Exception, _execute, op), daemon=True)
    try:
        worker.start()
        deadline = time.monotonic() + 10
        while sb.create_count("faceswap_image") == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        while op._job is None and time.monotonic() < deadline:
            time.sleep(0.05)
        op.on_kill()
        (job,) = sb.jobs("faceswap_image")
        assert job["ended_by"] == "cancel"
    finally:
        sb.configure(job_seconds=0.4)
        worker.join(15)


def test_generic_operator_and_submit_then_sense(airflow):
    from akool_flows.airflow.operators import AkoolJobOperator

    op = AkoolJobOperator(task_id="g", kind="tts", fields={"input_text": "Hi there", "voice_id": "LcfcDJNUP1GQjkzn1xUU"},
                          deferrable=False, poll_interval=0.1)
    assert _execute(op)["result_url"].endswith(".mp3")

    run = load_dag("akool_test_submit_then_sense").test()
    assert str(run.state) == "success", task_states(run)
    assert xcom(run, "submit")["state"] == "queued"
    sensed = xcom(run, "sense")
    assert sensed["state"] == "completed" and sensed["job_id"] == xcom(run, "submit")["job_id"]


def test_deferred_job_failure_reports_akools_reason(airflow, capfd):
    run = load_dag("akool_test_job_fails").test()
    assert str(run.state) == "failed"
    out = capfd.readouterr()
    text = out.out + out.err
    assert "AkoolJobFailedException" in text and "failed: [" in text


# --- webhooks through the plugin mounted like the API server mounts it -----------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def api_server(airflow, tmp_path, monkeypatch, serve_asgi):
    """Airflow's plugin mounting (init_plugins) in a FastAPI app, served by uvicorn on a socket."""
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI

    from akool_flows.airflow.plugin import AkoolPlugin

    sb = airflow
    token = "tok_" + "x" * 36
    port = _free_port()
    store_url = f"sqlite:///{tmp_path / 'akool-webhooks.sqlite'}"
    monkeypatch.setenv("AIRFLOW__AKOOL__WEBHOOK_PATH_TOKEN", token)
    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_DEFAULT", conn_json(
        sb, webhook_url=f"http://127.0.0.1:{port}/akool/webhook/{token}", webhook_store_url=store_url))
    receiver = AkoolPlugin.fastapi_apps[0]["app"]
    receiver._app, receiver._error = None, None
    app = FastAPI()
    init_plugins(app)
    yield sb, serve_asgi(app, port)
    receiver._app = None


def test_deferred_task_completes_from_the_webhook_received_by_the_plugin(api_server):
    import httpx

    sb, base = api_server
    assert httpx.get(f"{base}/akool/healthz").json() == {"status": "ok"}
    started = time.monotonic()
    run = load_dag("akool_test_webhook").test()
    assert str(run.state) == "success", task_states(run)
    result = xcom(run, "animate")
    assert result["state"] == "completed" and result["result_url"]
    def final_delivery():
        found = [d for d in sb.webhook_deliveries() if d["_id"] == result["job_id"] and d["status"] == 3]
        return found[0] if found else None

    # The sandbox records a delivery once it has read the plugin's answer: give it a moment.
    deadline = time.monotonic() + 5
    while not (final_delivery() or {}).get("delivered") and time.monotonic() < deadline:
        time.sleep(0.05)
    final = final_delivery()
    assert final and final["delivered"] and final["http_status"] == 200, sb.webhook_deliveries()
    # The trigger read the event store first, not the API (it used to poll on arrival too): one
    # status call, the one the callback asks for (what its body does not carry).
    assert sum(n for p, n in sb.stats()["polls_by_path"].items() if "infobymodelid" in p) == 1
    # poll_interval is 30 s (webhook fallback 150 s): only the callback can finish this quickly.
    assert time.monotonic() - started < 20
    # A forged body is rejected by the receiver mounted in the "API server".
    forged = httpx.post(f"{base}/akool/webhook/tok_{'x' * 36}", json={"signature": "0" * 40, "dataEncrypt": "AAAA",
                                                                     "timestamp": 1, "nonce": "1"})
    assert forged.status_code == 400


def test_a_verdict_completed_by_webhook_keeps_its_conclusion_and_credits(api_server):
    """Akool's callback says only _id/status/type/url: the verdict and the cost come from one status call."""
    sb, _ = api_server
    started = time.monotonic()
    run = load_dag("akool_test_webhook_moderation").test()
    assert str(run.state) == "success", task_states(run)
    result = xcom(run, "moderate")
    (job,) = [j for j in sb.jobs("moderation") if j["_id"] == result["job_id"]]
    assert result["state"] == "completed"
    assert result["conclusion"] == "Compliant" and result["detail"]
    assert result["credits"] == job["cost"] and job["cost"] > 0, (result, job)
    assert any(d["_id"] == result["job_id"] and d["status"] == 3 for d in sb.webhook_deliveries())
    # poll_interval is 30 s: only the callback (plus the one status call it asks for) is this quick.
    assert time.monotonic() - started < 20
    polls = sum(n for p, n in sb.stats()["polls_by_path"].items() if "analysis/infobyid" in p)
    assert polls == 1, sb.stats()["polls_by_path"]  # the one after the callback, for the verdict and cost


def test_receiver_answers_503_until_configured(airflow, monkeypatch):
    import httpx
    from airflow.api_fastapi.app import init_plugins
    from fastapi import FastAPI

    from akool_flows.airflow.plugin import AkoolPlugin

    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_DEFAULT", json.dumps(
        {"conn_type": "akool", "host": airflow.base_url, "extra": {"token": "only-a-token-123"}}))
    receiver = AkoolPlugin.fastapi_apps[0]["app"]
    receiver._app, receiver._error = None, None
    app = FastAPI()
    init_plugins(app)
    import asyncio

    async def call():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://airflow") as c:
            return await c.post("/akool/webhook", json={})

    answer = asyncio.run(call())
    assert answer.status_code == 503
    assert "Client Secret" in answer.json()["detail"] and "only-a-token" not in answer.text
    receiver._app, receiver._error = None, None


def test_tasks_on_one_worker_share_the_token_exchange(airflow):
    from akool_flows.airflow.operators import AkoolTtsOperator

    sb = airflow
    before = sb.stats()["requests_by_path"].get("/api/open/v3/getToken", 0)
    for i in range(5):  # five mapped tasks run one after another by one worker process
        op = AkoolTtsOperator(task_id=f"speak_{i}", input_text=f"Hello {i}", voice_id="LcfcDJNUP1GQjkzn1xUU",
                              deferrable=False, poll_interval=0.1)
        assert op.execute({})["state"] == "completed"
    exchanges = sb.stats()["requests_by_path"].get("/api/open/v3/getToken", 0) - before
    assert exchanges <= 1, exchanges
