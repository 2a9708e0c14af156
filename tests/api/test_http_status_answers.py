"""Akool's envelope on non-2xx answers: the business code decides the class (a 401 + 1101
refreshes an exchanged token like a 200 + 1101), code, message and HTTP status survive, and
`Retry-After` on 429/503 stretches the retry delay without ever re-sending a create that may
have been processed.
"""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from akool_flows.api import RetryPolicy
from akool_flows.api import errors as E
from akool_flows.api.retry import parse_retry_after

from .helpers import CLIENT_ID, CLIENT_SECRET, DRIVERS, TOKEN, akool_responder, make_client, scripted_server

STATUS_PATH = "/api/open/v3/content/analysis/infobyid"
CREATE_PATH = "/api/open/v3/content/analysis/sentiment"
TOKEN_PATH = "/api/open/v3/getToken"
EXPIRED = {"code": 1101, "msg": "Invalid authorization or The request token has expired"}
ONE_TRY = RetryPolicy(max_attempts=1)
FAST = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002)


def _fail_first(path: str, *answers):
    """Responder: the given answers for the first requests to `path`, then the fake Akool."""
    pending = list(answers)

    def responder(req):
        if req.path == path and pending:
            return pending.pop(0)
        return akool_responder(req)

    return responder


async def _call(drv, op: str):
    try:
        if op == "submit":
            return await drv("submit", "moderation", content="hello", type=4)
        return await drv("status", "moderation", "65f8180c24d9989e93dde3b6")
    finally:
        await drv.close()


# --- 401 + 1101 --------------------------------------------------------------------------------

@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("op,path", [("status", STATUS_PATH), ("submit", CREATE_PATH)])
async def test_http_401_with_code_1101_exchanges_the_token_again_once(driver, op, path):
    with scripted_server(_fail_first(path, ("json", 401, EXPIRED))) as srv:
        result = await _call(make_client(driver, srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                         retry=ONE_TRY), op)
    assert srv.count(TOKEN_PATH) == 2 and srv.count(path) == 2
    assert (result.job_id if op == "submit" else result.conclusion)
    # The retried request carries the freshly exchanged token.
    assert srv.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("driver", DRIVERS)
async def test_http_401_twice_gives_up_after_one_refresh(driver):
    with scripted_server(_fail_first(STATUS_PATH, *[("json", 401, EXPIRED)] * 5)) as srv:
        with pytest.raises(E.AuthenticationError) as info:
            await _call(make_client(driver, srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET), "status")
    assert srv.count(TOKEN_PATH) == 2 and srv.count(STATUS_PATH) == 2
    assert (info.value.code, info.value.http_status) == (1101, 401)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_http_401_with_a_given_token_is_an_authentication_error_at_once(driver):
    with scripted_server(lambda req: ("json", 401, EXPIRED)) as srv:
        with pytest.raises(E.AuthenticationError) as info:
            await _call(make_client(driver, srv.url, token=TOKEN), "submit")
    exc = info.value
    assert (exc.code, exc.message, exc.http_status) == (1101, EXPIRED["msg"], 401)
    assert not exc.may_have_created and srv.count() == 1


# --- code, message and status survive -----------------------------------------------------------

HTTP_ERRORS = [
    # (http status, body, class, may_have_created)
    (400, {"code": 1003, "msg": "Parameter error: content is empty"}, E.BadRequestError, False),
    (402, {"code": 1104, "msg": "Insufficient credit balance"}, E.QuotaError, False),
    (403, {"code": 1200, "msg": "The account has been banned"}, E.PermissionDeniedError, False),
    (404, {"code": 1008, "msg": "content not exist"}, E.NotFoundError, False),
    (401, {"msg": "gateway says no"}, E.AuthenticationError, False),
    (418, {"code": 7, "msg": "teapot"}, E.ProcessingError, False),
    (429, {"code": 1005, "msg": "Operation is too frequent"}, E.RateLimitError, False),
    (500, {"code": 1015, "msg": "Video processing error"}, E.ServerError, True),
    (503, {"code": 1215, "msg": "liveAvatar processing is busy"}, E.ServerError, True),
]


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("status,body,cls,may_have_created", HTTP_ERRORS)
async def test_http_errors_keep_akools_code_message_and_status(driver, status, body, cls, may_have_created):
    with scripted_server(lambda req: ("json", status, body)) as srv:
        with pytest.raises(cls) as info:
            await _call(make_client(driver, srv.url, retry=ONE_TRY), "submit")
    exc = info.value
    assert (exc.code, exc.message, exc.http_status) == (body.get("code"), body["msg"], status)
    assert exc.may_have_created is may_have_created and exc.endpoint == CREATE_PATH
    assert f"HTTP {status}" in str(exc) and body["msg"] in str(exc)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_create_answered_201_is_created(driver):
    with scripted_server(_fail_first(CREATE_PATH, ("json", 201, {"code": 1000, "msg": "OK",
                                                                  "data": {"_id": "65f8017f56559aa67f0ecde7"}}))) as srv:
        job = await _call(make_client(driver, srv.url), "submit")
    assert job.job_id == "65f8017f56559aa67f0ecde7" and srv.count(CREATE_PATH) == 1


