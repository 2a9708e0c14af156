"""Deterministic stand-in for Jarvis Moderator: a verdict from the content alone.

Prices are the docs' Jarvis table (``akool_flows.api.pricing``), charged by
``akool_flows.sandbox.kinds.pricing.moderation_price`` on what :mod:`akool_flows.sandbox.media`
measures: text length (``chars=N`` in a text URL's query), media duration (``duration=SECONDS``),
else a stable hash of the URL.

Verdicts: content that cannot be analysed (empty, garbled, an unfetchable or unsupported
URL) is ``Unknown``; content with violent, abusive, hateful or profane words (or words
of the user's ``input``) is ``Non-Compliant``; anything else is ``Compliant``. For URLs
the decision is made from the URL text, since the sandbox fetches nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

# media_duration_seconds is re-exported: older callers import it from here.
from akool_flows.sandbox.media import is_url, media_duration_seconds, url_ext

__all__ = ["MODERATION_TYPES", "Verdict", "classify", "media_duration_seconds"]

MODERATION_TYPES: dict[int, str] = {1: "image", 2: "video", 3: "audio", 4: "text"}

# Formats the docs say Jarvis accepts, per content type (by URL path extension).
SUPPORTED_EXTENSIONS: dict[int, frozenset[str]] = {
    1: frozenset({"png", "jpeg", "jpg", "webp", "gif"}),
    2: frozenset({"mp4", "avi"}),
    3: frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"}),
    4: frozenset({"txt", "docx", "xml", "pdf", "csv", "md", "json"}),
}

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
        ext = url_ext(stripped)
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
