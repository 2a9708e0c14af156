"""The akool plugin inside Airflow's real API server app (``create_app``): the connection list's
Test button and the webhook path token in the access log."""

from __future__ import annotations

import os

import pytest

TOKEN = "pathtoken_" + "Q" * 30


@pytest.fixture(scope="module")
def api_app(airflow_db):
    """Airflow's own API app with its plugins, Test enabled and every user an admin."""
    env = {"AIRFLOW__CORE__TEST_CONNECTION": "Enabled", "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
           "AIRFLOW__AKOOL__WEBHOOK_PATH_TOKEN": TOKEN}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    client = TestClient(create_app("core"))
    client.headers["Authorization"] = "Bearer " + client.get("/auth/token").json()["access_token"]
    yield client
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture
def stored_akool_connection(airflow):
    """An ``akool`` connection stored in the metadata DB (port NULL, as the form saves it)."""
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    sb = airflow
    conn_id = "akool_ui_test"
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.add(Connection(conn_id=conn_id, conn_type="akool", host=sb.base_url, login=sb.client_id,
                               password=sb.client_secret, extra='{"detect_url": "%s"}' % sb.detect_url))
    yield sb, conn_id
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()


def test_the_connection_lists_test_button_works_for_an_akool_connection(api_app, stored_akool_connection):
    sb, conn_id = stored_akool_connection
    row = api_app.get(f"/api/v2/connections/{conn_id}").json()
    assert row["port"] is None
    # What the 3.3 UI posts from the list row: Number(null) turns the empty port into 0 and the
    # password is the masked sentinel.
    body = {"connection_id": conn_id, "conn_type": "akool", "host": row["host"], "login": row["login"],
            "password": "***", "port": 0, "schema": row["schema"], "extra": row["extra"]}
    answer = api_app.post("/api/v2/connections/test", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] is True, answer.json()
    assert "credit balance" in answer.json()["message"]
    assert sb.client_secret not in answer.text


def test_other_connection_types_keep_airflows_port_check(api_app, airflow):
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == "http_ui_test").delete()
        session.add(Connection(conn_id="http_ui_test", conn_type="http", host="example.invalid", password="pw"))
    answer = api_app.post("/api/v2/connections/test", json={
        "connection_id": "http_ui_test", "conn_type": "http", "host": "example.invalid", "password": "***",
        "port": 0})
    assert answer.status_code == 400 and "differs" in answer.text


def test_the_webhook_path_token_stays_out_of_the_access_log(api_app, airflow, capfd):
    capfd.readouterr()
    answer = api_app.post(f"/akool/webhook/{TOKEN}", json={"signature": "0" * 40, "dataEncrypt": "AAAA",
                                                            "timestamp": 1, "nonce": "1"})
    assert answer.status_code in (400, 503)  # reached the receiver (rejected body, or not configured)
    api_app.post("/akool/webhook/wrong-token-but-secret-looking", json={})
    out = "".join(capfd.readouterr())
    assert "request finished" in out and "/akool/webhook/***" in out, out[-2000:]
    assert TOKEN not in out and "wrong-token-but-secret-looking" not in out


def test_record_based_access_logs_are_redacted_too(caplog):
    import logging

    from akool_flows.airflow.api_server import install_access_log_filter

    install_access_log_filter()
    with caplog.at_level(logging.INFO, logger="uvicorn.access"):
        # uvicorn's own access line format and arguments.
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "POST",
                                                  f"/akool/webhook/{TOKEN}/intent.sig", "1.1", 200)
    assert caplog.messages == ['127.0.0.1:5 - "POST /akool/webhook/*** HTTP/1.1" 200']
