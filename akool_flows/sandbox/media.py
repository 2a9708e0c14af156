"""What the sandbox assumes about media it never fetches: durations, text lengths, formats.

A URL may say what it stands for in its query (``duration=SECONDS``, ``chars=N``);
otherwise a stable hash of the URL picks a value, so the same input always costs and
behaves the same.
"""

from __future__ import annotations

import hashlib
import math
import re
from urllib.parse import parse_qs, urlsplit

__all__ = ["is_url", "media_duration_seconds", "text_length", "url_ext"]

_URL_RE = re.compile(r"^https?://[^\s/]+\S*$", re.IGNORECASE)


def is_url(content: str) -> bool:
    """True when ``content`` is a single http(s) URL (Jarvis then fetches instead of reading)."""
    return bool(_URL_RE.match(content.strip()))


def url_ext(url: str) -> str:
    """The lower-case extension of a URL's last path segment ("" when it has none)."""
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _stable_int(text: str, low: int, high: int) -> int:
    digest = hashlib.sha256(text.encode()).digest()
    return low + int.from_bytes(digest[:8], "big") % (high - low + 1)


def _query_number(url: str, name: str) -> float | None:
    values = parse_qs(urlsplit(url).query).get(name)
    if not values:
        return None
    try:
        number = float(values[0])
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def media_duration_seconds(url: str) -> float:
    """Duration the sandbox assumes for an audio/video URL: ``duration=`` query, else hashed
    into 5-120 s (short clips, like most talking photos and lip syncs)."""
    given = _query_number(url, "duration")
    return given if given is not None else float(_stable_int(url, 5, 120))


def text_length(content: str) -> int:
    """Characters billed for text moderation (for a text URL: ``chars=`` query, else hashed)."""
    if is_url(content):
        given = _query_number(content, "chars")
        return int(given) if given is not None else _stable_int(content, 200, 6000)
    return len(content)
