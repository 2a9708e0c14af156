"""What the sandbox charges per job.

Moderation uses the docs' Jarvis table through ``akool_flows.api.pricing`` (the function
the client estimates with). The docs publish no other prices, so the other figures are
the sandbox's own, chosen to look like the ``deduction_*`` fields of the docs' examples.
"""

from __future__ import annotations

import math

from akool_flows.api.pricing import moderation_credits
from akool_flows.sandbox.media import media_duration_seconds, text_length

__all__ = [
    "AVATAR_UPLOAD",
    "BACKGROUND_CHANGE",
    "FACESWAP_IMAGE",
    "IMAGE",
    "VOICE_CLONE_EXTRA",
    "billed_seconds",
    "moderation_price",
    "session_credits",
    "text_credits",
    "video_credits",
]

IMAGE = 2.0  # a generated grid, an upscale or a variation
BACKGROUND_CHANGE = 4.0
FACESWAP_IMAGE = 1.0
AVATAR_UPLOAD = 10.0
VOICE_CLONE_EXTRA = 1.0  # on top of the text, for the cloned voice


def billed_seconds(duration: float) -> int:
    """Akool bills video time in started 10-second blocks (docs: 11.7 s -> 20, 0.8 s -> 10)."""
    return max(10, math.ceil(duration / 10) * 10)


def video_credits(duration: float) -> float:
    # The docs call deduction_duration "credits consumed by the final result": the billed
    # seconds are the credits.
    return float(billed_seconds(duration))


def text_credits(text: str) -> float:
    """One credit per started 1000 characters of speech."""
    return float(max(1, math.ceil(len(text) / 1000)))


def session_credits(duration: int) -> float:
    """One credit per started minute of a live-avatar session."""
    return float(math.ceil(duration / 60))


def moderation_price(type_: int, content: str) -> float:
    """Credits Jarvis charges for one moderation request, per the docs' pricing table.

    The sandbox always knows what it bills: the length of the text behind a URL and the
    duration of audio/video come from :mod:`akool_flows.sandbox.media`.
    """
    chars = text_length(content) if type_ == 4 else None
    duration = media_duration_seconds(content) if type_ in (2, 3) else None
    price = moderation_credits(type_, content, chars=chars, duration_seconds=duration)
    assert price is not None  # a duration is always given for audio/video
    return price
