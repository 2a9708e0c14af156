"""Pydantic request models for every Akool job kind, with the docs' own field names.

Each model validates what the docs constrain, so bad input fails here, before any credit is
spent. A field a model does not know is kept and sent as given: Akool's own code sends many
the docs do not list (``speaker_num``, ``voices_map``, ``knowledge_id``...), and a client that
refused them could not use those features. `JobKind.validate` warns once per kind and field,
and refuses them with ``strict=True`` (a typo such as ``modifyimage`` is ignored by Akool and
still paid for). ``dump_request`` turns a model into the exact JSON body.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_URL_RE = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)
_SIZE_RE = re.compile(r"^\d{1,5}x\d{1,5}$")
_OPTS_RE = re.compile(r"^-?\d+(\.\d+)?,-?\d+(\.\d+)?(:-?\d+(\.\d+)?,-?\d+(\.\d+)?)*$")
_HEX_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


def _http_url(value: str) -> str:
    value = value.strip()
    if not _URL_RE.match(value):
        raise ValueError("must be an http(s) URL")
    return value


def _size(value: str) -> str:
    if not _SIZE_RE.match(value):
        raise ValueError('must be "WIDTHxHEIGHT", e.g. "3840x3840"')
    return value


Url = Annotated[str, AfterValidator(_http_url)]
Size = Annotated[str, AfterValidator(_size)]
Landmarks = Annotated[str, Field(pattern=_OPTS_RE.pattern,
                                 description='face landmarks "x,y:x,y:x,y:x,y" (face detect landmarks_str)')]


def _webhook_url(value: str) -> str:
    # Akool's demos send "" for "no callback"; keep it as given rather than refuse it.
    return value if value.strip() == "" else _http_url(value)


WebhookUrl = Annotated[str, AfterValidator(_webhook_url)]


class AkoolModel(BaseModel):
    # extra="allow": unknown fields are kept (as given, unvalidated) and sent; see the module doc.
    model_config = ConfigDict(extra="allow", populate_by_name=True, str_strip_whitespace=True,
                              frozen=False)


class WebhookMixin(AkoolModel):
    webhookUrl: WebhookUrl | None = Field(None, description='Callback URL; Akool POSTs the encrypted result there '
                                                            '("" for none).')


class FaceRef(AkoolModel):
    """One detected face: the crop's URL and its landmarks (`opts`)."""

    path: Url
    opts: Landmarks


# --- audio -----------------------------------------------------------------------------------

_RATE = Annotated[str, Field(pattern=r"^(100|[1-9]?\d)%$", description='speaking speed "0%".."100%"')]


def _max_words(limit: int):
    def check(value: str) -> str:
        if len(value.split()) > limit:
            raise ValueError(f"is limited to {limit} words")
        return value
    return AfterValidator(check)


class TTSRequest(WebhookMixin):
    input_text: Annotated[str, Field(min_length=1), _max_words(5000)]
    voice_id: Annotated[str, Field(min_length=1)]
    rate: _RATE | None = None


class VoiceCloneRequest(WebhookMixin):
    input_text: Annotated[str, Field(min_length=1), _max_words(5000)]
    rate: _RATE
    voice_url: Url | None = None
    voice_id: str | None = None

    @model_validator(mode="after")
    def _one_voice(self) -> VoiceCloneRequest:
        if not self.voice_url and not self.voice_id:
            raise ValueError("one of voice_id or voice_url is required")
        return self


# --- images ----------------------------------------------------------------------------------

class BackgroundChangeRequest(WebhookMixin):
    origin_img: Url
    modify_origin_img_size: Size
    overlay_origin_x: int
    overlay_origin_y: int
    canvas_size: Size
    color_code: Annotated[str, Field(pattern=_HEX_RE.pattern, description='hex color, e.g. "#aafbe3"')] | None = None
    template_url: Url | None = None
    modify_template_size: Size | None = None
    overlay_template_x: int | None = None
    overlay_template_y: int | None = None
    removeBg: bool | None = None

    @model_validator(mode="after")
    def _template_fields(self) -> BackgroundChangeRequest:
        extra = [n for n in ("modify_template_size", "overlay_template_x", "overlay_template_y")
                 if getattr(self, n) is not None]
        if extra and not self.template_url:
            raise ValueError(f"{', '.join(extra)} can only be used together with template_url")
        return self


ImageScale = Literal["1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3"]


class ImageGenerateRequest(WebhookMixin):
    prompt: Annotated[str, Field(min_length=1)]
    scale: ImageScale | None = None
    source_image: Url | None = None


