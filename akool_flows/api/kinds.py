"""THE registry: one entry per Akool job kind.

Everything per kind — the client's submit/status/cancel, the batch engine's validation and cost,
the Airflow operators, the notebook forms and the CLI — is derived from these entries. Adding a
kind is one entry here (plus its request model in ``models.py``).
"""

from __future__ import annotations

import functools
import re
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from pydantic.fields import FieldInfo

from akool_flows.api import models as m
from akool_flows.api.errors import UnknownKindError, ValidationError
from akool_flows.api.pricing import MODERATION_PRICE, moderation_credits  # noqa: F401 - re-exported
from akool_flows.api.pricing import image_to_video_credits
from akool_flows.api.redact import redact_urls_in
from akool_flows.api.unknown_fields import UnknownFieldWarning, unknown_fields, warn_unknown  # noqa: F401

V3 = "/api/open/v3"
V4 = "/api/open/v4"


@dataclass(frozen=True)
class JobKind:
    """How one Akool job kind is created, polled, read and cancelled."""

    name: str
    title: str
    description: str
    create_path: str
    request_model: type[BaseModel]
    status_path: str
    #: Query parameter that carries the id on the status endpoint.
    status_id_param: str
    #: Fields of the status payload that hold the 1-4 status code, first present wins.
    status_fields: tuple[str, ...]
    #: Fields that hold result URLs, in order of preference.
    result_fields: tuple[str, ...]
    #: Akool's webhook "type" label for this kind (None: no webhookUrl on this endpoint).
    webhook_type: str | None
    #: Status endpoint takes many comma-separated ids and answers `data.result[]`.
    batch_poll: bool = False
    #: HTTP method of the status endpoint: GET takes the id in the query, POST in the JSON body.
    status_method: str = "GET"
    #: Cancel endpoint and the create-response field whose value it takes.
    cancel_path: str | None = None
    cancel_body_field: str | None = None
    cancel_id_field: str | None = None
    #: Endpoint that deletes finished results by comma-separated ids (body field ``_ids``).
    delete_path: str | None = None
    #: Status payload fields that report credits spent, first present wins.
    credit_fields: tuple[str, ...] = ("deduction_credit",)
    #: Status payload fields that report media duration in seconds.
    duration_fields: tuple[str, ...] = ()
    #: What the result file is (for artifact names): image, video, audio, text, none.
    result_media: str = "none"
    #: Status answers `data` as a list (avatar detail).
    status_data_is_list: bool = False
    #: Example fields for docs, demos and tests (valid against the request model).
    example: Mapping[str, Any] = field(default_factory=dict)
    #: Fields whose URLs are face-bearing media for which face detect can fill `opts`.
    face_fields: tuple[str, ...] = ()
    #: The job's answer is a verdict (`JobStatus.conclusion`) rather than a file: the name of the
    #: results column that holds it, or None. A webhook never carries it (one status call does).
    verdict_field: str | None = None
    #: Price of one job from its fields when the docs publish one: ``(fields, duration) ->
    #: credits``, or None (unknown: the estimate says so rather than invent a price).
    price: Callable[[Mapping[str, Any], float | None], float | None] | None = None
    #: Whether a caller that runs one job waits for it to finish unless told otherwise. False
    #: for jobs whose useful life is while they run (a live session is for streaming: the
    #: caller wants its id at once, not its end).
    waits_by_default: bool = True
    #: A request field whose comma-separated values make one job each in a single create call
    #: (video translation's ``language: "fr,de,ja"``); Akool answers each in ``all_results``.
    split_field: str | None = None
    #: `JobStatus` fields a webhook event does not carry for this kind. Akool's callback body is
    #: only ``_id``, ``status``, ``type`` and ``url`` (docs, "Webhook"), so a job completed by
    #: webhook needs one status call for these; listed per kind so every waiter (batch engine,
    #: trigger, operator, sensor) asks the same question.
    event_lacks: tuple[str, ...] = ("credits",)

    # -- derived ---------------------------------------------------------------------------

    @property
    def accepts_webhook(self) -> bool:
        return "webhookUrl" in self.request_model.model_fields

    @property
    def cancellable(self) -> bool:
        return self.cancel_path is not None

    @property
    def field_names(self) -> list[str]:
        """The docs' field names this kind accepts (aliases where the docs use one)."""
        return [f.alias or n for n, f in self.request_model.model_fields.items()]

    @property
    def url_fields(self) -> tuple[str, ...]:
        """Top-level fields that take the URL of a media file Akool fetches (``modifyImage``,
        ``audio_url``...): the fields whose model type is ``Url``, bar ``webhookUrl`` (a callback,
        not an input). Staging (`akool_flows.batch.staging`) uploads local files given there."""
        return _url_fields(self.request_model)

    @property
    def required_fields(self) -> list[str]:
        return [f.alias or n for n, f in self.request_model.model_fields.items() if f.is_required()]

    def field_description(self, name: str) -> str | None:
        """What a request field holds, from its model (also when nested in an Optional), or None."""
        return _description(self, (name,))

    def validate(self, fields: Mapping[str, Any], *, strict: bool = False) -> BaseModel:
        """Validate create fields; raise `ValidationError` naming each bad field and what is allowed.

        A field the docs do not list is kept and sent as given, with one `UnknownFieldWarning`
        per kind and field per process; ``strict=True`` refuses it instead."""
        try:
            model = self.request_model.model_validate(dict(fields))
        except PydanticValidationError as exc:
            raise ValidationError(describe_validation_error(self, exc), kind=self.name,
                                  field=_first_field(self, exc)) from None
        unknown = list(unknown_fields(model))
        if unknown and strict:
            raise ValidationError(f"{self.name}: " + "; ".join(
                f"{path}: unknown field (allowed: {', '.join(allowed)})" for path, allowed in unknown),
                kind=self.name, field=unknown[0][0])
        for path, _ in unknown:
            warn_unknown(self.name, path)
        return model

    def build_body(self, fields: Mapping[str, Any], *, strict: bool = False) -> dict[str, Any]:
        return m.dump_request(self.validate(fields, strict=strict))

    def splits(self, fields: Mapping[str, Any]) -> bool:
        """Whether these create fields make several jobs (see `split_field`)."""
        return self.split_field is not None and "," in str(fields.get(self.split_field) or "")

    def missing_after_event(self, status: Any) -> tuple[str, ...]:
        """What a terminal status read from a webhook event still lacks (empty: nothing, no
        status call needed). A failed job's event lacks Akool's code and message."""
        if getattr(status, "state", None) == "failed":
            return () if getattr(status, "error_code", None) is not None else ("error_code",)
        missing = [f for f in self.event_lacks if getattr(status, f, None) is None]
        if self.result_fields and not getattr(status, "result_urls", ()):
            missing.append("result_urls")
        return tuple(missing)

    def estimate_credits(self, fields: Mapping[str, Any], *, duration_seconds: float | None = None) -> float | None:
        """Credits the job will cost when the docs publish a price; None when unknown."""
        if self.price is None:
            return None
        return self.price(fields, duration_seconds)


