"""The sandbox's job kinds: what each create endpoint validates, charges and answers.

Kinds are grouped by the status endpoint that reports them (audio, image, faceswap,
analysis, video, avatar, session); a group class renders the documented payload, a
per-kind ``prepare`` function validates the body and returns a :class:`Plan`.
Names match the client registry (``akool_flows.api.kinds``) so counters line up.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from akool_flows.sandbox import catalog
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import COMPLETED, FAILED, Job, new_object_id, new_uuid
from akool_flows.sandbox.moderation import (
    MODERATION_TYPES,
    classify,
    is_url,
    media_duration_seconds,
    moderation_price,
)

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["ACCOUNT_UID", "KINDS", "KINDS_BY_PATH", "KindSpec", "Plan"]

ACCOUNT_UID = 101690
ACCOUNT_USER_ID = "64d985c5571729d3e2999477"
FACESWAP_MSG = "Please be patient! If your results are not generated in three hours, please check your input image."


@dataclass
class Plan:
    """What a validated create request will become."""

    cost: float
    fields: dict[str, Any] = field(default_factory=dict)
    """Kind-specific static payload fields (merged into the group's base payload)."""
    result_ext: str = ""
    """Extension of the result file served under /_sandbox/files ("" = no file)."""
    result_url: str | None = None
    """A result URL that is not a sandbox file (e.g. an uploaded avatar's own link)."""
    lifetime: float | None = None
    """Seconds from creation to the end of the job when not ``job_seconds`` (sessions)."""
    extra: dict[str, Any] = field(default_factory=dict)
    on_created: Callable[[Job], None] | None = None
    """Called under the state lock once the job exists (registers avatars, buttons...)."""


Prepare = Callable[[dict[str, Any], "SandboxState"], Plan]


class KindSpec:
    """One job kind. Subclasses render the payload of their status endpoint."""

    group: ClassVar[str]
    status_field: ClassVar[str] = "status"
    create_msg: ClassVar[str] = "OK"
    #: Credit fields of the payload; a failed job is not charged, so they read 0.
    charge_fields: ClassVar[tuple[str, ...]] = ()

    def __init__(self, name: str, path: str, prepare: Prepare, *, webhook_type: str, error: tuple[int, str]) -> None:
        self.name = name
        self.path = path
        self.prepare = prepare
        self.webhook_type = webhook_type
        self.error = error

    def __repr__(self) -> str:
        return f"<KindSpec {self.name} POST {self.path}>"

    # -- payloads ---------------------------------------------------------------------------
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        """Static fields of the status payload (computed once at creation)."""
        raise NotImplementedError

    def render(self, job: Job, status: int) -> dict[str, Any]:
        """The status payload for ``status``: static fields plus what changes over time."""
        payload = dict(job.base)
        payload[self.status_field] = status
        if status == COMPLETED:
            self.completed(job, payload)
        elif status == FAILED:
            self.failed(job, payload)
        return payload

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        pass

    def failed(self, job: Job, payload: dict[str, Any]) -> None:
        code, msg = job.failure or self.error
        payload["error_code"] = code
        payload["error_msg"] = msg
        for name in self.charge_fields:
            payload[name] = 0

    def create_data(self, job: Job) -> Any:
        """``data`` of the create response."""
        return self.render(job, 1)

    def webhook_url_field(self, job: Job, status: int) -> str:
        return job.result_url if status == COMPLETED else ""


# --------------------------------------------------------------------------------------
# groups
# --------------------------------------------------------------------------------------
class AudioKind(KindSpec):
    group = "audio"
    charge_fields = ("deduction_credit",)

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "_id": job.id,
            "create_time": job.created_ms,
            "uid": ACCOUNT_UID,
            "from": 3,
            **plan.fields,
            "url": "",
            "status": 1,
            "deduction_credit": job.cost,
            "__v": 0,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        payload["url"] = job.result_url


class ImageKind(KindSpec):
    group = "image"
    charge_fields = ("deduction_credit",)
    status_field = "image_status"

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "_id": job.id,
            "create_time": job.created_ms,
            "uid": ACCOUNT_UID,
            "faceswap_quality": 2,
            "image_id": new_uuid(),
            "image_sub_status": 1,
            "image_status": 1,
            "deduction_credit": job.cost,
            "buttons": [],
            "used_buttons": [],
            "upscaled_urls": [],
            "error_reasons": [],
            **plan.fields,
            "__v": 0,
        }

    def render(self, job: Job, status: int) -> dict[str, Any]:
        payload = super().render(job, status)
        payload["image_sub_status"] = status
        used = job.extra.get("used_buttons")
        if used:
            payload["used_buttons"] = list(used)
        return payload

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        payload["image"] = job.result_url
        if job.extra.get("grid"):  # a 4-image grid: each image can be upscaled (U) or varied (V)
            payload["buttons"] = list(BUTTONS)
        if job.kind == "background_change":
            payload["external_img"] = job.result_url.replace(f"{job.id}.png", f"{job.id}-external.png")

    def failed(self, job: Job, payload: dict[str, Any]) -> None:
        super().failed(job, payload)
        code, msg = job.failure or self.error
        payload["error_reasons"] = [{"error_code": code, "error_msg": msg}]


