"""Provider registration, the connection type and form, the hook, secrets, import cost, CLI runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import AIRFLOW_BIN, conn_json


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    # cwd outside the repo: a source checkout's *.egg-info on sys.path would show the provider twice.
    return subprocess.run([str(AIRFLOW_BIN), *args], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=timeout, cwd=os.environ["AIRFLOW_HOME"])


# --- registration -----------------------------------------------------------------------------

def test_provider_info_matches_airflows_schema():
    import importlib.resources

    import jsonschema

    from akool_flows.airflow import get_provider_info

    schema = json.loads(importlib.resources.files("airflow").joinpath("provider_info.schema.json").read_text())
    info = get_provider_info()
    jsonschema.validate(info, schema)
    assert info["package-name"] == "akool-flows"  # must equal the distribution name


def test_airflow_providers_list_shows_the_provider_and_its_hook(airflow_db):
    listed = _cli("providers", "list", "--output", "json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    providers = {p["package_name"]: p for p in json.loads(listed.stdout)}
    assert "akool-flows" in providers and providers["akool-flows"]["version"] == "0.1.0"
    hooks = _cli("providers", "hooks", "--output", "json")
    assert hooks.returncode == 0, hooks.stderr[-2000:]
    akool = [h for h in json.loads(hooks.stdout) if h.get("connection_type") == "akool"]
    assert akool and akool[0]["class"] == "akool_flows.airflow.hooks.AkoolHook"


def test_connection_type_and_form_are_registered(airflow_db):
    from airflow.providers_manager import ProvidersManager
    from airflow.sdk.providers_manager_runtime import ProvidersManagerTaskRuntime

    pm = ProvidersManager()  # the API server's view: the connection form
    hook = ProvidersManagerTaskRuntime().hooks["akool"]  # the task runtime's view: the hook class
    assert hook.hook_class_name == "akool_flows.airflow.hooks.AkoolHook"
    assert hook.connection_id_attribute_name == "akool_conn_id"
    widgets = pm.connection_form_widgets
    assert widgets["extra__akool__token"].is_sensitive and widgets["extra__akool__api_key"].is_sensitive
    assert not widgets["extra__akool__detect_url"].is_sensitive
    behaviour = pm.field_behaviours["akool"]
    assert behaviour["relabeling"]["login"] == "Client ID" and behaviour["relabeling"]["password"] == "Client Secret"
    assert "port" in behaviour["hidden_fields"]


def test_plugin_is_registered_through_the_entry_point(airflow_db):
    listed = _cli("plugins", "--output", "json")
    assert listed.returncode == 0, listed.stderr[-2000:]
    plugins = [p for p in json.loads(listed.stdout) if p["name"] == "akool"]
    assert len(plugins) == 1 and "akool_flows.airflow.plugin:AkoolPlugin" in plugins[0]["source"]
    assert plugins[0]["fastapi_apps"][0]["url_prefix"] == "/akool"


# --- the hook ---------------------------------------------------------------------------------

def test_hook_reads_a_json_connection_from_the_environment(airflow):
    from akool_flows.airflow.hooks import AkoolHook

    sb = airflow
    kwargs = AkoolHook().client_kwargs
    assert kwargs["base_url"] == sb.base_url and kwargs["detect_url"] == sb.detect_url
    assert kwargs["client_id"] == sb.client_id and kwargs["client_secret"] == sb.client_secret
    ok, message = AkoolHook().test_connection()
    assert ok, message
    assert "credit balance" in message and sb.client_secret not in message


def test_hook_reads_a_uri_connection(monkeypatch, airflow_db):
    from akool_flows.airflow.hooks import AkoolHook

    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_URI", "akool://my-id:my-secret-value@127.0.0.1:8765/?token=tok-12345")
    kwargs = AkoolHook("akool_uri").client_kwargs
    assert kwargs["base_url"] == "http://127.0.0.1:8765"
    assert kwargs["client_id"] == "my-id" and kwargs["token"] == "tok-12345"


@pytest.mark.parametrize("extra, field", [({"tokn": "x"}, "extra"), ({"timeout": "soon"}, "timeout")])
def test_hook_names_the_bad_connection_field(monkeypatch, airflow_db, extra, field):
    from akool_flows.airflow.hooks import AkoolHook
    from akool_flows.api.errors import ValidationError

    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_BAD", json.dumps(
        {"conn_type": "akool", "host": "http://127.0.0.1:9", "login": "id", "password": "secret", "extra": extra}))
    with pytest.raises(ValidationError) as err:
        AkoolHook("akool_bad").client_kwargs
    assert err.value.field == field and "akool_bad" in str(err.value)


def test_hook_without_credentials_says_what_to_set(monkeypatch, airflow_db):
    from akool_flows.airflow.hooks import AkoolHook
    from akool_flows.api.errors import ValidationError

    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_EMPTY", json.dumps({"conn_type": "akool", "host": "http://127.0.0.1:9"}))
    with pytest.raises(ValidationError, match="Client ID .* Client Secret"):
        AkoolHook("akool_empty").client_kwargs


def test_test_connection_fails_cleanly_without_leaking_the_secret(monkeypatch, airflow):
    from akool_flows.airflow.hooks import AkoolHook

    sb = airflow
    wrong = "wrong-secret-0123456789ab"
    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_WRONG", json.dumps(
        {"conn_type": "akool", "host": sb.base_url, "login": sb.client_id, "password": wrong}))
    ok, message = AkoolHook("akool_wrong").test_connection()
    assert not ok and "Authentication" in message
    assert wrong not in message


def test_connection_secrets_are_registered_with_the_log_masker(monkeypatch, airflow_db):
    from airflow.sdk._shared.secrets_masker.secrets_masker import redact

    from akool_flows.airflow.hooks import AkoolHook

    secret, token, key = "client-secret-abcdef123", "bearer-token-zyx987654", "api-key-qwerty55555"
    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_MASKED", json.dumps(
        {"conn_type": "akool", "host": "http://127.0.0.1:9", "login": "id", "password": secret,
         "extra": {"token": token, "api_key": key}}))
    hook = AkoolHook("akool_masked")
    _ = hook.client_kwargs
    line = f"calling with {secret} and {token} and {key}"
    assert redact(line) == "calling with *** and *** and ***"
    assert secret not in repr(hook) and secret not in repr(hook.get_client())


# --- import cost ------------------------------------------------------------------------------

_IMPORT_PROBE = """
import sys, time
t0 = time.perf_counter(); import airflow.sdk; t1 = time.perf_counter()
import akool_flows.airflow.operators, akool_flows.airflow.sensors, akool_flows.airflow.batch
t2 = time.perf_counter()
heavy = sorted(m for m in ("pandas", "ipywidgets", "akool_flows.sandbox", "akool_flows.batch", "aiohttp",
                           "sqlalchemy.orm.decl_api_akool") if m in sys.modules)
