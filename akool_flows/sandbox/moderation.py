"""Deterministic stand-in for Jarvis Moderator: a verdict and a price from the content alone.

Pricing follows the docs' Jarvis table exactly:

=========  ================================  =====================================
type       price                             measured as
=========  ================================  =====================================
4 text     0.1 credit per started 600 chars  ``len(content)``; for a URL: ``chars=N``
                                             in its query, else a hash of the URL
1 image    0.2 credit per image
3 audio    0.5 credit per started minute     ``duration=SECONDS`` in the URL query,
2 video    1.0 credit per started minute     else a stable hash of the URL (10-600 s)
=========  ================================  =====================================

Verdicts: content that cannot be analysed (empty, garbled, an unfetchable or unsupported
URL) is ``Unknown``; content with violent, abusive, hateful or profane words (or words
of the user's ``input``) is ``Non-Compliant``; anything else is ``Compliant``. For URLs
the decision is made from the URL text, since the sandbox fetches nothing.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = [
    "MODERATION_TYPES",
    "Verdict",
    "classify",
    "is_url",
    "media_duration_seconds",
    "moderation_price",
]

MODERATION_TYPES: dict[int, str] = {1: "image", 2: "video", 3: "audio", 4: "text"}

TEXT_CREDITS_PER_BLOCK = 0.1
TEXT_BLOCK_CHARS = 600
IMAGE_CREDITS = 0.2
AUDIO_CREDITS_PER_MINUTE = 0.5
VIDEO_CREDITS_PER_MINUTE = 1.0

# Formats the docs say Jarvis accepts, per content type (by URL path extension).
SUPPORTED_EXTENSIONS: dict[int, frozenset[str]] = {
    1: frozenset({"png", "jpeg", "jpg", "webp", "gif"}),
    2: frozenset({"mp4", "avi"}),
    3: frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"}),
    4: frozenset({"txt", "docx", "xml", "pdf", "csv", "md", "json"}),
}

_URL_RE = re.compile(r"^https?://[^\s/]+\S*$", re.IGNORECASE)
# URL text that stands for "the moderator could not fetch this".
_UNFETCHABLE_RE = re.compile(r"unfetchable|not[-_]?found|\b404\b|expired|sandbox-unknown", re.IGNORECASE)

# Category -> (description, word patterns). Patterns are matched as word prefixes, so
# "kill" also catches "killing" and "killer" but not "skill".
_CATEGORIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "violence",
        "Threatening or describing physical violence",
        (
            "kill", "murder", "shoot", "stab", "bomb", "behead", "strangle", "slaughter",
            "massacre", "assault", "attack", "gun", "weapon", "blood", "torture", "terror",
            "burn your", "beat you", "hurt you",
        ),
    ),
    (
        "cyberbullying",
        "Insulting or demeaning a person",
        (
            "idiot", "stupid", "moron", "loser", "worthless", "pathetic", "dumb", "shut up",
            "ugly", "scum", "nobody likes you", "imbecile", "retard",
        ),
    ),
    (
        "hate",
        "Hateful language towards people or groups",
        (
            "i hate", "hate you", "hate them", "hate all", "subhuman", "vermin", "exterminate",
            "inferior race", "go back to your country",
        ),
    ),
    (
        "profanity",
        "Profane or vulgar language",
        ("fuck", "shit", "bastard", "asshole", "bitch", "crap"),
    ),
)

_CATEGORY_RES = tuple(
    (name, description, re.compile(r"\b(" + "|".join(re.escape(w) for w in words) + r")\w*", re.IGNORECASE))
    for name, description, words in _CATEGORIES
)


@dataclass(frozen=True)
class Verdict:
    """What the status payload reports: ``final_conclusion`` and the readable ``result``."""

    final_conclusion: str  # "Compliant" | "Non-Compliant" | "Unknown"
    result: str


def is_url(content: str) -> bool:
    """True when ``content`` is a single http(s) URL (Jarvis then fetches instead of reading)."""
    return bool(_URL_RE.match(content.strip()))


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


def moderation_price(type_: int, content: str) -> float:
    """Credits Jarvis charges for one moderation request, per the docs' pricing table."""
    if type_ == 4:
        blocks = max(1, math.ceil(text_length(content) / TEXT_BLOCK_CHARS))
        return round(blocks * TEXT_CREDITS_PER_BLOCK, 6)
    if type_ == 1:
        return IMAGE_CREDITS
    minutes = max(1, math.ceil(media_duration_seconds(content) / 60))
    per_minute = AUDIO_CREDITS_PER_MINUTE if type_ == 3 else VIDEO_CREDITS_PER_MINUTE
    return round(minutes * per_minute, 6)


def _extension(url: str) -> str:
    path = urlsplit(url).path
    last = path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _garbled(text: str) -> bool:
    visible = [c for c in text if not c.isspace()]
    if not visible:
        return True
    if "\ufffd" in text:  # replacement characters: the text was decoded with the wrong charset
        return True
    letters = sum(1 for c in visible if c.isalpha())
    return letters == 0 or letters / len(visible) < 0.5


def _unknown(reason: str) -> Verdict:
    return Verdict("Unknown", f"- unknown: {reason}\nResult: Unknown")


def classify(type_: int, content: str, user_input: str | None = None) -> Verdict:
    """The sandbox's deterministic moderation verdict for ``content`` of Jarvis ``type_``."""
    stripped = content.strip()
    if not stripped:
        return _unknown("The content is empty; there is nothing to analyse.")
    if is_url(stripped):
        if _UNFETCHABLE_RE.search(stripped):
            return _unknown("The content URL could not be fetched.")
        ext = _extension(stripped)
        if ext and ext not in SUPPORTED_EXTENSIONS[type_]:
            allowed = ", ".join(sorted(SUPPORTED_EXTENSIONS[type_]))
            return _unknown(f"Unsupported {MODERATION_TYPES[type_]} format '.{ext}' (supported: {allowed}).")
        # Judge the URL by its words: path segments and query, separators turned to spaces.
        text = re.sub(r"[/_\-.?=&+%]+", " ", unquote(urlsplit(stripped).path + " " + urlsplit(stripped).query))
    else:
        if _garbled(stripped):
            return _unknown("The text is garbled or has no readable words.")
        text = stripped

    findings: list[str] = []
    for name, description, pattern in _CATEGORY_RES:
        hits = sorted({m.group(0).lower() for m in pattern.finditer(text)})
        if hits:
            quoted = ", ".join(f'"{h}"' for h in hits[:5])
            findings.append(f"- {name}: {description} ({quoted}).")
    if user_input:
        words = {w.lower() for w in re.findall(r"\w{3,}", user_input)}
        hits = sorted(w for w in words if re.search(r"\b" + re.escape(w) + r"\b", text, re.IGNORECASE))
        if hits:
            quoted = ", ".join(f'"{h}"' for h in hits)
            findings.append(f"- customized: Matches the user-defined content ({quoted}).")
    if findings:
        return Verdict("Non-Compliant", "\n".join(findings) + "\nResult: Non-Compliant")
    return Verdict("Compliant", "- No policy violations detected.\nResult: Compliant")