#: The validator of the models' ``Url`` type: a field whose type carries it takes a media URL.
_URL_CHECK = typing.get_args(m.Url)[1].func


@functools.cache
def _url_fields(model: type[BaseModel]) -> tuple[str, ...]:
    return tuple(info.alias or name for name, info in model.model_fields.items()
                 if name != "webhookUrl" and _takes_url(info.annotation, info.metadata))


def _takes_url(annotation: Any, metadata: list[Any]) -> bool:
    """Whether a field's type carries the models' http(s) URL validator (also inside an Optional)."""
    if any(getattr(meta, "func", None) is _URL_CHECK for meta in metadata):
        return True
    return any(_takes_url(arg, list(getattr(arg, "__metadata__", ()))) for arg in typing.get_args(annotation))


def _first_field(kind: JobKind, exc: PydanticValidationError) -> str | None:
    for err in exc.errors():
        if err.get("loc"):
            return ".".join(str(p) for p in err["loc"])
    # Cross-field rules (model validators) have no location: name the first field they mention.
    for err in exc.errors():
        msg = str(err.get("msg", ""))
        hits = [(m.start(), name) for name in kind.field_names
                if (m := re.search(rf"(?<![\w]){re.escape(name)}(?![\w])", msg))]
        if hits:
            return min(hits)[1]
    return None


