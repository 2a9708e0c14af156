"""Moderation verdicts and Jarvis pricing; the account balance, 1006 and rate limiting (1005)."""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akool_flows.sandbox import Sandbox, SandboxConfig, classify, moderation_price

from .conftest import EXAMPLES, V3, code_of, ok_data, status_of, wait_for

MODERATE = f"{V3}/content/analysis/sentiment"


@pytest.mark.parametrize(("type_", "content", "conclusion", "category"), [
    (4, "I will kill you and your family", "Non-Compliant", "violence"),
    (4, "You are a worthless idiot, shut up", "Non-Compliant", "cyberbullying"),
    (4, "I hate you people, you are vermin", "Non-Compliant", "hate"),
    (4, "What the fuck is this", "Non-Compliant", "profanity"),
    (4, "Lovely weather for a picnic by the lake", "Compliant", None),
    (4, "Great skills, killer app!", "Compliant", None),  # an idiom, not violence (issue 13)
    (4, "I will come to your office with a knife", "Non-Compliant", "violence"),
    (4, "", "Unknown", None),
    (4, "   \n ", "Unknown", None),
    (4, "#$%^&*()!@#$%", "Unknown", None),
    (4, "caf\ufffd\ufffd \ufffd", "Unknown", None),
    (1, "https://cdn.example.com/food.jpg", "Compliant", None),
    (1, "https://cdn.example.com/gun-violence.jpg", "Non-Compliant", "violence"),
    (1, "https://cdn.example.com/unfetchable/food.jpg", "Unknown", None),
    (1, "https://cdn.example.com/food.tiff", "Unknown", None),
    (3, "https://cdn.example.com/talk.mp3?duration=30", "Compliant", None),
    (2, "https://cdn.example.com/404/clip.mp4", "Unknown", None),
])
def test_verdicts(type_: int, content: str, conclusion: str, category: str | None) -> None:
    verdict = classify(type_, content)
    assert verdict.final_conclusion == conclusion
    assert verdict.result.endswith(f"Result: {conclusion}")
    if category:
        assert f"- {category}: " in verdict.result


def test_user_defined_input_words_are_flagged() -> None:
    assert classify(4, "I love pineapple pizza", "pineapple").final_conclusion == "Non-Compliant"
    assert "customized" in classify(4, "I love pineapple pizza", "pineapple").result
    assert classify(4, "I love pizza", "pineapple").final_conclusion == "Compliant"


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=1, max_value=4), st.text(max_size=300))
def test_verdicts_are_deterministic_and_well_formed(type_: int, content: str) -> None:
    first, second = classify(type_, content), classify(type_, content)
    assert first == second
    assert first.final_conclusion in ("Compliant", "Non-Compliant", "Unknown")
    assert first.result.endswith("Result: " + first.final_conclusion)


@pytest.mark.parametrize(("type_", "content", "credits"), [
    (4, "x", 0.1),
    (4, "x" * 600, 0.1),
    (4, "x" * 601, 0.2),
    (4, "x" * 1800, 0.3),
    (4, "", 0.1),
    (4, "https://cdn.example.com/doc.txt?chars=1201", 0.3),
    (1, "https://cdn.example.com/a.png", 0.2),
    (3, "https://cdn.example.com/a.mp3?duration=60", 0.5),
    (3, "https://cdn.example.com/a.mp3?duration=61", 1.0),
    (2, "https://cdn.example.com/a.mp4?duration=59", 1.0),
    (2, "https://cdn.example.com/a.mp4?duration=125", 3.0),
])
def test_jarvis_pricing(type_: int, content: str, credits: float) -> None:
    assert moderation_price(type_, content) == credits


@pytest.mark.parametrize(("type_", "content"), [
    (4, "x" * 1201),
    (1, "https://cdn.example.com/a.png"),
    (3, "https://cdn.example.com/a.mp3?duration=61"),
    (2, "https://cdn.example.com/a.mp4?duration=125"),
])
def test_the_sandbox_charges_what_the_client_estimates(type_: int, content: str) -> None:
    from akool_flows.api.kinds import KINDS
    from akool_flows.sandbox.media import media_duration_seconds

    duration = media_duration_seconds(content) if type_ in (2, 3) else None
    estimate = KINDS["moderation"].estimate_credits({"type": type_, "content": content}, duration_seconds=duration)
    assert moderation_price(type_, content) == estimate