class FaceswapKind(KindSpec):
    """Face swap and re-age: reported by ``faceswap/result/listbyids``, cancellable by ``job_id``."""

    group = "faceswap"
    charge_fields = ("deduction_duration", "deduction_credit")
    status_field = "faceswap_status"
    create_msg = FACESWAP_MSG

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        video = plan.extra["video"]
        duration = plan.extra.get("duration", 0)
        return {
            "faceswap_type": 2 if video else 1,
            "faceswap_quality": 2,
            "faceswap_status": 1,
            "deduction_status": 1,
            "image": 0 if video else 1,
            "video_duration": duration,
            "deduction_duration": _billed_seconds(duration) if video else 0,
            "deduction_credit": job.cost,
            "update_time": 0,
            "_id": job.id,
            "userId": ACCOUNT_USER_ID,
            "uid": ACCOUNT_UID,
            "url": job.result_url,
            "job_id": job.task_id,
            "createdAt": job.created_iso(),
            **plan.fields,
        }

    def render(self, job: Job, status: int) -> dict[str, Any]:
        payload = super().render(job, status)
        if status >= COMPLETED:
            payload["update_time"] = job.created_ms + int((job.done_at - job.created) * 1000)
        return payload

    def failed(self, job: Job, payload: dict[str, Any]) -> None:
        super().failed(job, payload)
        if job.ended_by == "cancel":
            payload["cancelled"] = True

    def create_data(self, job: Job) -> Any:
        return {"_id": job.id, "url": job.result_url, "job_id": job.task_id}


class AnalysisKind(KindSpec):
    group = "analysis"
    charge_fields = ("deduction_credit",)

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "create_time": job.created_ms,
            "uid": ACCOUNT_UID,
            **plan.fields,
            "status": 1,
            "result": "",
            "deduction_credit": job.cost,
            "_id": job.id,
            "__v": 0,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        verdict = job.extra["verdict"]
        payload["result"] = verdict.result
        payload["final_conclusion"] = verdict.final_conclusion


class VideoKind(KindSpec):
    group = "video"
    charge_fields = ("deduction_duration",)
    status_field = "video_status"

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        duration = plan.extra["duration"]
        return {
            "_id": job.id,
            "create_time": job.created_ms,
            "uid": ACCOUNT_UID,
            "faceswap_quality": 2,
            "storage_loc": 1,
            "video_id": new_uuid(),
            "video_status": 1,
            "video_lock_duration": duration,
            "deduction_lock_duration": _billed_seconds(duration),
            "external_video": "",
            "video": "",
            **plan.fields,
            "__v": 0,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        payload["video"] = job.result_url
        payload["deduction_duration"] = payload["deduction_lock_duration"]
        if job.extra.get("lipsync_translation"):
            payload["lipsync_video_url"] = job.result_url

    def create_data(self, job: Job) -> Any:
        payload = self.render(job, 1)
        if job.kind == "talking_avatar":  # the docs' talking-avatar create answer is this subset
            keys = ("_id", "uid", "video_id", "task_id", "video_status", "video", "create_time")
            return {k: payload[k] for k in keys}
        return payload


class AvatarKind(KindSpec):
    group = "avatar"
    charge_fields = ("deduction_credit",)

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "_id": job.id,
            "disabled": False,
            "uid": ACCOUNT_UID,
            **plan.fields,
            "from": 3,
            "status": 1,
            "sort": 0,
            "create_time": job.created_ms,
            "gender": "",
            "thumbnailUrl": f"{job.extra['files_base']}{job.id}-thumbnail.png",
            "crop_arr": [],
            "deduction_credit": job.cost,
        }

    def create_data(self, job: Job) -> Any:
        # The docs answer an object for streaming avatars (type 2) and a one-element
        # array for talking avatars (type 1) from the same endpoint; mirror both.
        payload = self.render(job, 1)
        return payload if payload["type"] == 2 else [payload]