class ImageButtonRequest(WebhookMixin):
    image_id: Annotated[str, Field(alias="_id", min_length=1,
                                   description="_id of a completed image generation")]
    button: Literal["U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4"]


# --- face swap / re-age ----------------------------------------------------------------------

FaceList = Annotated[list[FaceRef], Field(min_length=1, max_length=8)]


class _FacePairs(WebhookMixin):
    sourceImage: FaceList
    targetImage: FaceList
    face_enhance: Literal[0, 1] | None = None

    @model_validator(mode="after")
    def _paired(self):
        if len(self.sourceImage) != len(self.targetImage):
            raise ValueError("sourceImage and targetImage must list the same number of faces, in the same order")
        return self


class FaceswapImageRequest(_FacePairs):
    modifyImage: Url


class FaceswapVideoRequest(_FacePairs):
    modifyVideo: Url


Reage = Annotated[int, Field(ge=-30, le=30, description="age shift in [-30, 30]")]


class ReageImageRequest(WebhookMixin):
    targetImage: FaceList
    face_reage: Reage
    modifyImage: Url


class ReageVideoRequest(WebhookMixin):
    targetImage: FaceList
    face_reage: Reage
    modifyVideo: Url


# --- moderation ------------------------------------------------------------------------------

MODERATION_TYPES = {1: "image", 2: "video", 3: "audio", 4: "text"}


class ModerationRequest(WebhookMixin):
    content: Annotated[str, Field(min_length=1, description="URL, or the text itself when type=4")]
    type: Literal[1, 2, 3, 4] = Field(description="1 image, 2 video, 3 audio, 4 text")
    language: Annotated[str, Field(pattern=r"^[a-z]{2}$", description="ISO-639-1 code, e.g. en")] | None = None
    input: str | None = Field(None, description="your own rules, in words")

    @model_validator(mode="after")
    def _url_for_media(self) -> ModerationRequest:
        if self.type != 4:
            try:
                _http_url(self.content)
            except ValueError:
                raise ValueError(
                    f"content must be an http(s) URL when type={self.type} ({MODERATION_TYPES[self.type]})"
                ) from None
        return self


# --- video -----------------------------------------------------------------------------------

class LipsyncRequest(WebhookMixin):
    video_url: Url
    audio_url: Url


class TalkingPhotoRequest(WebhookMixin):
    talking_photo_url: Url
    audio_url: Url


