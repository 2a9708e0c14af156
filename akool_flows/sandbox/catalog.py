"""Static catalogue the sandbox serves: official voices, avatars and translation languages.

Entries follow the docs' examples (field names, id formats); the ones the docs name
(voice ``piTKgcLEGmPE4e6mEKli``, avatar ``Yasmin_in_White_shirt_20231121``, live avatar
``dvp_Tristan_cloth2_1080P``, languages en/fr/zh) are present so documented samples work.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LANGUAGES", "LANGUAGE_CODES", "LIVE_AVATARS", "TALKING_AVATARS", "VOICES"]

_CDN = "https://drz0f01yeq1cx.cloudfront.net"


def _voice(i: int, voice_id: str, name: str, gender: str, accent: str, description: str,
           use_case: str) -> dict[str, Any]:
    return {
        "_id": f"65e980d7af040969db5be8{i:02x}",
        "create_time": 1687181385319 + i,
        "uid": 1,
        "from": 3,
        "voice_id": voice_id,
        "gender": gender,
        "accent": accent,
        "name": name,
        "description": description,
        "useCase": use_case,
        "type": 1,
        "preview": f"{_CDN}/voices/{voice_id}/preview.mp3",
        "__v": 0,
    }


VOICES: tuple[dict[str, Any], ...] = (
    _voice(0x63, "piTKgcLEGmPE4e6mEKli", "Nicole", "Female", "american", "whisper", "audiobook"),
    _voice(0x54, "LcfcDJNUP1GQjkzn1xUU", "Emily", "Female", "american", "calm", "meditation"),
    _voice(0x55, "TxGEqnHWrfWFTfGW9XjX", "Josh", "Male", "american", "deep", "narration"),
    _voice(0x56, "ErXwobaYiN019PkySvjV", "Antoni", "Male", "american", "well-rounded", "narration"),
    _voice(0x57, "ThT5KcBeYPX3keUQqHPh", "Dorothy", "Female", "british", "pleasant", "children's stories"),
)

VOICE_IDS = frozenset(v["voice_id"] for v in VOICES)


def _avatar(avatar_id: str, name: str, gender: str, kind: int, i: int) -> dict[str, Any]:
    return {
        "_id": f"655ffeada6976ea3170871{i:02x}",
        "disabled": False,
        "uid": 1,
        "type": kind,
        "from": 2,
        "status": 3,
        "sort": i,
        "create_time": 1700788730000,
        "name": name,
        "avatar_id": avatar_id,
        "url": f"{_CDN}/avatars/{avatar_id}.mp4",
        "modify_url": f"{_CDN}/avatars/{avatar_id}.mp4",
        "gender": gender,
        "thumbnailUrl": f"{_CDN}/avatar/thumbnail/{avatar_id}.png",
        "crop_arr": [],
    }


# Official talking avatars (type 1) of `GET /api/open/v3/avatar/list`.
TALKING_AVATARS: tuple[dict[str, Any], ...] = (
    _avatar("Yasmin_in_White_shirt_20231121", "Yasmin in White shirt", "female", 1, 0x93),
    _avatar("Leo_in_Blue_suit_20231122", "Leo in Blue suit", "male", 1, 0x94),
    _avatar("Mia_in_Green_dress_20231123", "Mia in Green dress", "female", 1, 0x95),
)

# Official streaming avatars (type 2): the docs say there is one option today.
LIVE_AVATARS: tuple[dict[str, Any], ...] = (
    {
        "_id": "67498e55cd053926b2e75cf2",
        "uid": 1,
        "type": 2,
        "from": 2,
        "avatar_id": "dvp_Tristan_cloth2_1080P",
        "voice_id": "iP95p4xoKVk53GoZ742B",
        "name": "tristan_dvp",
        "url": "https://static.website-files.org/assets/avatar/avatar/streaming_avatar/tristan_10s_silence.mp4",
        "thumbnailUrl": "https://static.website-files.org/assets/avatar/avatar/thumbnail/tristan_cloth2.webp",
        "gender": "male",
        "available": True,
    },
)

_ICONS = "https://d11fbe263bhqij.cloudfront.net/agicontent/video/icons"

LANGUAGES: tuple[dict[str, str], ...] = tuple(
    {"lang_code": code, "lang_name": name, "url": f"{_ICONS}/{code.capitalize()}.png"}
    for code, name in (
        ("en", "English"),
        ("fr", "French"),
        ("zh", "Chinese (Simplified)"),
        ("es", "Spanish"),
        ("de", "German"),
        ("it", "Italian"),
        ("pt", "Portuguese"),
        ("ja", "Japanese"),
        ("ko", "Korean"),
        ("hi", "Hindi"),
        ("ar", "Arabic"),
        ("ru", "Russian"),
        ("nl", "Dutch"),
        ("pl", "Polish"),
        ("tr", "Turkish"),
        ("vi", "Vietnamese"),
        ("id", "Indonesian"),
        ("th", "Thai"),
    )
)

LANGUAGE_CODES = frozenset(lang["lang_code"] for lang in LANGUAGES)