class SessionKind(KindSpec):
    group = "session"

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "_id": job.id,
            "uid": ACCOUNT_UID,
            "type": 1,
            "status": 1,
            "stream_type": "agora",
            **plan.fields,
            "credentials": {
                "agora_uid": 100000 + int(job.id[-4:], 16) % 900000,
                "agora_app_id": "sandbox-agora-app",
                "agora_channel": f"sandbox-{job.id}",
                "agora_token": "sbx-agora-" + secrets.token_hex(16),
            },
            "deduction_credit": job.cost,
        }

    def render(self, job: Job, status: int) -> dict[str, Any]:
        payload = super().render(job, status)
        if status >= COMPLETED:  # an ended session no longer hands out a join token
            payload["credentials"] = {k: v for k, v in payload["credentials"].items() if k != "agora_token"}
        return payload


# --------------------------------------------------------------------------------------
# shared helpers
# --------------------------------------------------------------------------------------
BUTTONS = ("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4")
SCALES = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")
_RATE_RE = re.compile(r"^(\d{1,3})%$")
_HEX_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
_AVATAR_ID_RE = re.compile(r"^[a-zA-Z0-9]+$")
_LANG_RE = re.compile(r"^[a-zA-Z]{2}(?:[-_][a-zA-Z0-9]{2,4})?$")
IMAGE_EXTS = frozenset({"png", "jpg", "jpeg", "webp"})
VIDEO_EXTS = frozenset({"mp4", "mov", "avi"})
THIRD_PARTY_HOSTS = ("youtube.com", "youtu.be", "tiktok.com", "x.com", "twitter.com", "drive.google.com")
MAX_TEXT = 5000


def _billed_seconds(duration: float) -> int:
    """Akool bills video time in started 10-second blocks (docs: 11.7 s -> 20, 0.8 s -> 10)."""
    return max(10, math.ceil(duration / 10) * 10)


def _video_credits(duration: float) -> float:
    # The docs call deduction_duration "credits consumed by the final result": the billed
    # seconds are the credits.
    return float(_billed_seconds(duration))


def _rate(body: dict[str, Any], *, required: bool) -> str:
    rate = v.string(body, "rate", required=required)
    if rate is None:
        return "100%"
    m = _RATE_RE.match(rate)
    if not m or int(m.group(1)) > 100:
        raise param_error(f"rate must be a percentage from '0%' to '100%', got {rate!r}")
    return rate


def _text_credits(text: str) -> float:
    return float(max(1, math.ceil(len(text) / 1000)))


def _ext(url: str) -> str:
    last = urlsplit(url).path.rsplit("/", 1)[-1]
    return last.rsplit(".", 1)[-1].lower() if "." in last else ""


def _webhook_fields(body: dict[str, Any]) -> dict[str, Any]:
    return {"webhookUrl": body["webhookUrl"]} if body.get("webhookUrl") else {}


# --------------------------------------------------------------------------------------
# prepare functions, one per kind
# --------------------------------------------------------------------------------------
def _prepare_tts(body: dict[str, Any], state: SandboxState) -> Plan:
    text = v.string(body, "input_text", max_length=MAX_TEXT)
    voice_id = v.string(body, "voice_id")
    rate = _rate(body, required=False)
    voice = next((x for x in catalog.VOICES if x["voice_id"] == voice_id), None)
    voice_model_id = voice["_id"] if voice else state.voice_model_id(voice_id)
    if voice_model_id is None:
        raise param_error(f"voice_id {voice_id!r} is not in /api/open/v3/voice/list")
    assert text is not None
    return Plan(
        cost=_text_credits(text),
        fields={"input_text": text, "rate": rate, "voice_model_id": voice_model_id},
        result_ext="mp3",
    )