@pytest.mark.parametrize("driver", DRIVERS)
async def test_a_create_answered_303_may_have_created_and_is_not_followed(driver):
    answer = ("raw", 303, b"", {"Location": "/api/open/v3/content/analysis/infobyid?_id=65f8017f56559aa67f0ecde7"})
    with scripted_server(lambda req: answer) as srv:
        with pytest.raises(E.MalformedResponseError) as info:
            await _call(make_client(driver, srv.url), "submit")
    assert info.value.may_have_created and info.value.http_status == 303
    assert srv.count() == 1  # neither re-sent nor followed


# --- Retry-After ------------------------------------------------------------------------------

def _in(seconds: float) -> str:
    return formatdate(time.time() + seconds, usegmt=True)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("op,path,form", [("status", STATUS_PATH, "seconds"), ("submit", CREATE_PATH, "seconds"),
                                          ("status", STATUS_PATH, "http-date")])
async def test_429_retry_after_is_honoured_and_a_refused_create_is_retried(driver, op, path, form):
    # An HTTP date has whole-second precision: ask for 2.x s, so at least ~1 s remains.
    header = "1" if form == "seconds" else _in(2.2)
    with scripted_server(_fail_first(path, ("json", 429, {"code": 1005, "msg": "slow down"},
                                            {"Retry-After": header}))) as srv:
        started = time.monotonic()
        result = await _call(make_client(driver, srv.url, retry=FAST), op)
        elapsed = time.monotonic() - started
    assert result is not None and srv.count(path) == 2
    assert elapsed >= 0.95  # FAST's own backoff is 2 ms


@pytest.mark.parametrize("driver", DRIVERS)
async def test_503_retry_after_stretches_status_retries(driver):
    with scripted_server(_fail_first(STATUS_PATH, ("raw", 503, b"busy", {"Retry-After": "1"}))) as srv:
        started = time.monotonic()
        st = await _call(make_client(driver, srv.url, retry=FAST), "status")
        elapsed = time.monotonic() - started
    assert st.conclusion == "Compliant" and srv.count(STATUS_PATH) == 2 and elapsed >= 0.95


@pytest.mark.parametrize("driver", DRIVERS)
async def test_503_on_a_create_is_never_retried_even_with_retry_after(driver):
    with scripted_server(lambda req: ("json", 503, {"code": 1215, "msg": "busy"}, {"Retry-After": "0"})) as srv:
        with pytest.raises(E.ServerError) as info:
            await _call(make_client(driver, srv.url, retry=FAST), "submit")
    exc = info.value
    assert exc.may_have_created and exc.retry_after == 0 and srv.count(CREATE_PATH) == 1


@pytest.mark.parametrize("driver", DRIVERS)
async def test_retry_after_beyond_the_policy_cap_raises_at_once(driver):
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.001, max_backoff=0.002, max_retry_after=5)
    with scripted_server(lambda req: ("json", 429, {"code": 1005, "msg": "later"}, {"Retry-After": "3600"})) as srv:
        started = time.monotonic()
        with pytest.raises(E.RateLimitError) as info:
            await _call(make_client(driver, srv.url, retry=policy), "status")
    assert info.value.retry_after == 3600 and srv.count() == 1 and time.monotonic() - started < 3


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after("120") == 120 and parse_retry_after(" 0 ") == 0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30)
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0  # already past
    for bad in (None, "", "-5", "soon", "nan", "inf", "Mon, 99 Foo 2024 25:61:00 GMT"):
        assert parse_retry_after(bad) is None
