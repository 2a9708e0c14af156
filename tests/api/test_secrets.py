"""Tokens, API keys and client secrets never show up in logs, reprs or exception text.

One test drives every failure path we know (business codes, auth failures, getToken failures,
HTTP 5xx/429, dropped connections, timeouts, refused connections, malformed answers, bad input,
failed and timed-out waits) through every sender and every auth mode, with all loggers at
DEBUG, and greps everything a user could see for the three secrets.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from akool_flows.api import AkoolError

from .helpers import (
    API_KEY,
    CLIENT_ID,
    CLIENT_SECRET,
    DRIVERS,
    SECRETS,
    TOKEN,
    akool_responder,
    make_client,
    refused_url,
    scripted_server,
)

AUTH_MODES = {
    "token": {"token": TOKEN},
    "api_key": {"api_key": API_KEY},
    "client_credentials": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
}

ANSWERS = [
    ("json", 200, {"code": 1101, "msg": "Invalid authorization or The request token has expired"}),
    ("json", 200, {"code": 1003, "msg": "Parameter error"}),
    ("json", 200, {"code": 1006, "msg": "Your quota is not enough"}),
    ("json", 500, {"error": "boom"}),
    ("raw", 429, b""),
    ("raw", 200, b"not json at all"),
    ("drop",),
    ("hang", 2.0),
]


def _texts_of(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    if isinstance(exc, AkoolError):
        texts.append(repr(exc.to_dict()))
    for attr in ("status", "last_status"):
        if getattr(exc, attr, None) is not None:
            texts.append(repr(getattr(exc, attr)))
    return texts


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("auth", sorted(AUTH_MODES))
async def test_secrets_never_leak(driver, auth, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, httpx/httpcore/aiohttp included
    seen: list[str] = []
    failures = 0

    async def expect_failure(drv, op, *args, **kwargs):
        nonlocal failures
        try:
            await drv(op, *args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure's text is inspected
            failures += 1
            seen.extend(_texts_of(exc))
        else:
            raise AssertionError(f"{op} should have failed")

    def failing_job(req):
        # Everything works except that jobs end in status 4 with Akool's message.
        if req.path == "/api/open/v3/content/analysis/infobyid":
            return "json", 200, {"code": 1000, "msg": "OK", "data": {
                "_id": "j1", "status": 4, "error_reasons": [{"code": 1212, "message": "Sentiment analysis fails"}]}}
        if req.path == "/api/open/v3/audio/infobymodelid":
            return "json", 200, {"code": 1000, "msg": "OK", "data": {"_id": "j2", "status": 2}}
        return akool_responder(req)

    with scripted_server(failing_job) as srv:
        drv = make_client(driver, srv.url, timeout=0.15, **AUTH_MODES[auth])
        seen += [repr(drv.client), str(drv.client), repr(drv.client.credentials)]
        try:
            for answer in ANSWERS:
                # An answer for getToken (client credentials) or for the call itself.
                srv.then(*[answer] * 6)
                await expect_failure(drv, "submit", "moderation", content="hello", type=4)
                srv.script.clear()
                srv.then(*[answer] * 6)
                await expect_failure(drv, "status", "moderation", "j1")
                srv.script.clear()
            await expect_failure(drv, "submit", "moderation", content="", type=4)
            await expect_failure(drv, "submit", "no_such_kind")
            await expect_failure(drv, "run", "moderation", content="hello", type=4, poll_interval=0.01)
            await expect_failure(drv, "wait", "tts", "j2", poll_interval=0.01, timeout=0.05)
        finally:
            await drv.close()
    # Nothing listens: connect errors.
    drv = make_client(driver, refused_url(), **AUTH_MODES[auth])
    try:
        await expect_failure(drv, "status", "moderation", "j1")
        await expect_failure(drv, "face_detect", image_url="https://cdn.test/a.jpg")
    finally:
        await drv.close()

    assert failures == 2 * len(ANSWERS) + 6
    seen.append(caplog.text)
    seen.extend(r.getMessage() for r in caplog.records)
    seen.extend(repr(r.args) for r in caplog.records)
    assert any("failed" in r.getMessage() for r in caplog.records)  # the paths did log
    blob = "\n".join(seen)
    for secret in SECRETS:
        assert secret not in blob
        assert secret[4:-4] not in blob  # not even partially


def test_credentials_repr_and_client_repr_hide_secrets():
    from akool_flows.api import AkoolClient
    from akool_flows.api.client import Credentials

    creds = Credentials(token=TOKEN, api_key=API_KEY, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    with AkoolClient(client_id=CLIENT_ID, client_secret=CLIENT_SECRET) as client:
        texts = [repr(creds), str(creds), repr(client), str(client)]
    for secret in SECRETS:
        assert all(secret not in t for t in texts)
    assert "client_credentials" in repr(client)