def _prepare_voice_clone(body: dict[str, Any], state: SandboxState) -> Plan:
    text = v.string(body, "input_text", max_length=MAX_TEXT)
    rate = _rate(body, required=True)
    voice_url = v.url(body, "voice_url", required=False)
    voice_id = v.string(body, "voice_id", required=False)
    if not voice_url and not voice_id:
        raise param_error("voice_id or voice_url is required (provide one)")
    assert text is not None
    model_id = state.new_voice_model_id(voice_url or voice_id or "")
    return Plan(
        cost=_text_credits(text) + 1.0,
        fields={"input_text": text, "rate": rate, "voice_model_id": model_id},
        result_ext="mp3",
        on_created=state.register_user_voice,
    )


def _prepare_background_change(body: dict[str, Any], state: SandboxState) -> Plan:
    v.url(body, "origin_img")
    v.size_string(body, "modify_origin_img_size")
    v.integer(body, "overlay_origin_x")
    v.integer(body, "overlay_origin_y")
    v.size_string(body, "canvas_size")
    color = v.string(body, "color_code", required=False)
    if color is not None and not _HEX_COLOR_RE.match(color):
        raise param_error(f"color_code must be a hexadecimal colour like '#aafbe3', got {color!r}")
    template = v.url(body, "template_url", required=False)
    v.size_string(body, "modify_template_size", required=False)
    v.integer(body, "overlay_template_x", required=False)
    v.integer(body, "overlay_template_y", required=False)
    if not template:
        template_fields = ("modify_template_size", "overlay_template_x", "overlay_template_y")
        extra = [k for k in template_fields if body.get(k) is not None]
        if extra:
            raise param_error(f"{', '.join(extra)} can only be used together with template_url")
    v.boolean(body, "removeBg")
    return Plan(cost=4.0, fields={"type": 3}, result_ext="png")


def _prepare_image_generate(body: dict[str, Any], state: SandboxState) -> Plan:
    prompt = v.string(body, "prompt")
    scale = v.one_of(body, "scale", SCALES, required=False) or "1:1"
    source = v.url(body, "source_image", required=False)
    fields: dict[str, Any] = {"origin_prompt": prompt, "prompt": prompt, "scale": scale, "type": 4, "from": 1}
    if source:
        fields["source_image"] = source
    return Plan(cost=2.0, fields=fields, result_ext="png", extra={"grid": True})


def _prepare_image_button(body: dict[str, Any], state: SandboxState) -> Plan:
    origin_id = v.string(body, "_id")
    button = v.one_of(body, "button", BUTTONS)
    assert origin_id is not None
    origin = state.find_job("image", origin_id)
    if not origin.extra.get("grid"):
        raise ApiError(1010, f"You can not operate this content: image {origin_id} has no U/V buttons")
    if origin.status() != COMPLETED:
        raise ApiError(1010, f"You can not operate this content: image {origin_id} is not completed")
    if button in origin.extra.get("used_buttons", ()):
        raise ApiError(1011, f"This content has been operated: button {button} was already used on {origin_id}")

    def mark_used(job: Job) -> None:
        origin.extra.setdefault("used_buttons", []).append(button)

    return Plan(
        cost=2.0,
        fields={
            "image_content_model_id": origin_id,
            "op_button": button,
            "op_buttonMessageId": secrets.token_urlsafe(15)[:20],
            "from": 1,
        },
        result_ext="png",
        extra={"grid": button.startswith("V")},  # a variation is a new grid; an upscale is final
        on_created=mark_used,
    )


def _prepare_faceswap(*, video: bool, reage: bool) -> Prepare:
    media_field = "modifyVideo" if video else "modifyImage"

    def prepare(body: dict[str, Any], state: SandboxState) -> Plan:
        target = v.face_list(body, "targetImage")
        if reage:
            v.integer(body, "face_reage", minimum=-30, maximum=30)
        else:
            source = v.face_list(body, "sourceImage")
            assert source is not None and target is not None
            if len(source) != len(target):
                raise param_error(
                    f"sourceImage and targetImage must have the same number of faces, in the same order "
                    f"(got {len(source)} and {len(target)})"
                )
            v.one_of(body, "face_enhance", (0, 1), required=False)
        media = v.url(body, media_field)
        assert media is not None
        extra: dict[str, Any] = {"video": video}
        if video:
            duration = media_duration_seconds(media)
            extra["duration"] = duration
            cost = _video_credits(duration)
        else:
            cost = 1.0
        return Plan(cost=cost, result_ext="mp4" if video else "png", extra=extra)

    return prepare