def test_the_shared_price_table_imports_neither_the_sandbox_nor_aiohttp() -> None:
    code = ("import sys, akool_flows.api.pricing; "
            "print(sorted(m for m in sys.modules if m.startswith(('akool_flows.sandbox', 'aiohttp'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=0, max_value=20_000))
def test_text_price_is_a_tenth_per_started_600_characters(n: int) -> None:
    assert moderation_price(4, "a" * n) == round(max(1, -(-n // 600)) * 0.1, 6)


def test_media_duration_without_a_hint_is_a_stable_hash() -> None:
    url = "https://cdn.example.com/clip.mp4"
    assert moderation_price(2, url) == moderation_price(2, url) >= 1.0


def test_moderation_over_http_reports_price_and_verdict(sandbox: Sandbox, client: httpx.Client) -> None:
    before = sandbox.credits
    text = "I will shoot you. " * 40  # 720 characters -> 0.2 credits
    job = ok_data(client.post(MODERATE, json={"type": 4, "content": text, "webhookUrl": "http://127.0.0.1:9/h"}))
    assert job["status"] == 1 and job["result"] == "" and job["deduction_credit"] == 0.2
    assert job["webhookUrl"] == "http://127.0.0.1:9/h"
    assert sandbox.credits == pytest.approx(before - 0.2)
    wait_for(lambda: status_of(client, "moderation", job["_id"])["status"] == 3)
    done = status_of(client, "moderation", job["_id"])
    assert done["final_conclusion"] == "Non-Compliant" and "violence" in done["result"]
    assert done["deduction_credit"] == 0.2
    empty = ok_data(client.post(MODERATE, json={"type": 4, "content": ""}))
    wait_for(lambda: status_of(client, "moderation", empty["_id"])["status"] == 3)
    assert status_of(client, "moderation", empty["_id"])["final_conclusion"] == "Unknown"


def test_quota_exhaustion_is_1006_and_creates_nothing(sandbox: Sandbox, client: httpx.Client) -> None:
    sandbox.set_credits(0.25)
    assert code_of(client.post(MODERATE, json={"type": 1, "content": "https://cdn.example.com/a.png"})) == 1000
    assert sandbox.credits == pytest.approx(0.05)
    answer = client.post(MODERATE, json={"type": 1, "content": "https://cdn.example.com/b.png"}).json()
    assert answer["code"] == 1006 and "0.2" in answer["msg"]
    assert sandbox.create_count("moderation") == 1 and len(sandbox.jobs()) == 1
    assert sandbox.credits == pytest.approx(0.05)  # nothing drawn for the refused call
    sandbox.set_credits(100)
    assert code_of(client.post(MODERATE, json={"type": 1, "content": "https://cdn.example.com/b.png"})) == 1000


def test_every_kind_draws_its_reported_credits(sandbox: Sandbox, client: httpx.Client) -> None:
    start = sandbox.credits
    charged = 0.0
    for kind in ("tts", "image_generate", "faceswap_video", "lipsync", "moderation"):
        path, body = EXAMPLES[kind]
        data = ok_data(client.post(path, json=body))
        payload = status_of(client, kind, data["_id"])
        charged += next(payload[f] for f in ("deduction_credit", "deduction_lock_duration") if f in payload)
    assert sandbox.credits == pytest.approx(start - charged)
    assert sandbox.stats()["credits_charged"] == pytest.approx(charged)


def test_rate_limit_per_credential_answers_1005() -> None:
    with Sandbox(SandboxConfig(rate_limit_per_second=5)) as sb:
        url = f"{sb.base_url}{V3}/faceswap/quota/info"
        with httpx.Client() as c:
            codes = [c.get(url, headers={"Authorization": f"Bearer {sb.token}"}).json()["code"] for _ in range(12)]
            assert codes[:5] == [1000] * 5 and codes.count(1005) >= 4
            # Another credential has its own budget.
            assert c.get(url, headers={"x-api-key": sb.api_key}).json()["code"] == 1000
            time.sleep(0.45)  # refills at 5/s
            assert c.get(url, headers={"Authorization": f"Bearer {sb.token}"}).json()["code"] == 1000
        assert sb.stats()["rejected_by_code"]["1005"] >= 4
        sb.configure(rate_limit_per_second=None)
        with httpx.Client() as c:
            assert all(c.get(url, headers={"Authorization": f"Bearer {sb.token}"}).json()["code"] == 1000
                       for _ in range(20))