print(f"{t1 - t0:.4f} {t2 - t1:.4f} {','.join(heavy)}")
"""


def test_importing_the_operators_adds_no_pandas_or_widgets_and_little_time(airflow_db):
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", _IMPORT_PROBE], capture_output=True, text=True, timeout=120,
                             env=os.environ.copy(), cwd=os.environ["AIRFLOW_HOME"])
        assert out.returncode == 0, out.stderr[-2000:]
        base, ours, heavy = (out.stdout.strip().split(" ") + [""])[:3]
        runs.append((float(base), float(ours), heavy))
    heavy = {h for _, _, h in runs}
    assert heavy == {""}, f"operator import pulled in: {heavy}"
    best = min(r[1] for r in runs)
    print(f"\nairflow.sdk import {min(r[0] for r in runs):.3f}s; akool operators + sensor + batch on top: {best:.3f}s")
    assert best < 0.5


# --- the CLI, as a user runs it ---------------------------------------------------------------

@pytest.mark.slow
def test_airflow_dags_test_cli_runs_the_tts_talking_photo_chain(airflow):
    sb = airflow
    done = _cli("dags", "test", "akool_tts_talking_photo",
                env={"AIRFLOW_CONN_AKOOL_DEFAULT": conn_json(sb)}, timeout=300)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert "running trigger in line" in output  # the deferrable path, trigger included
    assert "state=success" in output or "DagRun Finished" in output
    assert sb.create_count("tts") == 1 and sb.create_count("talking_photo") == 1
    assert sb.client_secret not in output