def _prepare_moderation(body: dict[str, Any], state: SandboxState) -> Plan:
    type_ = v.one_of(body, "type", tuple(MODERATION_TYPES))
    content = v.string(body, "content", allow_empty=True)
    if content is None:
        raise param_error("content is required (a URL, or text when type is 4)")
    if type_ != 4 and content.strip() and not is_url(content):
        raise param_error(f"content must be a URL when type is {type_} ({MODERATION_TYPES[type_]})")
    language = v.string(body, "language", required=False)
    if language is not None and not _LANG_RE.match(language):
        raise param_error(f"language must be an ISO-639-1 code such as 'en', got {language!r}")
    user_input = v.string(body, "input", required=False)
    return Plan(
        cost=moderation_price(type_, content),
        fields={"type": type_, **_webhook_fields(body)},
        extra={"verdict": classify(type_, content, user_input)},
    )


def _prepare_lipsync(body: dict[str, Any], state: SandboxState) -> Plan:
    video_url = v.url(body, "video_url")
    audio_url = v.url(body, "audio_url")
    assert video_url is not None
    duration = media_duration_seconds(video_url)
    return Plan(
        cost=_video_credits(duration),
        fields={
            "type": 9,
            "from": 2,
            "target_video": video_url,
            "input_audio": audio_url,
            "task_id": new_task_object_id(),
            "lipsync": True,
            **_webhook_fields(body),
        },
        result_ext="mp4",
        extra={"duration": duration},
    )


def _prepare_talking_photo(body: dict[str, Any], state: SandboxState) -> Plan:
    photo = v.url(body, "talking_photo_url")
    audio = v.url(body, "audio_url")
    assert audio is not None
    duration = media_duration_seconds(audio)
    return Plan(
        cost=_video_credits(duration),
        fields={"type": 5, "from": 2, "talking_photo": photo},
        result_ext="mp4",
        extra={"duration": duration},
    )


def _prepare_video_translation(body: dict[str, Any], state: SandboxState) -> Plan:
    url = v.url(body, "url")
    allowed = sorted(catalog.LANGUAGE_CODES)
    source = v.one_of(body, "source_language", allowed)
    language = v.one_of(body, "language", allowed)
    if source == language:
        raise param_error(f"language must differ from source_language (both are {language!r})")
    lipsync = bool(v.boolean(body, "lipsync"))
    v.number(body, "merge_interval", required=False)  # deprecated, still accepted
    v.boolean(body, "face_enhance")  # deprecated, still accepted
    assert url is not None
    key = (url, language)
    if lipsync and state.lipsync_translation_exists(key):
        raise ApiError(1202)
    duration = media_duration_seconds(url)

    def remember(job: Job) -> None:
        if lipsync:
            state.remember_lipsync_translation(key, job)

    return Plan(
        cost=_video_credits(duration),
        fields={
            "type": 8,
            "sub_type": 801,
            "from": 2,
            "target_video": url,
            "source_language": source,
            "language": language,
            "task_id": new_task_object_id(),
            "target_video_md5": _md5(url),
            "pre_video_id": "",
            "lipsync": lipsync,
            "lipSyncType": lipsync,
            **_webhook_fields(body),
        },
        result_ext="mp4",
        extra={"duration": duration, "lipsync_translation": lipsync},
        on_created=remember,
    )


