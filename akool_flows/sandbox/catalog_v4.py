"""Static v4 catalogue the sandbox serves: image-to-video effects and models, the v4 voice lists
and knowledge bases.

Shapes follow Akool's own code: AKOOL-Official/akool-image-to-video-demo (``VideoEffect``,
``AiModel``), akool-video-translation-demo (translation ``Voice``) and
akool-streaming-avatar-react-demo (stream ``Voice``, ``Knowledge``). The model
``AkoolImage2VideoFastV1`` is the one the image-to-video demo calls free; its per-second
``unit_credit`` gives the docs' price table (720p 5 s = 20 credits ... 4k 10 s = 60).
"""

from __future__ import annotations

from typing import Any

from akool_flows.sandbox.catalog import LANGUAGES

__all__ = ["AI_MODELS", "DEFAULT_MODEL", "EFFECTS", "KNOWLEDGE_BASES", "STREAM_VOICES", "TRANSLATION_VOICES"]

_CDN = "https://drz0f01yeq1cx.cloudfront.net"
IMAGE_TO_VIDEO_TYPE = 1501

EFFECTS: tuple[dict[str, Any], ...] = tuple(
    {"_id": f"6891a3c54b4dbdd4ab3d30{i:02x}", "create_time": 1754374085000 + i, "name": name,
     "logo": f"{_CDN}/effects/{code}.png", "video_url": f"{_CDN}/effects/{code}.mp4", "effect_code": code}
    for i, (code, name) in enumerate((("squish", "Squish"), ("inflate", "Inflate"), ("melt", "Melt"),
                                      ("hug", "Hug"), ("zoom_out", "Zoom out")))
)
EFFECT_CODES = frozenset(e["effect_code"] for e in EFFECTS)


def _resolution(value: str, width: int, height: int, unit_credit: float) -> dict[str, Any]:
    return {"label": value, "value": value, "width": width, "height": height, "unit_credit": unit_credit}


def _model(sort: int, provider: str, value: str, label: str, resolutions: list[dict[str, Any]],
           durations: list[int], *, audio: bool = False, last_frame: bool = False) -> dict[str, Any]:
    return {"sort": sort, "group": "image2video", "provider": provider, "type": IMAGE_TO_VIDEO_TYPE, "value": value,
            "label": label, "description": f"{label} image-to-video model", "resolutionList": resolutions,
            "durationList": durations,
            "generate_audio": ({"required": False, "type": True, "default": False, "extra_credit_multiplier": 1.5}
                               if audio else None),
            "requiresPay": provider != "akool", "supportedLastFrame": last_frame, "supportedExtendPrompt": True,
            "maxImageCount": 2 if last_frame else 1, "maxCount": 10}


DEFAULT_MODEL = "AkoolImage2VideoFastV1"
AI_MODELS: tuple[dict[str, Any], ...] = (
    _model(100, "akool", DEFAULT_MODEL, "Akool Fast", [
        _resolution("720p", 1280, 720, 4), _resolution("1080p", 1920, 1080, 5), _resolution("4k", 3840, 2160, 6)],
        [5, 10]),
    _model(90, "alibaba", "alibaba/wan2.5-i2v-preview", "Wan 2.5", [
        _resolution("480p", 854, 480, 6), _resolution("1080p", 1920, 1080, 12)], [5, 10], audio=True),
    _model(80, "bytedance", "seedance-1-0-lite-i2v", "Seedance Lite", [
        _resolution("720p", 1280, 720, 8)], [5], last_frame=True),
)
MODELS_BY_VALUE = {m["value"]: m for m in AI_MODELS}

# `GET /api/open/v4/voice/videoTranslation?language_code=`: voices per target language.
TRANSLATION_VOICES: tuple[dict[str, Any], ...] = tuple(
    {"_id": f"68a1b2c3d4e5f60718293a{i * 2 + j:02x}", "voice_id": f"vt-{lang['lang_code']}-{gender.lower()}",
     "gender": gender, "language": lang["lang_name"], "language_code": lang["lang_code"],
     "name": f"{lang['lang_name']} {gender}", "preview": f"{_CDN}/voices/vt-{lang['lang_code']}-{j}.mp3",
     "thumbnailUrl": f"{_CDN}/voices/vt-{j}.png", "flag_url": lang["url"], "age": ["Middle"],
     "style": ["Calm"], "scenario": ["Narration"]}
    for i, lang in enumerate(LANGUAGES) for j, gender in enumerate(("Female", "Male"))
)

# `GET /api/open/v4/voice/list?support_stream=1&type=`: 2 Akool's voices (1 would be your clones).
STREAM_VOICES: tuple[dict[str, Any], ...] = tuple(
    {"_id": f"68b2c3d4e5f6071829304a{i:02x}", "voice_id": voice_id, "support_stream": True, "type": 2,
     "style": ["Friendly"], "scenario": ["Conversation"], "age": ["Young"], "gender": gender, "name": name,
     "preview": f"{_CDN}/voices/{voice_id}.mp3", "text": "Hello, nice to meet you.", "locale": locale,
     "language": language, "voice_model_name": "Akool Multilingual 3"}
    for i, (voice_id, name, gender, locale, language) in enumerate((
        ("iP95p4xoKVk53GoZ742B", "Chris", "Male", "en-US", "English"),
        ("Xb7hH8MSUJpSbSDYk0k2", "Alice", "Female", "en-GB", "English"),
        ("sbx-stream-fr-1", "Camille", "Female", "fr-FR", "French")))
)

# `GET /api/open/v4/knowledge/list`: what a live session's knowledge_id names.
KNOWLEDGE_BASES: tuple[dict[str, Any], ...] = (
    {"_id": "68c3d4e5f60718293a4b5c01", "name": "Product FAQ", "prologue": "Hi! Ask me about our product.",
     "prompt": "You answer questions about the product, briefly.", "docs": [], "urls": [],
     "create_time": 1754400000000},
    {"_id": "68c3d4e5f60718293a4b5c02", "name": "Interview Agent", "prologue": "Tell me about yourself.",
     "prompt": "You are a friendly interviewer; ask one question at a time.", "docs": [], "urls": [],
     "create_time": 1754400000001},
)
