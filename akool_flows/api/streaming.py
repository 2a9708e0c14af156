"""Messages for a streaming (live) avatar session, as the docs' streaming guide defines them.

Once a live session is open (`client.create_session(...)`), your app talks to the avatar over
the Agora data stream (`sendStreamMessage`) with small JSON messages, protocol version 2:

    from akool_flows.api.streaming import chat_messages, encode_message, send_interval

    for message in chat_messages(long_answer_from_your_llm):
        payload = encode_message(message)          # the exact bytes to send
        await agora.send_stream_message(payload)
        await asyncio.sleep(send_interval(message))  # stay under 6 KB/s

Agora limits one stream message to 1 KB and a stream to 6 KB/s. The guide therefore splits a
chat text into parts of at most 950 encoded bytes (`MAX_MESSAGE_BYTES`) that share one `mid`,
numbered by `idx` from 0, with `fin: true` on the last. These functions are pure (no I/O) and
split on code points, so a multi-byte UTF-8 character is never cut in half (the guide's
TypeScript slices UTF-16 units and can split an emoji's surrogate pair).
"""

from __future__ import annotations

import json
import math
import re
import secrets
import time
from typing import Any

from akool_flows.api.errors import ValidationError
from akool_flows.api.redact import redact_url

__all__ = [
    "MAX_MESSAGE_BYTES",
    "PROTOCOL_VERSION",
    "STREAM_BYTES_PER_SECOND",
    "chat_messages",
    "encode_message",
    "interrupt_command",
    "new_message_id",
    "send_interval",
    "set_params_command",
]

#: Largest encoded message the guide sends (Agora's limit is 1 KB; the guide keeps a margin).
MAX_MESSAGE_BYTES = 950
#: Agora's data-stream budget; the guide paces chunks to stay under it.
STREAM_BYTES_PER_SECOND = 6000
PROTOCOL_VERSION = 2

_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
# Smallest useful budget: the envelope plus one character in its worst escaped form (\u0000).
_WORST_CHAR_BYTES = 6


def new_message_id() -> str:
    """A fresh `mid`: the guide's `msg-<epoch ms>`, plus a random suffix so two messages created in
    the same millisecond stay distinct."""
    return f"msg-{time.time_ns() // 1_000_000}-{secrets.token_hex(3)}"


def encode_message(message: dict[str, Any]) -> bytes:
    """The bytes to send: compact JSON like JavaScript's `JSON.stringify`, UTF-8, non-ASCII unescaped.

    Sizes in this module are measured on exactly this encoding; send these bytes (not your own
    `json.dumps`, whose default spacing and ASCII escaping make messages larger).
    """
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _check_mid(mid: str | None) -> str:
    if mid is None:
        return new_message_id()
    if not isinstance(mid, str) or not mid.strip():
        raise ValidationError("mid must be a non-empty string (or None for a fresh one)", field="mid")
    return mid


def _chat(mid: str, idx: int, fin: bool, text: str) -> dict[str, Any]:
    return {"v": PROTOCOL_VERSION, "type": "chat", "mid": mid, "idx": idx, "fin": fin, "pld": {"text": text}}


def _char_cost(ch: str) -> int:
    # JSON escapes each character on its own, so a text's encoded size is the sum of its characters'.
    return len(json.dumps(ch, ensure_ascii=False)[1:-1].encode("utf-8"))


