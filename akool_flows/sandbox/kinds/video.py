"""Video kinds (lip sync, talking photo, video translation, talking avatar): one mp4 each,
billed in started 10-second blocks of the driving media."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import catalog
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import Job, new_object_id, new_uuid
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import Behaviour, Plan, Recipe, webhook_fields
from akool_flows.sandbox.kinds.image import HEX_COLOR_RE
from akool_flows.sandbox.media import media_duration_seconds, url_ext

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["RECIPES", "VideoBehaviour"]

IMAGE_EXTS = frozenset({"png", "jpg", "jpeg", "webp"})
VIDEO_EXTS = frozenset({"mp4", "mov", "avi"})
# The docs' talking-avatar create answer is this subset of the status payload.
_SUBSET_KEYS = ("_id", "uid", "video_id", "task_id", "video_status", "video", "create_time")


class VideoBehaviour(Behaviour):
    charge_fields = ("deduction_duration",)

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        duration = plan.extra["duration"]
        return {
            **self.stamp(job),
            "faceswap_quality": 2,
            "storage_loc": 1,
            "video_id": new_uuid(),
            self.status_field: 1,
            "video_lock_duration": duration,
            "deduction_lock_duration": pricing.billed_seconds(duration),
            "external_video": "",
            self.result_field: "",
            **plan.fields,
            "__v": 0,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        payload[self.result_field] = job.result_url
        payload["deduction_duration"] = payload["deduction_lock_duration"]
        if job.extra.get("lipsync_translation"):
            payload["lipsync_video_url"] = job.result_url

    def create_data(self, job: Job) -> Any:
        payload = self.render(job, 1)
        if job.extra.get("subset_answer"):
            return {k: payload[k] for k in _SUBSET_KEYS}
        return payload


def _video_plan(duration: float, fields: dict[str, Any], *, on_created: Callable[[Job], None] | None = None,
                **extra: Any) -> Plan:
    """An mp4 whose length, and so its price, is the driving media's ``duration``."""
    return Plan(cost=pricing.video_credits(duration), fields=fields, result_ext="mp4",
                extra={"duration": duration, **extra}, on_created=on_created)


def _prepare_lipsync(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    video_url = v.url(body, "video_url")
    audio_url = v.url(body, "audio_url")
    assert video_url is not None
    return _video_plan(media_duration_seconds(video_url), {
        "type": 9,
        "from": 2,
        "target_video": video_url,
        "input_audio": audio_url,
        "task_id": new_object_id(),
        "lipsync": True,
        **webhook_fields(body),
    })


def _prepare_talking_photo(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    photo = v.url(body, "talking_photo_url")
    audio = v.url(body, "audio_url")
    assert audio is not None
    return _video_plan(media_duration_seconds(audio), {"type": 5, "from": 2, "talking_photo": photo})


#: ``source_language`` that asks Akool to detect the video's language (what its demo sends).
AUTO_DETECT = "DEFAULT"


def _split_languages(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``language: "fr,de,ja"`` is one job per language (Akool answers them in ``all_results``)."""
    language = body.get("language")
    if not isinstance(language, str) or "," not in language:
        return None
    return [{**body, "language": code.strip()} for code in language.split(",")]


def _prepare_video_translation(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    url = v.url(body, "url")
    allowed = sorted(catalog.LANGUAGE_CODES)
    source = v.one_of(body, "source_language", [*allowed, AUTO_DETECT])
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

    def remember(job: Job) -> None:
        if lipsync:
            state.remember_lipsync_translation(key, job)

    return _video_plan(media_duration_seconds(url), {
        "type": 8,
        "sub_type": 801,
        "from": 2,
        "target_video": url,
        "source_language": source,
        "language": language,
        "task_id": new_object_id(),
        "target_video_md5": hashlib.md5(url.encode(), usedforsecurity=False).hexdigest(),
        "pre_video_id": "",
        "lipsync": lipsync,
        "lipSyncType": lipsync,
        **webhook_fields(body),
    }, lipsync_translation=lipsync, on_created=remember)


def _prepare_talking_avatar(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
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
            if not HEX_COLOR_RE.match(url):
                v.check_url(f"{where}.url", url)
                ext = url_ext(url)
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
                ext = url_ext(url)
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
    return _video_plan(media_duration_seconds(audio_url),
                       {"task_id": new_object_id(), "width": width, "height": height, "avatar_from": avatar_from},
                       subset_answer=True)


RECIPES = {
    "lipsync": Recipe(VideoBehaviour, _prepare_lipsync, (1211, "Create lipsync error, please try again later")),
    "talking_photo": Recipe(VideoBehaviour, _prepare_talking_photo,
                            (1015, "Create video error, please try again later")),
    "video_translation": Recipe(VideoBehaviour, _prepare_video_translation,
                                (1205, "Create video error, please try again later"), split=_split_languages),
    "talking_avatar": Recipe(VideoBehaviour, _prepare_talking_avatar, (1105, "avatar processing error")),
}
