"""Fault injection from Python and over HTTP: 500s, delays, drops (before/after create), bad JSON, 1005."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from akool_flows.sandbox import FaultRule, Faults, Sandbox, SandboxConfig

from .conftest import EXAMPLES, V3, ok_data

QUOTA = f"{V3}/faceswap/quota/info"
MODERATE = f"{V3}/content/analysis/sentiment"
BODY = {"type": 4, "content": "hello"}


def test_http_500_next_n_on_a_path_prefix(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.http_500(next=2, path_prefix=MODERATE)
    assert client.get(QUOTA).status_code == 200  # other paths unaffected
    for _ in range(2):
        answer = client.post(MODERATE, json=BODY)
        assert answer.status_code == 500 and answer.headers["content-type"].startswith("text/html")
    assert sandbox.create_count() == 0  # nothing was processed
    assert client.post(MODERATE, json=BODY).json()["code"] == 1000  # the rule is used up
    assert sandbox.faults.rules() == []
    assert sandbox.stats()["faults_injected"]["http_500"] == 2


def test_slow_response(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.slow(0.3, next=1, path_prefix=QUOTA)
    start = time.monotonic()
    assert client.get(QUOTA).json()["code"] == 1000
    assert time.monotonic() - start >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        sandbox.faults.slow(1.0, next=1)
        client.get(QUOTA, timeout=0.2)


def test_slow_answer_after_processing_the_job_exists_before_the_answer(sandbox: Sandbox,
                                                                       client: httpx.Client) -> None:
    sandbox.faults.slow(5.0, next=1, path_prefix=MODERATE, after_processing=True)
    with pytest.raises(httpx.ReadTimeout):
        client.post(MODERATE, json=BODY, timeout=0.5)
    assert sandbox.create_count() == 1  # created (and charged) while the client still waited
    assert sandbox.stats()["faults_injected"]["delay_after"] == 1


def test_drop_before_processing_creates_nothing(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.drop(next=1, path_prefix=MODERATE)
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(MODERATE, json=BODY)
    assert sandbox.create_count() == 0
    assert client.post(MODERATE, json=BODY).json()["code"] == 1000  # a fresh connection works


def test_drop_after_create_is_the_ambiguous_window(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.drop_after_create(next=1, path_prefix="/api/open/v3/faceswap/highquality")
    path, body = EXAMPLES["faceswap_image"]
    before = sandbox.credits
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(path, json=body)
    assert sandbox.create_count("faceswap_image") == 1  # the job exists and was charged...
    assert sandbox.credits == before - 1
    ok_data(client.post(path, json=body))  # ...so a blind retry submits the same input twice
    assert list(sandbox.duplicate_creates().values()) == [2]


def test_malformed_json(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.malformed_json(next=1)
    answer = client.post(MODERATE, json=BODY)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        answer.json()
    assert sandbox.create_count() == 0


def test_rate_limit_answers(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.rate_limit(next=1)
    assert client.post(MODERATE, json=BODY).json() == {"code": 1005, "msg": "Operation is too frequent"}
    assert sandbox.create_count() == 0


def test_probabilistic_faults_are_reproducible_with_the_seed() -> None:
    def pattern(seed: int) -> list[int]:
        with Sandbox(SandboxConfig(seed=seed)) as sb, httpx.Client(
                base_url=sb.base_url, headers={"Authorization": f"Bearer {sb.token}"}) as c:
            sb.faults.http_500(probability=0.3)
            return [c.get(QUOTA).status_code for _ in range(40)]

    first = pattern(7)
    assert first == pattern(7)
    assert 3 <= first.count(500) <= 25
    assert first != pattern(8)


def test_rules_apply_in_order_and_can_be_cleared(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.faults.http_500(next=1, path_prefix="/api/open/v4")
    sandbox.faults.rate_limit(next=1)
    assert client.get(f"{V3}/voice/list").json()["code"] == 1005  # only the second rule matches
    sandbox.faults.http_500(next=5)
    assert len(sandbox.faults.rules()) == 2
    sandbox.faults.clear()
    assert client.get(QUOTA).status_code == 200


def test_admin_endpoints_are_never_faulted(sandbox: Sandbox) -> None:
    sandbox.faults.http_500(next=10)
    assert httpx.get(f"{sandbox.base_url}/_sandbox/stats").status_code == 200
    assert httpx.delete(f"{sandbox.base_url}/_sandbox/faults").status_code == 200
    assert sandbox.faults.rules() == []


def test_faults_over_http_for_a_sandbox_in_another_process(sandbox: Sandbox, client: httpx.Client) -> None:
    admin = f"{sandbox.base_url}/_sandbox/faults"
    answer = httpx.post(admin, json={"kind": "http_500", "next": 1, "path_prefix": QUOTA})
    assert answer.status_code == 200 and answer.json()["rules"][0]["kind"] == "http_500"
    httpx.post(admin, json={"rules": [{"kind": "delay", "seconds": 0.2, "next": 1},
                                      {"kind": "drop_after", "next": 1, "path_prefix": MODERATE}]})
    assert client.get(QUOTA).status_code == 500
    start = time.monotonic()
    assert client.get(QUOTA).status_code == 200 and time.monotonic() - start >= 0.2
    with pytest.raises(httpx.RemoteProtocolError):
        client.post(MODERATE, json=BODY)
    assert sandbox.create_count("moderation") == 1
    assert httpx.get(admin).json()["injected"] == {"http_500": 1, "delay": 1, "delay_after": 0, "drop": 0,
                                                   "drop_after": 1, "malformed_json": 0, "rate_limit": 0}
    httpx.post(admin, json={"clear": True, "rules": [{"kind": "rate_limit", "probability": 1.0}]})
    assert client.get(QUOTA).json()["code"] == 1005
    assert httpx.delete(admin).json() == {"rules": []}
    bad = httpx.post(admin, json={"kind": "explode"})
    assert bad.status_code == 400 and "http_500" in bad.json()["error"]
    assert httpx.post(admin, json={"kind": "http_500", "next": 0}).status_code == 400


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "boom"}, "fault kind"),
    ({"kind": "http_500", "remaining": 1, "probability": 0.5}, "not both"),
    ({"kind": "http_500", "probability": 1.5}, "probability"),
    ({"kind": "http_500", "path_prefix": "api"}, "path_prefix"),
    ({"kind": "delay"}, "seconds > 0"),
])
def test_rule_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FaultRule(**kwargs)


def test_faults_unit_pick_consumes_next_n() -> None:
    faults = Faults(seed=0)
    faults.drop(next=2, path_prefix="/a")
    assert faults.pick("/b") is None
    assert faults.pick("/a/x").kind == "drop"
    assert faults.pick("/a").kind == "drop"
    assert faults.pick("/a") is None and not faults


def test_slow_create_still_happens_after_the_client_gave_up(sandbox: Sandbox, client: httpx.Client,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    from .conftest import wait_for

    sandbox.faults.slow(0.3, next=1, path_prefix=MODERATE)
    with pytest.raises(httpx.ReadTimeout):
        client.post(MODERATE, json=BODY, timeout=0.1)
    wait_for(lambda: sandbox.create_count("moderation") == 1)  # the server had the whole request
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