class TalkingAvatarElement(AkoolModel):
    type: Literal["avatar", "image", "audio"]
    url: str | None = None
    scale_x: float | None = None
    scale_y: float | None = None
    offset_x: float | None = None
    offset_y: float | None = None
    width: float | None = None
    height: float | None = None
    avatar_id: str | None = None

    @model_validator(mode="after")
    def _by_type(self) -> TalkingAvatarElement:
        if self.type in ("image", "avatar"):
            missing = [n for n in ("scale_x", "scale_y", "offset_x", "offset_y") if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{self.type} elements need {', '.join(missing)}")
        if self.type == "audio" and not self.url:
            raise ValueError("audio elements need url")
        if self.type == "image" and self.url and not (_HEX_RE.match(self.url) or _URL_RE.match(self.url)):
            raise ValueError("image element url must be an http(s) URL or a hex color code")
        if self.type == "avatar" and not (self.url or self.avatar_id):
            raise ValueError("avatar elements need url or avatar_id")
        return self


class TalkingAvatarRequest(WebhookMixin):
    width: Literal[3840] = Field(3840, description="must be 3840")
    height: Literal[2160] = Field(2160, description="must be 2160")
    avatar_from: Literal[2, 3] = Field(description="2 official avatar, 3 your own avatar URL")
    elements: Annotated[list[TalkingAvatarElement], Field(min_length=1)]

    @model_validator(mode="after")
    def _avatar(self) -> TalkingAvatarRequest:
        avatars = [e for e in self.elements if e.type == "avatar"]
        if not avatars:
            raise ValueError("elements must contain an avatar element")
        if self.avatar_from == 3 and any(not e.url for e in avatars):
            raise ValueError("avatar_from=3 (your own avatar) needs the avatar element's url")
        return self


def _languages(value: str) -> str:
    codes = [c.strip() for c in value.split(",")]
    if any(not c for c in codes):
        raise ValueError('must be a language code or several joined by commas, e.g. "fr" or "fr,de,ja"')
    if len(set(codes)) != len(codes):
        raise ValueError(f"lists a language twice: {value!r}")
    return value


class VideoTranslationRequest(WebhookMixin):
    url: Url
    source_language: Annotated[str, Field(min_length=2, description='language of the video; "DEFAULT" detects it')]
    language: Annotated[str, Field(min_length=2, description='target language, or several joined by commas '
                                                             '("fr,de,ja": one job per language)'),
                        AfterValidator(_languages)]
    lipsync: bool | None = None


# --- image to video (v4) ---------------------------------------------------------------------

def _int_code(data: Any, name: str) -> Any:
    # Akool's image-to-video demo sends audio_type as a string ("1"); the docs type it Integer.
    if isinstance(data, dict) and isinstance(data.get(name), str) and data[name].strip().isdigit():
        data = {**data, name: int(data[name])}
    return data


AudioType = Literal[1, 2, 3]


class ImageToVideoFields(AkoolModel):
    """What both image-to-video creates (one video, or ``count`` of them) take."""

    image_url: Url = Field(description="the image to animate (PNG or JPEG)")
    prompt: Annotated[str, Field(min_length=1, description="how to animate the image (ignored with effect_code)")]
    negative_prompt: str | None = Field(None, description="what to avoid in the animation")
    extend_prompt: bool | None = None
    resolution: Annotated[str, Field(pattern=r"^(\d{3,4}p|4k)$",
                                     description='"720p", "1080p" or "4k" (a model\'s resolutionList)')]
    video_length: Annotated[int, Field(gt=0, description="seconds: 5 or 10 (a model's durationList)")]
    audio_url: Url | None = Field(None, description="your audio, with audio_type 2")
    is_premium_model: bool | None = None
    effect_code: str | None = Field(None, description="an effect from the effects list (replaces the prompt)")
    webhookurl: WebhookUrl | None = Field(None, description="Callback URL (the docs spell it webhookurl here)")

    @model_validator(mode="before")
    @classmethod
    def _audio_type_as_int(cls, data: Any) -> Any:
        return _int_code(data, "audio_type")

    @model_validator(mode="after")
    def _own_audio(self) -> ImageToVideoFields:
        if getattr(self, "audio_type", None) == 2 and not self.audio_url:
            raise ValueError("audio_type 2 (your own audio) needs audio_url")
        return self


class ImageToVideoRequest(ImageToVideoFields):
    audio_type: AudioType = Field(description="1 AI-generated audio, 2 your audio_url, 3 none")


class ImageToVideoBatchRequest(ImageToVideoFields):
    """``createBySourcePrompt/batch``: ``count`` videos of one image, any model of the model list."""

    audio_type: AudioType | None = Field(None, description="1 AI-generated audio, 2 your audio_url, 3 none")
    model_name: str | None = Field(None, description="a model's value from the AI model list (type 1501)")
    last_image_url: Url | None = Field(None, description="the image of the last frame")
    generate_audio: bool | None = None
    count: Annotated[int, Field(ge=1, le=10, description="videos to make, 1-10")] | None = None


class UpdateVideoAudioRequest(AkoolModel):
    pre_video_id: Annotated[str, Field(min_length=1, description="_id of a completed image-to-video result")]
    audio_url: Url
    audio_type: Literal[1, 2] = Field(description="1 AI-generated audio, 2 your audio_url")

    @model_validator(mode="before")
    @classmethod
    def _audio_type_as_int(cls, data: Any) -> Any:
        return _int_code(data, "audio_type")


# --- avatars and live sessions ---------------------------------------------------------------

class AvatarUploadRequest(AkoolModel):
    url: Url
    # The docs: "Can only contain /^a-zA-Z0-9/".
    avatar_id: Annotated[str, Field(pattern=r"^[A-Za-z0-9]+$", max_length=128,
                                    description="letters and digits only")]
    type: Literal["1", "2"] = Field(description='"1" talking avatar, "2" streaming avatar')
    url_from: Literal[1, 2] | None = Field(None, description="1 Akool or direct link, 2 YouTube/TikTok/X/Drive")

    @model_validator(mode="before")
    @classmethod
    def _type_as_string(cls, data: Any) -> Any:
        # The docs type this field as String ("1"/"2"); callers naturally pass ints.
        if isinstance(data, dict) and isinstance(data.get("type"), int) and not isinstance(data.get("type"), bool):
            data = {**data, "type": str(data["type"])}
        return data


class LiveSessionRequest(AkoolModel):
    avatar_id: Annotated[str, Field(min_length=1)]
    duration: Annotated[int, Field(gt=0, le=3600, description="seconds, at most 3600")]


def dump_request(model: BaseModel) -> dict[str, Any]:
    """The JSON body Akool expects: docs' field names, unset optional fields left out."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
