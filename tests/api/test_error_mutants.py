"""What each error class promises the money code, pinned exactly (`make mutants` found these
rules unpinned): whether a failure is retried, whether a failed create may have created a paid
job, and what an error says about itself."""

from __future__ import annotations

import pytest

from akool_flows.api import errors as E

# class -> (retryable, may_have_created)
PROMISES = {
    E.AkoolError: (False, False), E.ValidationError: (False, False), E.AkoolAPIError: (False, False),
    E.BadRequestError: (False, False), E.QuotaError: (False, False), E.AuthenticationError: (False, False),
    E.PermissionDeniedError: (False, False), E.NotFoundError: (False, False), E.ConflictError: (False, False),
    E.ProcessingError: (False, False), E.RateLimitError: (True, False), E.TemporaryError: (True, False),
    E.TransportError: (True, True), E.ConnectError: (True, False), E.RequestTimeoutError: (True, True),
    E.ConnectionDroppedError: (True, True), E.ServerError: (True, True), E.HTTPStatusError: (False, False),
    E.MalformedResponseError: (True, True),
}


@pytest.mark.parametrize("cls", list(PROMISES), ids=lambda c: c.__name__)
def test_each_class_says_whether_to_retry_and_whether_a_create_may_have_happened(cls):
    exc = cls("x")
    retryable, may_have_created = PROMISES[cls]
    assert (exc.retryable, exc.may_have_created) == (retryable, may_have_created)
    assert E.is_retryable(exc) is retryable
    assert E.create_may_have_happened(exc) is may_have_created


def test_anything_that_is_not_an_akool_error():
    class Odd(Exception):
        retryable = True

    assert not E.is_retryable(Odd())  # only our own classes decide retries
    assert E.create_may_have_happened(Odd())  # a bug after sending: the job may exist
    assert E.create_may_have_happened(KeyboardInterrupt())


def test_an_error_renders_code_status_message_and_endpoint():
    e = E.ServerError("Bad gateway", code=None, endpoint="/api/x", http_status=502)
    assert str(e) == "HTTP 502: Bad gateway (/api/x)"
    e = E.BadRequestError("bad", code=1003, endpoint="/api/y", http_status=200)
    assert str(e) == "[1003] bad (/api/y)"
    assert e.to_dict() == {"error": "BadRequestError", "code": 1003, "message": "bad", "endpoint": "/api/y",
                           "http_status": 200}
    assert str(E.HTTPStatusError("HTTP 404 Not Found", http_status=404)) == "HTTP 404 Not Found"
    assert str(E.AkoolError("plain")) == "plain"
    assert str(E.RateLimitError("slow", code=1005, http_status=429)) == "[1005] HTTP 429: slow"
    assert E.RateLimitError("slow", retry_after=2.5).retry_after == 2.5


def test_error_from_code_keeps_akool_text_else_the_docs_text():
    e = E.error_from_code(1015, "  busy, try later ", "/v", http_status=503, retry_after=4.0)
    assert type(e) is E.TemporaryError and e.message == "busy, try later"
    assert (e.code, e.endpoint, e.http_status, e.retry_after) == (1015, "/v", 503, 4.0)
    assert E.error_from_code(1006, "", None).message == "Insufficient quota balance"
    assert E.error_from_code(1006, None, None).http_status == 200
    assert E.error_from_code(4242, "  ", None).message == "Akool error"
    assert type(E.error_from_code(4242, "x", None)) is E.ProcessingError


def test_validation_and_job_errors_carry_their_context():
    v = E.ValidationError("no", field="f", kind="tts")
    assert (v.field, v.kind, v.code) == ("f", "tts", None) and isinstance(v, ValueError)
    f = E.JobFailedError("failed", job_id="J", kind="tts", code=1015, status={"s": 4})
    assert (f.job_id, f.kind, f.code, f.status, f.endpoint) == ("J", "tts", 1015, {"s": 4}, "tts")
    t = E.JobTimeoutError("slow", job_id="J", kind="tts", last_status=2)
    assert (t.job_id, t.kind, t.last_status, t.endpoint) == ("J", "tts", 2, "tts")