def _description(kind: JobKind, loc: tuple[Any, ...]) -> str | None:
    """The description of the field at `loc` (e.g. ("sourceImage", 0, "opts")), if it has one."""
    model: Any = kind.request_model
    names = [p for p in loc if isinstance(p, str)]
    for i, part in enumerate(names):
        info = next((f for n, f in model.model_fields.items() if part in (n, f.alias)), None)
        if info is None:
            return None
        if i == len(names) - 1:
            return info.description or _nested_description(info.annotation)
        model = nested_model(info.annotation)
        if model is None:
            return None
    return None


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field annotation (list[FaceRef] | None -> FaceRef), or None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = nested_model(arg)
        if found is not None:
            return found
    return None


def _nested_description(annotation: Any) -> str | None:
    """The description of an `Annotated[..., Field(description=...)]` inside an Optional."""
    for arg in typing.get_args(annotation):
        if isinstance(arg, FieldInfo) and arg.description:
            return arg.description
        found = _nested_description(arg)
        if found:
            return found
    return None


def _shown(value: Any) -> Any:
    # Row rejections are plain text in results files, not exceptions: redact here too.
    return redact_urls_in(value) if isinstance(value, str) else value


def describe_validation_error(kind: JobKind, exc: PydanticValidationError) -> str:
    """One readable sentence per problem: the field, what is wrong, what is allowed."""
    problems = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "request"
        etype = err.get("type", "")
        if etype == "missing":
            problems.append(f"{loc}: required field is missing")
        elif etype == "extra_forbidden":
            problems.append(f"{loc}: unknown field (allowed: {', '.join(kind.field_names)})")
        elif etype == "literal_error":
            expected = err.get("ctx", {}).get("expected", "")
            problems.append(f"{loc}: got {_shown(err.get('input'))!r}, allowed: {expected}")
        else:
            msg = err.get("msg", "invalid").removeprefix("Value error, ")
            shown = err.get("input")
            shown = f" (got {_shown(shown)!r})" if isinstance(shown, (int, float, str)) and len(str(shown)) < 80 else ""
            described = _description(kind, err.get("loc", ()))
            if etype == "string_pattern_mismatch" and described:
                # A regex is not an explanation; the field's description says what is allowed.
                msg = f"expected {described}"
            problems.append(f"{loc}: {msg}{shown}")
    return f"{kind.name}: " + "; ".join(problems)


def _moderation_price(fields: Mapping[str, Any], duration_seconds: float | None) -> float | None:
    return moderation_credits(int(fields["type"]), str(fields.get("content", "")), duration_seconds=duration_seconds)


def _image_to_video_price(fields: Mapping[str, Any], duration_seconds: float | None) -> float | None:
    return image_to_video_credits(str(fields.get("resolution")), int(fields.get("video_length") or 0),
                                  model_name=fields.get("model_name"))


_IMG = "https://example.com/photo.jpg"
_FACE = {"path": "https://example.com/face.png", "opts": "262,175:363,175:313,215:272,279"}
_AUDIO_STATUS = dict(status_path=f"{V3}/audio/infobymodelid", status_id_param="audio_model_id",
                     status_fields=("status",), result_fields=("url",), result_media="audio")
_IMAGE_STATUS = dict(status_path=f"{V3}/content/image/infobymodelid", status_id_param="image_model_id",
                     status_fields=("image_status",), result_fields=("image", "upscaled_urls"),
                     result_media="image")
_VIDEO_STATUS = dict(status_path=f"{V3}/content/video/infobymodelid", status_id_param="video_model_id",
                     status_fields=("video_status",), result_fields=("video",), result_media="video",
                     credit_fields=("deduction_duration", "deduction_lock_duration", "deduction_credit"),
                     duration_fields=("video_duration", "video_lock_duration"))
_FACESWAP_STATUS = dict(status_path=f"{V3}/faceswap/result/listbyids", status_id_param="_ids",
                        status_fields=("faceswap_status",), result_fields=("url",), batch_poll=True,
                        cancel_path=f"{V3}/faceswap/job/del", cancel_body_field="job_ids",
                        cancel_id_field="job_id", webhook_type="faceswap",
                        delete_path=f"{V3}/faceswap/result/delbyids",
                        credit_fields=("deduction_credit", "deduction_duration"),
                        duration_fields=("video_duration",))

