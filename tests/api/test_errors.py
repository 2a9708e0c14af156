"""Failures surface as the right error classes, and retries happen exactly where they are safe.

Business codes come from the docs' ErrorCode table. Transport failures are produced for real
(a refused port, a server that drops the connection or never answers, garbage bodies) through
all three senders: sync httpx, async httpx and the default aiohttp sender.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from akool_flows.api import errors as E
from akool_flows.api.errors import ERROR_CODES, create_may_have_happened, error_class_for, error_from_code

from .helpers import DRIVERS, make_client, refused_url, scripted_server

DOCS = Path(__file__).resolve().parents[3] / "shared" / "akool-api-docs.md"

# The docs' ErrorCode table, with the class and retry decision each code deserves.
EXPECTED: dict[int, tuple[type[E.AkoolAPIError], bool]] = {
    1003: (E.BadRequestError, False), 1004: (E.PermissionDeniedError, False),
    1005: (E.RateLimitError, True), 1006: (E.QuotaError, False), 1007: (E.BadRequestError, False),
    1008: (E.NotFoundError, False), 1009: (E.PermissionDeniedError, False), 1010: (E.ConflictError, False),
    1011: (E.ConflictError, False), 1013: (E.ProcessingError, False), 1014: (E.NotFoundError, False),
    1015: (E.TemporaryError, True), 1016: (E.ProcessingError, False), 1017: (E.ProcessingError, False),
    1101: (E.AuthenticationError, False), 1102: (E.AuthenticationError, False),
    1103: (E.PermissionDeniedError, False), 1104: (E.QuotaError, False), 1105: (E.ProcessingError, False),
    1108: (E.ProcessingError, False), 1109: (E.NotFoundError, False), 1110: (E.ProcessingError, False),
    1111: (E.ProcessingError, False), 1112: (E.ProcessingError, False), 1200: (E.PermissionDeniedError, False),
    1201: (E.TemporaryError, True), 1202: (E.BadRequestError, False), 1203: (E.BadRequestError, False),
    1204: (E.BadRequestError, False), 1205: (E.TemporaryError, True), 1206: (E.ProcessingError, False),
    1207: (E.BadRequestError, False), 1208: (E.ProcessingError, False), 1209: (E.BadRequestError, False),
    1210: (E.BadRequestError, False), 1211: (E.TemporaryError, True), 1212: (E.ProcessingError, False),
    1213: (E.PermissionDeniedError, False), 1214: (E.TemporaryError, True), 1215: (E.TemporaryError, True),
    1216: (E.NotFoundError, False), 1217: (E.TemporaryError, True), 1218: (E.TemporaryError, True),
    1219: (E.ConflictError, False), 1220: (E.ProcessingError, False), 1221: (E.PermissionDeniedError, False),
    1222: (E.ConflictError, False), 1223: (E.QuotaError, False),
}


def _docs_error_codes() -> set[int]:
    text = DOCS.read_text(encoding="utf-8")
    section = text[text.index("# ErrorCode"):]
    section = section[:section.index("\n# ", 10)]
    return {int(c) for c in re.findall(r"\|\s*code\s*\|\s*(\d{4})\s*\|", section)} - {1000}


@pytest.mark.skipif(not DOCS.exists(), reason="docs not available")
def test_every_docs_error_code_is_known_and_classified():
    documented = _docs_error_codes()
    assert len(documented) == 48
    assert documented == set(ERROR_CODES) - {1000} == set(EXPECTED)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_code_maps_to_class_and_retry_flag(code):
    cls, retryable = EXPECTED[code]
    assert error_class_for(code) is cls
    exc = error_from_code(code, "", "/api/open/v3/x")
    assert type(exc) is cls and exc.code == code and exc.retryable is retryable
    assert exc.message == ERROR_CODES[code]  # empty msg -> the docs' description
    # A business answer proves the request was processed and refused: nothing was created.
    assert exc.may_have_created is False and create_may_have_happened(exc) is False
    assert f"[{code}]" in str(exc) and "/api/open/v3/x" in str(exc)


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("code", [1003, 1006, 1101, 1104, 1200, 1005, 1015, 1216])
async def test_business_codes_raise_typed_errors_through_every_sender(driver, code):
    cls, retryable = EXPECTED[code]
    with scripted_server(lambda req: ("json", 200, {"code": code, "msg": f"akool says {code}"})) as srv:
        drv = make_client(driver, srv.url)
        try:
            with pytest.raises(cls) as info:
                await drv("status", "moderation", "65f8180c24d9989e93dde3b6")
        finally:
            await drv.close()
    exc = info.value
    assert (exc.code, exc.message, exc.endpoint, exc.http_status) == (
        code, f"akool says {code}", "/api/open/v3/content/analysis/infobyid", 200)
    # Status calls are retried on retryable codes only (FAST_RETRY: 3 attempts).
    assert srv.count() == (3 if retryable else 1)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_face_detect_error_code_envelope(driver):
    with scripted_server(lambda req: ("json", 200, {"error_code": 3, "error_msg": "no face found"})) as srv:
        drv = make_client(driver, srv.url)
        try:
            with pytest.raises(E.ProcessingError, match="no face found") as info:
                await drv("face_detect", image_url="https://cdn.test/wall.jpg")
        finally:
            await drv.close()
    assert info.value.code == 3 and info.value.endpoint == "detect"


# --- transport failures ----------------------------------------------------------------------

FAULTS = {
    # answer -> (error class, may_have_created)
    "http500": (("json", 500, {"oops": 1}), E.ServerError, True),
    "http503": (("raw", 503, b"<html>busy</html>"), E.ServerError, True),
    "http429": (("raw", 429, b""), E.RateLimitError, False),
    "drop": (("drop",), E.ConnectionDroppedError, True),
    "not-json": (("raw", 200, b"<html>gateway</html>"), E.MalformedResponseError, True),
    "not-object": (("raw", 200, b"[1, 2]"), E.MalformedResponseError, True),
    "no-code": (("json", 200, {"msg": "what"}), E.MalformedResponseError, True),
    "timeout": (("hang", 3.0), E.RequestTimeoutError, True),
}


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_status_calls_retry_transient_failures_then_raise_the_right_class(driver, fault):
    answer, cls, _ = FAULTS[fault]
    with scripted_server(lambda req: answer) as srv:
        drv = make_client(driver, srv.url, timeout=0.3)
        try:
            with pytest.raises(cls) as info:
                await drv("status", "tts", "65f8017f56559aa67f0ecde7")
        finally:
            await drv.close()
    assert info.value.retryable is True
    assert drv.client.request_count == 3
    # Every attempt reached the server. aiohttp itself resends an idempotent GET once when the
    # connection drops (RFC 9112 9.3.1.1) - never a POST, see the create test below.
    per_attempt = 2 if (driver == "async-aiohttp" and fault == "drop") else 1
    assert srv.count("/api/open/v3/audio/infobymodelid") == 3 * per_attempt
    assert info.value.endpoint == "/api/open/v3/audio/infobymodelid"


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_create_is_not_retried_when_it_may_have_created_a_job(driver, fault):
    answer, cls, may_have_created = FAULTS[fault]
    with scripted_server(lambda req: answer) as srv:
        drv = make_client(driver, srv.url, timeout=0.3)
        try:
            with pytest.raises(cls) as info:
                await drv("submit", "moderation", content="hello", type=4)
        finally:
            await drv.close()
    exc = info.value
    assert exc.may_have_created is may_have_created and create_may_have_happened(exc) is may_have_created
    # Retried only when the failure proves nothing was created (429 is a refusal).
    assert srv.count("/api/open/v3/content/analysis/sentiment") == (1 if may_have_created else 3)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_status_recovers_after_transient_failures(driver):
    with scripted_server() as srv:
        srv.then(("json", 500, {}), ("drop",))
        drv = make_client(driver, srv.url)
        try:
            st = await drv("status", "moderation", "65f8180c24d9989e93dde3b6")
        finally:
            await drv.close()
    assert st.conclusion == "Compliant" and srv.count() == 3


@pytest.mark.parametrize("driver", DRIVERS)
async def test_create_is_retried_on_rate_limit_and_try_again_later_codes(driver):
    with scripted_server() as srv:
        srv.then(("json", 200, {"code": 1005, "msg": "Operation is too frequent"}),
                 ("json", 200, {"code": 1205, "msg": "Create video error, please try again later"}))
        drv = make_client(driver, srv.url)
        try:
            job = await drv("submit", "lipsync", video_url="https://cdn.test/v.mp4", audio_url="https://cdn.test/a.wav")
        finally:
            await drv.close()
    assert job.job_id and srv.count("/api/open/v3/content/video/lipsync") == 3


@pytest.mark.parametrize("driver", DRIVERS)
async def test_create_is_retried_on_connection_refused_and_raises_connect_error(driver):
    drv = make_client(driver, refused_url())
    try:
        with pytest.raises(E.ConnectError) as info:
            await drv("submit", "moderation", content="hello", type=4)
    finally:
        await drv.close()
    exc = info.value
    assert exc.retryable and not exc.may_have_created and not create_may_have_happened(exc)
    assert drv.client.request_count == 3  # the create was retried: nothing can have been sent


@pytest.mark.parametrize("driver", DRIVERS)
async def test_status_gives_up_on_connection_refused_after_max_attempts(driver):
    drv = make_client(driver, refused_url())
    try:
        with pytest.raises(E.ConnectError):
            await drv("status", "moderation", "x1")
    finally:
        await drv.close()
    assert drv.client.request_count == 3


@pytest.mark.parametrize("driver", DRIVERS)
async def test_unexpected_4xx_is_not_retried(driver):
    with scripted_server(lambda req: ("raw", 404, b"not found")) as srv:
        drv = make_client(driver, srv.url)
        try:
            with pytest.raises(E.HTTPStatusError) as info:
                await drv("status", "moderation", "x1")
        finally:
            await drv.close()
    assert info.value.http_status == 404 and not info.value.retryable and srv.count() == 1


@pytest.mark.parametrize("driver", DRIVERS)
async def test_revoked_exchanged_token_is_exchanged_again_once(driver):
    from .helpers import CLIENT_ID, CLIENT_SECRET, TOKEN, akool_responder

    state = {"fail_next": True}

    def responder(req):
        if req.path != "/api/open/v3/getToken" and state["fail_next"]:
            state["fail_next"] = False
            return "json", 200, {"code": 1101, "msg": "Invalid authorization or The request token has expired"}
        return akool_responder(req)

    with scripted_server(responder) as srv:
        drv = make_client(driver, srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        try:
            st = await drv("status", "moderation", "x1")
            assert st.ok
            # A token given explicitly is not "refreshed": 1101 surfaces at once.
            state["fail_next"] = True
            tok = make_client(driver, srv.url, token=TOKEN)
            try:
                with pytest.raises(E.AuthenticationError):
                    await tok("status", "moderation", "x1")
            finally:
                await tok.close()
        finally:
            await drv.close()
    assert srv.count("/api/open/v3/getToken") == 2


@pytest.mark.parametrize("driver", DRIVERS)
async def test_wrong_client_credentials_raise_authentication_error(driver):
    from .helpers import CLIENT_ID

    with scripted_server(lambda req: ("json", 200, {"code": 1101, "msg": "Invalid authorization"})) as srv:
        drv = make_client(driver, srv.url, client_id=CLIENT_ID, client_secret="wrong-secret-24-chars-xx")
        try:
            with pytest.raises(E.AuthenticationError) as info:
                await drv("voices")
        finally:
            await drv.close()
    assert info.value.code == 1101 and info.value.endpoint == "/api/open/v3/getToken"
    assert srv.count() == 1


@pytest.mark.parametrize("driver", DRIVERS)
async def test_gettoken_answer_without_token_is_malformed(driver):
    from .helpers import CLIENT_ID, CLIENT_SECRET

    with scripted_server(lambda req: ("json", 200, {"code": 1000, "msg": "OK"})) as srv:
        drv = make_client(driver, srv.url, client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        try:
            with pytest.raises(E.MalformedResponseError, match="token"):
                await drv("voices")
        finally:
            await drv.close()
    assert srv.count("/api/open/v3/voice/list") == 0  # never sent unauthenticated


@pytest.mark.parametrize("driver", DRIVERS)
async def test_create_answer_without_id_is_malformed(driver):
    with scripted_server(lambda req: ("json", 200, {"code": 1000, "msg": "OK", "data": {"status": 1}})) as srv:
        drv = make_client(driver, srv.url)
        try:
            with pytest.raises(E.MalformedResponseError) as info:
                await drv("submit", "moderation", content="hi", type=4)
        finally:
            await drv.close()
    assert info.value.may_have_created and srv.count() == 1


def test_retry_backoff_is_exponential_jittered_and_capped():
    from akool_flows.api import RetryPolicy

    p = RetryPolicy(max_attempts=10, initial_backoff=0.5, max_backoff=4.0, multiplier=2.0)
    for attempt, cap in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (8, 4.0)]:
        samples = {p.backoff(attempt) for _ in range(50)}
        assert all(cap / 2 <= s <= cap for s in samples) and len(samples) > 1