def chat_messages(text: str, mid: str | None = None, max_bytes: int = MAX_MESSAGE_BYTES, *,
                  prefer_word_breaks: bool = True) -> list[dict[str, Any]]:
    """Split `text` into v2 `chat` messages of at most `max_bytes` encoded bytes each.

    All parts share `mid` (a fresh one when None), `idx` counts from 0 and only the last has
    `fin: true`. Joining the parts' `pld.text` gives back `text` exactly. With
    `prefer_word_breaks` a part ends after a space when one falls in its second half, so the
    avatar does not receive half words; otherwise parts are as large as the limit allows.
    Raises `ValidationError` for empty text, text that is not valid Unicode (lone surrogates),
    or a `max_bytes` too small to carry any text.
    """
    if not isinstance(text, str):
        raise ValidationError(f"text must be a string, got {type(text).__name__}", field="text")
    if not text:
        raise ValidationError("text must not be empty (the guide refuses empty content)", field="text")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("text contains a lone surrogate and cannot be encoded as UTF-8", field="text") from None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int):
        raise ValidationError("max_bytes must be an integer", field="max_bytes")
    mid = _check_mid(mid)

    parts: list[str] = []
    pos = 0
    while pos < len(text):
        # Size the envelope with fin=false: "false" is one byte longer than "true", so the last
        # part, re-encoded with fin=true, fits as well.
        budget = max_bytes - len(encode_message(_chat(mid, len(parts), False, "")))
        if budget < _WORST_CHAR_BYTES:
            raise ValidationError(
                f"max_bytes={max_bytes} leaves {budget} bytes for text after the message envelope "
                f"(mid={len(mid)} chars); allowed: at least {max_bytes - budget + _WORST_CHAR_BYTES}",
                field="max_bytes")
        end, used = pos, 0
        while end < len(text):
            cost = _char_cost(text[end])
            if used + cost > budget:
                break
            used += cost
            end += 1
        if prefer_word_breaks and end < len(text):
            brk = max(text.rfind(" ", pos, end), text.rfind("\n", pos, end))
            if brk + 1 - pos > (end - pos) // 2:
                end = brk + 1
        parts.append(text[pos:end])
        pos = end

    messages = [_chat(mid, i, i == len(parts) - 1, part) for i, part in enumerate(parts)]
    return messages


def _command(mid: str | None, cmd: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    pld: dict[str, Any] = {"cmd": cmd}
    if data is not None:
        pld["data"] = data
    return {"v": PROTOCOL_VERSION, "type": "command", "mid": _check_mid(mid), "pld": pld}


def set_params_command(mid: str | None = None, vid: str | None = None, vurl: str | None = None,
                       lang: str | None = None, mode: int | None = None, bgurl: str | None = None) -> dict[str, Any]:
    """A `set-params` command: change the avatar's voice (`vid` from the voice list, or a voice model
    URL `vurl`), its answer language `lang` (e.g. "en"), its `mode` (1 retelling: repeats what it
    is sent; 2 dialogue: answers it) or its background `bgurl`. Only the given settings are sent.
    """
    data: dict[str, Any] = {}
    for name, value in (("vid", vid), ("lang", lang)):
        if value is None:
            continue
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"{name} must be a non-empty string", field=name)
        data[name] = value.strip()
    for name, value in (("vurl", vurl), ("bgurl", bgurl)):
        if value is None:
            continue
        if not isinstance(value, str) or not _URL_RE.match(value.strip()):
            raise ValidationError(f"{name} must be an http(s) URL, got {redact_url(value)!r}", field=name)
        data[name] = value.strip()
    if mode is not None:
        if isinstance(mode, bool) or mode not in (1, 2):
            raise ValidationError(f"mode must be 1 (retelling) or 2 (dialogue), got {mode!r}", field="mode")
        data["mode"] = int(mode)
    if not data:
        raise ValidationError("set-params needs at least one of vid, vurl, lang, mode, bgurl", field="data")
    # Keep the docs' key order (vid, vurl, lang, mode, bgurl): some receivers log it verbatim.
    order = ("vid", "vurl", "lang", "mode", "bgurl")
    message = _command(mid, "set-params", {k: data[k] for k in order if k in data})
    size = len(encode_message(message))
    if size > MAX_MESSAGE_BYTES:
        raise ValidationError(f"set-params message is {size} bytes; a stream message allows at most "
                              f"{MAX_MESSAGE_BYTES} (shorten vurl/bgurl)", field="data")
    return message


def interrupt_command(mid: str | None = None) -> dict[str, Any]:
    """An `interrupt` command: the avatar stops its current answer."""
    return _command(mid, "interrupt")


def send_interval(message: dict[str, Any] | bytes, bytes_per_second: float = STREAM_BYTES_PER_SECOND) -> float:
    """Seconds to wait after sending `message` before the next one, as the guide paces chunks
    (ceil(1000 * size / 6000) ms), so a long answer stays under the stream's byte rate."""
    if bytes_per_second <= 0:
        raise ValidationError("bytes_per_second must be > 0", field="bytes_per_second")
    size = len(message) if isinstance(message, (bytes, bytearray)) else len(encode_message(message))
    return math.ceil(1000 * size / bytes_per_second) / 1000
