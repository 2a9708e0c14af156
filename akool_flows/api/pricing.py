"""Prices the docs publish, as pure functions: the client's estimate and the sandbox's charge.

Jarvis (moderation) and image to video have published price tables; the other kinds report
what they cost in their status payload after the fact (``deduction_*`` fields). Both the client
registry and the sandbox import this module, so the table is written once.
"""

from __future__ import annotations

import math

__all__ = ["IMAGE_TO_VIDEO_PRICE", "MODERATION_PRICE", "USD_PER_CREDIT", "VIDEO_AUDIO_PRICE",
           "image_to_video_credits", "moderation_credits"]

#: The docs' conversion (Jarvis table: 0.1 credit = 0.004 USD).
USD_PER_CREDIT = 0.04

# Jarvis pricing from the docs: credits per unit.
MODERATION_PRICE = {"text_per_600_chars": 0.1, "image": 0.2, "audio_per_min": 0.5, "video_per_min": 1.0}


def moderation_credits(type_: int, content: str = "", *, duration_seconds: float | None = None,
                       chars: int | None = None) -> float | None:
    """Jarvis price of one moderation: text per started 600 characters, image each, audio/video
    per started minute when the duration is known (None otherwise: we do not invent). Text given
    as a document URL is None too unless ``chars`` says how long the fetched text is.

    ``chars`` overrides ``len(content)`` when the billed text is not ``content`` itself (the
    sandbox knows the length of the text behind a URL; the client does not).
    """
    if type_ == 4:
        if chars is None and content.lstrip()[:8].lower().startswith(("http://", "https://")):
            return None  # a .txt/.pdf/... URL: billed by the text Akool fetches, unknown here
        length = len(content) if chars is None else chars
        return round(max(1, math.ceil(length / 600)) * MODERATION_PRICE["text_per_600_chars"], 4)
    if type_ == 1:
        return MODERATION_PRICE["image"]
    if duration_seconds is None:
        return None
    per_min = MODERATION_PRICE["audio_per_min" if type_ == 3 else "video_per_min"]
    return round(max(1, math.ceil(duration_seconds / 60)) * per_min, 4)


# Image to video from the docs: credits per video by (resolution, seconds); adding audio to a
# finished video (updateVideoAudio) by seconds.
IMAGE_TO_VIDEO_PRICE = {("720p", 5): 20.0, ("1080p", 5): 25.0, ("4k", 5): 30.0,
                        ("720p", 10): 40.0, ("1080p", 10): 50.0, ("4k", 10): 60.0}
VIDEO_AUDIO_PRICE = {5: 5.0, 10: 10.0}


def image_to_video_credits(resolution: str, video_length: int, *, model_name: str | None = None) -> float | None:
    """The docs' price of one image-to-video result; None for a model or size the table lacks
    (other models are priced by the model list's ``unit_credit``)."""
    if model_name:
        return None
    return IMAGE_TO_VIDEO_PRICE.get((str(resolution), int(video_length)))
