"""URLs in exception text, reprs and logs lose userinfo, query values and path tokens.

Akool's messages can echo the URLs a create was given (a webhookUrl with the receiver's path
token, a presigned media URL); the client's own messages quote the base URL it was given.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from akool_flows.api import AkoolClient, AsyncAkoolClient, RetryPolicy
from akool_flows.api import errors as E
from akool_flows.api.redact import redact_url, redact_urls_in

from .helpers import DRIVERS, TOKEN, akool_responder, make_client, scripted_server

PATH_TOKEN = "Zk3v_9QpL2xYb7TcWm4Rn8sJd1HfGa6EuP0oIq5lBy"  # secrets.token_urlsafe(32)-like
HOOK = f"https://hooks.example.com/webhook/{PATH_TOKEN}"
SIGNED = "https://media.example.com/in/face.png?X-Amz-Signature=9f2ce0a1b2c3d4e5&X-Amz-Expires=600"


@pytest.mark.parametrize("url,expected", [
    (HOOK, "https://hooks.example.com/webhook/***"),
    ("https://user:pa55@openapi.akool.com/api/open/v3/content/video/createbytalkingphoto",
     "https://openapi.akool.com/api/open/v3/content/video/createbytalkingphoto"),
    ("http://u:p@[::1]:8080/hook", "http://[::1]:8080/hook"),
    (SIGNED, "https://media.example.com/in/face.png?X-Amz-Signature=***&X-Amz-Expires=***"),
    ("https://h/hook?Zk3v9QpL2xYb7TcWm4Rn8", "https://h/hook?***"),
    ("https://h/a#access_token=abc", "https://h/a#***"),
    ("https://h/x/0123456789abcdef0123456789abcdef", "https://h/x/***"),  # hex
    ("https://h/eyJhbGciOiJIUzI1NiJ9.eyJpZCI6IjYyYTA2In0.sig", "https://h/***"),  # a JWT
    ("https://h/api/open/v3/faceswap/result/listbyids?_ids=a", "https://h/api/open/v3/faceswap/result/listbyids?_ids=***"),
    ("postgresql://scott:tiger@db:5432/events", "postgresql://db:5432/events"),
    ("sqlite:///events.db", "sqlite:///events.db"),
    ("/webhook/" + PATH_TOKEN, "/webhook/***"),
    ("not a url", "not a url"),
    ("http://[::1", "http://***"),
    ("http://h:port/", "http://***"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_redact_urls_in_text_and_odd_input():
    text = f"webhookUrl '{HOOK}' unreachable; also see {SIGNED}."
    out = redact_urls_in(text)
    assert PATH_TOKEN not in out and "9f2ce0a1" not in out
    assert out.startswith("webhookUrl 'https://hooks.example.com/webhook/***' unreachable; also see https://")
    assert redact_url(None) == "None" and redact_url(12) == "12" and redact_urls_in("") == ""


def _texts(exc: BaseException) -> str:
    return "\n".join([str(exc), repr(exc), repr(exc.to_dict()), "".join(traceback.format_exception(exc))])


@pytest.mark.parametrize("driver", DRIVERS)
async def test_akool_messages_echoing_urls_are_redacted_in_errors_and_logs(driver, caplog):
    caplog.set_level(logging.DEBUG, logger="akool_flows")
    echo = f"webhookUrl {HOOK} is not reachable, image {SIGNED} expired"
    with scripted_server(lambda req: ("json", 200 if req.method == "POST" else 500, {"code": 1003, "msg": echo})) as srv:
        drv = make_client(driver, srv.url)
        try:
            with pytest.raises(E.BadRequestError) as created:
                await drv("submit", "talking_photo", talking_photo_url=SIGNED,
                          audio_url="https://cdn.test/a.mp3", webhookUrl=HOOK)
            with pytest.raises(E.ServerError) as polled:  # 500: retried, so logged on the way
                await drv("status", "talking_photo", "65f8017f56559aa67f0ecde7")
        finally:
            await drv.close()
    assert srv.requests[0].json["webhookUrl"] == HOOK  # what is sent is untouched
    blob = "\n".join([_texts(created.value), _texts(polled.value), caplog.text])
    assert PATH_TOKEN not in blob and "9f2ce0a1b2c3d4e5" not in blob
    assert "https://hooks.example.com/webhook/***" in str(created.value)
    assert "failed" in caplog.text


@pytest.mark.parametrize("driver", DRIVERS)
async def test_failed_job_message_echoing_a_url_is_redacted(driver):
    def responder(req):
        if req.path == "/api/open/v3/content/video/infobymodelid":
            return "json", 200, {"code": 1000, "msg": "OK", "data": {
                "_id": "j1", "video_status": 4, "error_msg": f"cannot fetch {SIGNED}"}}
        return akool_responder(req)

    with scripted_server(responder) as srv:
        drv = make_client(driver, srv.url)
        try:
            with pytest.raises(E.JobFailedError) as info:
                await drv("wait", "talking_photo", "j1", poll_interval=0.01, raise_on_failure=True)
        finally:
            await drv.close()
    assert "9f2ce0a1b2c3d4e5" not in _texts(info.value) and "X-Amz-Signature=***" in str(info.value)


@pytest.mark.parametrize("cls", [AkoolClient, AsyncAkoolClient])
@pytest.mark.parametrize("name", ["base_url", "detect_url"])
def test_userinfo_in_a_base_url_is_refused_without_echoing_it(cls, name):
    for url in ("https://akool:s3cr3t-pa55@openapi.akool.com", f"ftp://akool:s3cr3t-pa55@openapi.akool.com/{PATH_TOKEN}"):
        with pytest.raises(E.ValidationError) as info:
            cls(**{name: url}, token=TOKEN)
        assert "s3cr3t-pa55" not in _texts(info.value) and PATH_TOKEN not in _texts(info.value)
        assert "openapi.akool.com" in str(info.value)


def test_client_repr_redacts_its_base_url():
    client = AkoolClient(base_url=f"https://gw.example.com/akool/{PATH_TOKEN}", token=TOKEN,
                         retry=RetryPolicy(max_attempts=1))
    try:
        assert PATH_TOKEN not in repr(client) and "https://gw.example.com/akool/***" in repr(client)
    finally:
        client.close()


def test_invalid_url_fields_are_redacted_in_validation_messages():
    from akool_flows.api.kinds import get_kind
    from akool_flows.api.streaming import set_params_command

    bad_hook = f"ftp://hooks.example.com/webhook/{PATH_TOKEN}"
    with pytest.raises(E.ValidationError) as info:
        get_kind("talking_photo").validate({"talking_photo_url": "https://cdn.test/p.png",
                                            "audio_url": "https://cdn.test/a.mp3", "webhookUrl": bad_hook})
    assert "webhookUrl" in str(info.value) and PATH_TOKEN not in _texts(info.value)
    with pytest.raises(E.ValidationError) as info:
        set_params_command(vurl=bad_hook)
    assert PATH_TOKEN not in _texts(info.value)


@pytest.mark.filterwarnings("ignore:Query string argument")  # pysqlite ignores sslkey; the URL is the point
def test_webhook_store_repr_redacts_its_database_url(tmp_path):
    pytest.importorskip("sqlalchemy")
    from akool_flows.webhook.store import WebhookEventStore

    store = WebhookEventStore(f"sqlite:///{tmp_path}/events.db?timeout=30&sslkey=Zk3v9QpL2xYb7TcWm")
    try:
        assert "Zk3v9QpL2xYb7TcWm" not in repr(store) and "events.db" in repr(store)
    finally:
        store.close()


@pytest.mark.filterwarnings("ignore:Query string argument")
def test_webhook_serve_banner_redacts_the_store_url(tmp_path, monkeypatch, capsys):
    uvicorn = pytest.importorskip("uvicorn")
    from akool_flows.cli import main

    from .helpers import CLIENT_ID, CLIENT_SECRET

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: None)  # the banner is printed before serving
    monkeypatch.setenv("AKOOL_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AKOOL_CLIENT_SECRET", CLIENT_SECRET)
    main(["webhook", "serve", "--port", "18080", "--store", f"sqlite:///{tmp_path}/ev.db?sslkey=Zk3v9QpL2xYb7TcWm"])
    err = capsys.readouterr().err
    assert "ev.db?sslkey=***" in err and "Zk3v9QpL2xYb7TcWm" not in err
