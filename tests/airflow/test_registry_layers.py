"""One registry drives every layer: walk `KINDS` and prove each layer covers each kind, with no list
of kinds kept by hand anywhere (here included: every loop below is over the registry).

Layers: the client's create/status/cancel calls, the sandbox's routes (real HTTP), the Airflow
operators, the CLI's ``kinds`` command, the notebook's `BatchApp`, the webhook event parser.
Lives under tests/airflow because importing the operators needs the Airflow environment that
this folder's conftest sets up.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from akool_flows.api import AkoolClient, RetryPolicy
from akool_flows.api import endpoints
from akool_flows.api.kinds import KINDS
from akool_flows.sandbox import Sandbox, SandboxConfig
from akool_flows.webhook import WebhookEvent


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig(queue_seconds=0.02, job_seconds=0.05, session_time_scale=0.0005, seed=0)) as box:
        yield box


@pytest.fixture(scope="module")
def client(sb):
    c = AkoolClient(base_url=sb.base_url, detect_url=sb.detect_url, token=sb.token,
                    retry=RetryPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.02))
    yield c
    c.close()


def _fields(client, kind) -> dict:
    """The registry's example, plus what the sandbox must already hold for it to be accepted."""
    fields = dict(kind.example)
    if kind.name == "image_button":  # upscales an image generated earlier
        gen = client.run("image_generate", poll_interval=0.02, timeout=10, **KINDS["image_generate"].example)
        fields["_id"] = gen.job_id
    if kind.name == "avatar_upload":  # avatar ids are unique per account
        fields["avatar_id"] = "layerwalk01"
    return fields


def test_client_and_sandbox_serve_every_kind_at_the_registrys_paths(sb, client):
    """Each kind is created and read back over real HTTP at its registry paths; its finished status
    payload parses as a webhook event naming the same job, status and result."""
    for kind in KINDS.values():
        fields = _fields(client, kind)
        call = endpoints.submit(kind.name, fields)
        assert (call.method, call.path) == ("POST", kind.create_path)
        status_call = endpoints.status(kind.name, "abc")
        where = status_call.body if kind.status_method == "POST" else status_call.params  # POST: a JSON body
        assert (status_call.method, status_call.path, dict(where)) == (
            kind.status_method, kind.status_path, {kind.status_id_param: "abc"})
        before = sb.stats()["requests_by_path"]
        job = client.submit(kind.name, **fields)
        status = client.wait(kind.name, job.job_id, poll_interval=0.02, timeout=10) if kind.waits_by_default \
            else client.status(kind.name, job.job_id)
        after = sb.stats()["requests_by_path"]
        assert after.get(kind.create_path, 0) > before.get(kind.create_path, 0), kind.name
        assert after.get(kind.status_path, 0) > before.get(kind.status_path, 0), kind.name
        assert status.job_id == job.job_id and status.kind == kind.name

        event = WebhookEvent.from_payload(sb.job_payload(job.job_id))
        assert event.job_id == job.job_id and event.status == status.status_code, kind.name
        assert event.url == (status.result_urls[0] if status.result_urls else None), kind.name
        if kind.cancellable:
            call = endpoints.cancel(kind.name, job)
            assert (call.method, call.path) == ("POST", kind.cancel_path)
            assert set(call.body) == {kind.cancel_body_field}


def test_webhook_events_read_every_kinds_status_and_result_field_names():
    """A callback that uses a kind's own status-payload names (not the docs' ``status``/``url``)."""
    for kind in KINDS.values():
        for status_field in kind.status_fields:
            for result_field in kind.result_fields or (None,):
                payload = {"_id": "j1", status_field: 3, "type": kind.webhook_type}
                if result_field:
                    payload[result_field] = "https://cdn.test/result"
                event = WebhookEvent.from_payload(payload)
                assert (event.status, event.url) == (3, "https://cdn.test/result" if result_field else None), \
                    (kind.name, status_field, result_field)


def test_every_kind_has_an_operator_a_cli_entry_and_a_notebook_form(sb, capsys, tmp_path):
    import akool_flows.airflow.operators as ops
    from akool_flows.cli import main

    w = pytest.importorskip("ipywidgets")
    assert w is not None
    from akool_flows.notebook import BatchApp

    assert main(["kinds", "--json"]) == 0
    listed = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    for kind in KINDS.values():
        operator = ops.OPERATORS[kind.name]
        assert set(operator.template_fields) == set(kind.request_model.model_fields), kind.name

        assert listed[kind.name]["create"] == f"POST {kind.create_path}"
        assert main(["kinds", kind.name, "--json"]) == 0
        assert {f["name"] for f in json.loads(capsys.readouterr().out)["fields"]} >= set(kind.field_names)

        scalars = {k: v for k, v in kind.example.items() if not isinstance(v, (list, dict))}
        nested = {k: v for k, v in kind.example.items() if isinstance(v, (list, dict))}
        app = BatchApp(pd.DataFrame([scalars]), kind.name, constants=nested, env=sb.env(),
                       ledger=tmp_path / f"{kind.name}.sqlite")
        assert set(app.fields) == set(kind.field_names), kind.name
        assert app.plan is not None and app.plan.valid_count == 1, (kind.name, app._estimate_html.value)
    assert set(ops.OPERATORS) == set(KINDS) == set(listed)