def _prepare_talking_avatar(body: dict[str, Any], state: SandboxState) -> Plan:
    width = v.integer(body, "width")
    height = v.integer(body, "height")
    if width != 3840:
        raise param_error(f"width must be 3840, got {width}")
    if height != 2160:
        raise param_error(f"height must be 2160, got {height}")
    avatar_from = v.one_of(body, "avatar_from", (2, 3))
    elements = body.get("elements")
    if not isinstance(elements, list) or not elements:
        raise param_error("elements is required: an array of avatar, image and audio elements")
    seen: dict[str, int] = {}
    audio_url = ""
    for i, element in enumerate(elements):
        where = f"elements[{i}]"
        if not isinstance(element, dict):
            raise param_error(f"{where} must be an object")
        etype = v.one_of(element, "type", ("avatar", "image", "audio"))
        seen[etype] = seen.get(etype, 0) + 1
        if etype in ("avatar", "image"):
            for name in ("scale_x", "scale_y", "offset_x", "offset_y"):
                if not isinstance(element.get(name), (int, float)) or isinstance(element.get(name), bool):
                    raise param_error(f"{where}.{name} is required (a number) when type is {etype!r}")
            for name in ("width", "height"):
                v.number(element, name, required=False, minimum=0)
        url = element.get("url")
        if etype == "image":
            if not isinstance(url, str) or not url:
                raise param_error(f"{where}.url is required for an image element (a link or a hex colour)")
            if not _HEX_COLOR_RE.match(url):
                v.check_url(f"{where}.url", url)
                ext = _ext(url)
                if ext and ext not in IMAGE_EXTS:
                    raise param_error(f"{where}.url must be a {', '.join(sorted(IMAGE_EXTS))} image, got '.{ext}'")
        elif etype == "audio":
            if not isinstance(url, str) or not url:
                raise param_error(f"{where}.url is required for an audio element")
            v.check_url(f"{where}.url", url)
            audio_url = url
        else:  # avatar
            if avatar_from == 3:
                if not isinstance(url, str) or not url:
                    raise param_error(f"{where}.url is required when avatar_from is 3 (your own avatar)")
                v.check_url(f"{where}.url", url)
                ext = _ext(url)
                if ext and ext not in IMAGE_EXTS | VIDEO_EXTS:
                    allowed = ", ".join(sorted(IMAGE_EXTS | VIDEO_EXTS))
                    raise param_error(f"{where}.url must be an image or video ({allowed}), got '.{ext}'")
            else:
                avatar_id = v.string(element, "avatar_id")
                if not state.talking_avatar_available(avatar_id or ""):
                    raise param_error(f"{where}.avatar_id {avatar_id!r} is not in /api/open/v3/avatar/list")
    if seen.get("avatar") != 1:
        raise param_error(f"elements must contain exactly one avatar element, got {seen.get('avatar', 0)}")
    if not audio_url:
        raise param_error("elements must contain an audio element (what the avatar says)")
    duration = media_duration_seconds(audio_url)
    return Plan(
        cost=_video_credits(duration),
        fields={"task_id": new_task_object_id(), "width": width, "height": height, "avatar_from": avatar_from},
        result_ext="mp4",
        extra={"duration": duration},
    )


def _prepare_avatar_upload(body: dict[str, Any], state: SandboxState) -> Plan:
    url = v.url(body, "url")
    avatar_id = v.string(body, "avatar_id")
    assert avatar_id is not None and url is not None
    if not _AVATAR_ID_RE.match(avatar_id):
        raise param_error(f"avatar_id can only contain letters a-z, A-Z and digits 0-9, got {avatar_id!r}")
    type_raw = v.one_of(body, "type", ("1", "2", 1, 2))
    type_ = int(type_raw)
    url_from = v.one_of(body, "url_from", (1, 2), required=False) or 1
    if url_from == 2:
        host = (urlsplit(url).hostname or "").lower()
        if not any(host == h or host.endswith("." + h) for h in THIRD_PARTY_HOSTS):
            raise param_error(
                f"url must be a YouTube / TikTok / X / Google Drive link when url_from is 2, got host {host!r}"
            )
    if state.avatar_exists(avatar_id):
        raise ApiError(1222, f"Resource already exist: avatar_id {avatar_id!r}")

    def register(job: Job) -> None:
        state.register_avatar(avatar_id, job)

    return Plan(
        cost=10.0,
        fields={"type": type_, "name": avatar_id, "avatar_id": avatar_id, "url": url, "modify_url": url,
                "url_from": url_from},
        result_url=url,
        extra={"avatar_type": type_},
        on_created=register,
    )


