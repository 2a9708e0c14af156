"""Streaming avatar messages: splitting chat text per the docs' guide, and command builders."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akool_flows.api import ValidationError
from akool_flows.api.streaming import (
    MAX_MESSAGE_BYTES,
    chat_messages,
    encode_message,
    interrupt_command,
    new_message_id,
    send_interval,
    set_params_command,
)


def _check_parts(text: str, messages: list[dict], mid: str, max_bytes: int) -> None:
    assert messages, "at least one message"
    assert "".join(m["pld"]["text"] for m in messages) == text
    for i, m in enumerate(messages):
        assert list(m) == ["v", "type", "mid", "idx", "fin", "pld"]  # the docs' field order
        assert (m["v"], m["type"], m["mid"], m["idx"], m["fin"]) == (2, "chat", mid, i, i == len(messages) - 1)
        assert m["pld"]["text"], "no empty parts"
        raw = encode_message(m)
        assert len(raw) <= max_bytes
        assert json.loads(raw.decode("utf-8")) == m  # every part is valid UTF-8 JSON on its own


def test_docs_example_short_message_is_one_part():
    [m] = chat_messages("Hello", mid="msg-1723629433573")
    assert m == {"v": 2, "type": "chat", "mid": "msg-1723629433573", "idx": 0, "fin": True,
                 "pld": {"text": "Hello"}}
    assert encode_message(m) == (b'{"v":2,"type":"chat","mid":"msg-1723629433573","idx":0,"fin":true,'
                                 b'"pld":{"text":"Hello"}}')


def test_long_ascii_text_fills_parts_up_to_the_limit():
    text = "x" * 5000
    messages = chat_messages(text, mid="m1", prefer_word_breaks=False)
    _check_parts(text, messages, "m1", MAX_MESSAGE_BYTES)
    # Every part but the last is full: one more character would not fit.
    for m in messages[:-1]:
        assert len(encode_message({**m, "fin": False})) > MAX_MESSAGE_BYTES - 1
    assert len(messages) == 6


def test_multibyte_characters_are_never_split():
    text = "日本語のテキスト😀🎉" * 200  # 3- and 4-byte UTF-8 characters
    messages = chat_messages(text, mid="m-jp")
    _check_parts(text, messages, "m-jp", MAX_MESSAGE_BYTES)
    for m in messages:
        m["pld"]["text"].encode("utf-8")  # no half characters (a split would be a lone surrogate)
    assert len(messages) > 1


def test_escaped_characters_count_at_their_escaped_size():
    text = 'He said "hi"\\ \n\t\x00' * 100  # quotes, backslashes and control characters grow when escaped
    messages = chat_messages(text, mid="m-esc")
    _check_parts(text, messages, "m-esc", MAX_MESSAGE_BYTES)


def test_parts_prefer_word_breaks():
    words = " ".join(f"word{i}" for i in range(600))
    messages = chat_messages(words, mid="w")
    _check_parts(words, messages, "w", MAX_MESSAGE_BYTES)
    for m in messages[:-1]:
        assert m["pld"]["text"].endswith(" ")


def test_default_mid_is_fresh_and_shared_by_all_parts():
    a = chat_messages("a" * 3000)
    b = chat_messages("b")
    assert len({m["mid"] for m in a}) == 1 and a[0]["mid"] != b[0]["mid"]
    assert a[0]["mid"].startswith("msg-") and new_message_id() != new_message_id()


@pytest.mark.parametrize("bad, field", [
    ({"text": ""}, "text"),
    ({"text": None}, "text"),
    ({"text": "a\ud800b"}, "text"),
    ({"text": "hi", "mid": ""}, "mid"),
    ({"text": "hi", "max_bytes": 70}, "max_bytes"),
    ({"text": "hi", "max_bytes": 950.0}, "max_bytes"),
])
def test_bad_chat_input_is_refused(bad, field):
    text = bad.pop("text")
    with pytest.raises(ValidationError) as info:
        chat_messages(text, **bad)
    assert info.value.field == field


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=st.text(min_size=1, max_size=3000),
       mid=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FFF,
                                         blacklist_categories=("Zs", "Zl", "Zp", "Cc", "Cs")),
                   min_size=1, max_size=40),
       max_bytes=st.integers(min_value=200, max_value=2000),
       words=st.booleans())
def test_split_property(text, mid, max_bytes, words):
    messages = chat_messages(text, mid=mid, max_bytes=max_bytes, prefer_word_breaks=words)
    _check_parts(text, messages, mid, max_bytes)


@settings(max_examples=100, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("aé中😀\"\\\n "), min_size=1, max_size=2000))
def test_split_is_greedy_without_word_breaks(text):
    messages = chat_messages(text, mid="g", prefer_word_breaks=False)
    _check_parts(text, messages, "g", MAX_MESSAGE_BYTES)
    for m, nxt in zip(messages, messages[1:]):
        grown = {**m, "fin": False, "pld": {"text": m["pld"]["text"] + nxt["pld"]["text"][0]}}
        assert len(encode_message(grown)) > MAX_MESSAGE_BYTES


def test_set_params_matches_the_docs_example():
    m = set_params_command(mid="msg-1723629433573", vid="1", lang="en", mode=1,
                           bgurl="https://example.com/background.jpg")
    assert m == {"v": 2, "type": "command", "mid": "msg-1723629433573",
                 "pld": {"cmd": "set-params", "data": {"vid": "1", "lang": "en", "mode": 1,
                                                       "bgurl": "https://example.com/background.jpg"}}}
    only_voice = set_params_command(vurl="https://cdn.test/voice-model")
    assert only_voice["pld"]["data"] == {"vurl": "https://cdn.test/voice-model"}


@pytest.mark.parametrize("kwargs, field", [
    ({}, "data"),
    ({"mode": 3}, "mode"),
    ({"mode": True}, "mode"),
    ({"vid": " "}, "vid"),
    ({"bgurl": "background.jpg"}, "bgurl"),
    ({"vurl": "ftp://x"}, "vurl"),
    ({"bgurl": "https://cdn.test/" + "x" * 1000}, "data"),
])
def test_bad_set_params_are_refused(kwargs, field):
    with pytest.raises(ValidationError) as info:
        set_params_command(**kwargs)
    assert info.value.field == field


def test_interrupt_matches_the_docs_example():
    assert interrupt_command("msg-1723629433573") == {"v": 2, "type": "command", "mid": "msg-1723629433573",
                                                      "pld": {"cmd": "interrupt"}}
    assert interrupt_command()["mid"].startswith("msg-")


def test_send_interval_paces_at_six_kilobytes_per_second():
    [m] = chat_messages("x" * 800, mid="p")
    size = len(encode_message(m))
    assert send_interval(m) == pytest.approx(-(-1000 * size // 6000) / 1000)
    assert send_interval(b"x" * 6000) == 1.0
    with pytest.raises(ValidationError):
        send_interval(m, bytes_per_second=0)