KINDS: dict[str, JobKind] = {k.name: k for k in (
    JobKind("tts", "Text to speech", "Speak a text with a voice from the voice list.",
            f"{V3}/audio/create", m.TTSRequest, webhook_type="audio", **_AUDIO_STATUS,
            example={"input_text": "Hello from akool_flows.", "voice_id": "LcfcDJNUP1GQjkzn1xUU",
                     "rate": "100%"}),
    JobKind("voice_clone", "Voice clone", "Speak a text in a voice cloned from a sample.",
            f"{V3}/audio/clone", m.VoiceCloneRequest, webhook_type="audio", **_AUDIO_STATUS,
            example={"input_text": "Hello in my own voice.", "rate": "100%",
                     "voice_url": "https://example.com/sample.mp3"}),
    JobKind("background_change", "Background change", "Put a foreground image on a new background.",
            f"{V3}/content/image/bg/replace", m.BackgroundChangeRequest,
            webhook_type="background change", **_IMAGE_STATUS,
            example={"color_code": "#c9aafb", "canvas_size": "3840x3840", "origin_img": _IMG,
                     "modify_origin_img_size": "3060x3824", "overlay_origin_x": 388, "overlay_origin_y": 8}),
    JobKind("image_generate", "Image generation", "Text to image, or image to image with source_image.",
            f"{V3}/content/image/createbyprompt", m.ImageGenerateRequest, webhook_type="image",
            **_IMAGE_STATUS, example={"prompt": "A lighthouse at dawn, watercolor", "scale": "16:9"}),
    JobKind("image_button", "Image 4K / variation", "U1-U4 upscale or V1-V4 vary a generated image.",
            f"{V3}/content/image/createbybutton", m.ImageButtonRequest, webhook_type="image",
            **_IMAGE_STATUS, example={"_id": "65d3206b83ccf5ab7d46cdc6", "button": "U2"}),
    JobKind("faceswap_image", "Face swap (image)", "Swap faces in an image.",
            f"{V3}/faceswap/highquality/specifyimage", m.FaceswapImageRequest,
            face_fields=("modifyImage",), **{**_FACESWAP_STATUS, "result_media": "image"},
            example={"sourceImage": [_FACE], "targetImage": [_FACE], "face_enhance": 0,
                     "modifyImage": _IMG}),
    JobKind("faceswap_video", "Face swap (video)", "Swap faces in a video.",
            f"{V3}/faceswap/highquality/specifyvideo", m.FaceswapVideoRequest,
            face_fields=("modifyVideo",), **{**_FACESWAP_STATUS, "result_media": "video"},
            example={"sourceImage": [_FACE], "targetImage": [_FACE], "face_enhance": 0,
                     "modifyVideo": "https://example.com/clip.mp4"}),
    JobKind("reage_image", "Re-age (image)", "Make faces in an image older or younger.",
            f"{V3}/faceswap/highquality/imgreage", m.ReageImageRequest,
            face_fields=("modifyImage",), **{**_FACESWAP_STATUS, "result_media": "image"},
            example={"targetImage": [_FACE], "face_reage": 10, "modifyImage": _IMG}),
    JobKind("reage_video", "Re-age (video)", "Make faces in a video older or younger.",
            f"{V3}/faceswap/highquality/vidreage", m.ReageVideoRequest,
            face_fields=("modifyVideo",), **{**_FACESWAP_STATUS, "result_media": "video"},
            example={"targetImage": [_FACE], "face_reage": -10,
                     "modifyVideo": "https://example.com/clip.mp4"}),
    JobKind("moderation", "Content moderation (Jarvis)",
            "Compliant / Non-Compliant / Unknown for a text, image, audio or video.",
            f"{V3}/content/analysis/sentiment", m.ModerationRequest,
            status_path=f"{V3}/content/analysis/infobyid", status_id_param="_id",
            status_fields=("status",), result_fields=(), webhook_type="moderation",
            result_media="text", credit_fields=("deduction_credit",), verdict_field="conclusion",
            price=_moderation_price, event_lacks=("conclusion", "credits"),
            example={"content": "Have a great day, everyone!", "type": 4, "language": "en"}),
    JobKind("lipsync", "Lip sync", "Sync a video's lips to an audio track.",
            f"{V3}/content/video/lipsync", m.LipsyncRequest, webhook_type="lipsync", **_VIDEO_STATUS,
            example={"video_url": "https://example.com/clip.mp4", "audio_url": "https://example.com/voice.mp3"}),
    JobKind("talking_photo", "Talking photo", "Animate a photo to speak an audio track.",
            f"{V3}/content/video/createbytalkingphoto", m.TalkingPhotoRequest,
            webhook_type="talking photo", **_VIDEO_STATUS,
            example={"talking_photo_url": _IMG, "audio_url": "https://example.com/voice.mp3"}),
    JobKind("talking_avatar", "Talking avatar", "Render an avatar video (3840x2160) speaking audio.",
            f"{V3}/talkingavatar/create", m.TalkingAvatarRequest, webhook_type="avatar", **_VIDEO_STATUS,
            example={"width": 3840, "height": 2160, "avatar_from": 3, "elements": [
                {"type": "avatar", "url": "https://example.com/avatar.mp4", "scale_x": 1, "scale_y": 1,
                 "width": 1080, "height": 1080, "offset_x": 1920, "offset_y": 1080},
                {"type": "audio", "url": "https://example.com/voice.mp3"}]}),
    JobKind("video_translation", "Video translation", "Translate a video's speech, optionally lip-synced.",
            f"{V3}/content/video/createbytranslate", m.VideoTranslationRequest,
            webhook_type="video translate", split_field="language",
            **{**_VIDEO_STATUS, "result_fields": ("video", "lipsync_video_url")},
            example={"url": "https://example.com/clip.mp4", "source_language": "en", "language": "fr",
                     "lipsync": False}),
    JobKind("image_to_video", "Image to video", "Animate an image by a prompt or an effect, with or without audio.",
            f"{V4}/image2Video/createBySourcePrompt", m.ImageToVideoRequest,
            status_path=f"{V4}/image2Video/resultsByIds", status_id_param="_ids", status_method="POST",
            batch_poll=True, status_fields=("status",), result_fields=("video_url",), webhook_type=None,
            result_media="video", duration_fields=("video_duration",), price=_image_to_video_price,
            example={"image_url": _IMG, "prompt": "Slow camera push-in, leaves moving in the wind",
                     "negative_prompt": "blurry, distorted", "resolution": "720p", "video_length": 5,
                     "audio_type": 3}),
    JobKind("avatar_upload", "Avatar upload", "Create a talking (type 1) or streaming (type 2) avatar.",
            f"{V3}/avatar/create", m.AvatarUploadRequest,
            status_path=f"{V3}/avatar/detail", status_id_param="id", status_fields=("status",),
            result_fields=("url",), webhook_type=None, status_data_is_list=True, result_media="video",
            credit_fields=(), example={"url": "https://example.com/avatar.mp4", "avatar_id": "myavatar01",
                                       "type": "2", "url_from": 1}),
    JobKind("live_session", "Live avatar session", "Open a streaming avatar session (Agora credentials).",
            f"{V4}/liveAvatar/session/create", m.LiveSessionRequest,
            status_path=f"{V4}/liveAvatar/session/detail", status_id_param="id", status_fields=("status",),
            result_fields=(), webhook_type=None, cancel_path=f"{V4}/liveAvatar/session/close",
            cancel_body_field="id", cancel_id_field="_id", credit_fields=(), waits_by_default=False,
            example={"avatar_id": "dvp_Tristan_cloth2_1080P", "duration": 600}),
)}


def get_kind(name: str | JobKind) -> JobKind:
    """The registry entry for `name`; a clear error listing the kinds when it is unknown."""
    if isinstance(name, JobKind):
        return name
    try:
        return KINDS[name]
    except KeyError:
        raise UnknownKindError(f"unknown job kind {name!r}; allowed: {', '.join(KINDS)}",
                               field="kind") from None


def kind_names() -> list[str]:
    return list(KINDS)