def _prepare_live_session(body: dict[str, Any], state: SandboxState) -> Plan:
    avatar_id = v.string(body, "avatar_id")
    duration = v.integer(body, "duration", minimum=1, maximum=3600)
    assert avatar_id is not None and duration is not None
    if not state.live_avatar_available(avatar_id):
        raise param_error(f"avatar_id {avatar_id!r} is not an available streaming avatar "
                          f"(see /api/open/v4/liveAvatar/avatar/list)")
    return Plan(
        cost=float(math.ceil(duration / 60)),
        fields={"avatar_id": avatar_id, "duration": duration},
        lifetime=duration * state.config.session_time_scale,
    )


def new_task_object_id() -> str:
    return new_object_id()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# --------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------
_V3 = "/api/open/v3"
_V4 = "/api/open/v4"

def _kind(cls: type[KindSpec], name: str, path: str, prepare: Prepare, webhook_type: str,
          error: tuple[int, str]) -> KindSpec:
    return cls(name, path, prepare, webhook_type=webhook_type, error=error)


_AUDIO_ERROR = (1201, "create audio error, please try again later")
_IMAGE_ERROR = (1108, "image generate error,please try again later")
_FACESWAP_ERROR = (1016, "Face swapping error")
_VIDEO_ERROR = (1205, "Create video error, please try again later")

KINDS: dict[str, KindSpec] = {
    spec.name: spec
    for spec in (
        _kind(AudioKind, "tts", f"{_V3}/audio/create", _prepare_tts, "audio", _AUDIO_ERROR),
        _kind(AudioKind, "voice_clone", f"{_V3}/audio/clone", _prepare_voice_clone, "audio",
              (1112, "voice processing error")),
        _kind(ImageKind, "background_change", f"{_V3}/content/image/bg/replace", _prepare_background_change,
              "background change", (1206, "background change processing error")),
        _kind(ImageKind, "image_generate", f"{_V3}/content/image/createbyprompt", _prepare_image_generate,
              "image", _IMAGE_ERROR),
        _kind(ImageKind, "image_button", f"{_V3}/content/image/createbybutton", _prepare_image_button,
              "image", _IMAGE_ERROR),
        _kind(FaceswapKind, "faceswap_image", f"{_V3}/faceswap/highquality/specifyimage",
              _prepare_faceswap(video=False, reage=False), "faceswap", _FACESWAP_ERROR),
        _kind(FaceswapKind, "faceswap_video", f"{_V3}/faceswap/highquality/specifyvideo",
              _prepare_faceswap(video=True, reage=False), "faceswap", _FACESWAP_ERROR),
        _kind(FaceswapKind, "reage_image", f"{_V3}/faceswap/highquality/imgreage",
              _prepare_faceswap(video=False, reage=True), "faceswap", _FACESWAP_ERROR),
        _kind(FaceswapKind, "reage_video", f"{_V3}/faceswap/highquality/vidreage",
              _prepare_faceswap(video=True, reage=True), "faceswap", _FACESWAP_ERROR),
        # The Webhook page lists no type for moderation; "moderation" matches the client registry.
        _kind(AnalysisKind, "moderation", f"{_V3}/content/analysis/sentiment", _prepare_moderation,
              "moderation", (1212, "Sentiment analysis fails")),
        _kind(VideoKind, "lipsync", f"{_V3}/content/video/lipsync", _prepare_lipsync, "lipsync",
              (1211, "Create lipsync error, please try again later")),
        _kind(VideoKind, "talking_photo", f"{_V3}/content/video/createbytalkingphoto", _prepare_talking_photo,
              "talking photo", (1015, "Create video error, please try again later")),
        _kind(VideoKind, "video_translation", f"{_V3}/content/video/createbytranslate",
              _prepare_video_translation, "video translate", _VIDEO_ERROR),
        _kind(VideoKind, "talking_avatar", f"{_V3}/talkingavatar/create", _prepare_talking_avatar, "avatar",
              (1105, "avatar processing error")),
        _kind(AvatarKind, "avatar_upload", f"{_V3}/avatar/create", _prepare_avatar_upload, "avatar",
              (1109, "create avatar video error")),
        _kind(SessionKind, "live_session", f"{_V4}/liveAvatar/session/create", _prepare_live_session,
              "live avatar", (1218, "liveAvatar processing error")),
    )
}

KINDS_BY_PATH: dict[str, KindSpec] = {spec.path: spec for spec in KINDS.values()}
