"""Image to video (v4): one mp4 per job, from one create or ``count`` at once (the batch create),
and a new job when audio is added to a finished one (``updateVideoAudio``).

Request and payload fields follow the docs' image-to-video pages and Akool's demo
(AKOOL-Official/akool-image-to-video-demo). The price is the docs' table for the default
model (720p/1080p/4k, 5 or 10 s) and a model's per-second ``unit_credit`` otherwise; adding
audio costs the docs' "video to audio" price. No webhook: the docs name no webhook type for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from akool_flows.api import v4
from akool_flows.api.kinds import JobKind
from akool_flows.api.pricing import VIDEO_AUDIO_PRICE
from akool_flows.sandbox import catalog_v4
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.envelope import json_body, ok
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import COMPLETED, Job
from akool_flows.sandbox.kinds.base import Behaviour, Plan, Prepare, Recipe
from akool_flows.sandbox.media import url_ext

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["RECIPES", "ImageToVideoBehaviour", "add_routes"]

TEAM_ID = "6805fb69e92d9edc7ca0b409"
IMAGE_EXTS = frozenset({"png", "jpg", "jpeg", "webp"})
MAX_COUNT = 10
#: audio_type as the docs type it (Integer) and as Akool's demo sends it (a string).
AUDIO_TYPES = (1, 2, 3, "1", "2", "3")

#: Creates the jobs of one request: ``(behaviour, body, parts, prepare) -> [Job or ApiError per part]``,
#: raising the first error when no part made a job (app.py provides it: it also arms webhooks).
CreateParts = Callable[[Behaviour, dict[str, Any], list[dict[str, Any]], Prepare, web.Request],
                       list["Job | ApiError"]]


class ImageToVideoBehaviour(Behaviour):
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            **self.stamp(job),
            "team_id": TEAM_ID,
            "update_time": job.created_ms,
            self.status_field: 1,
            "file_name": f"{job.id}.mp4",
            **plan.fields,
            self.result_field: "",
            "deduction_credit": job.cost,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        payload[self.result_field] = job.result_url
        payload["cover_url"] = f"{job.extra['files_base']}{job.id}-cover.png"


def _model(body: dict[str, Any]) -> dict[str, Any]:
    name = v.string(body, "model_name", required=False)
    if name is None:
        return catalog_v4.MODELS_BY_VALUE[catalog_v4.DEFAULT_MODEL]
    model = catalog_v4.MODELS_BY_VALUE.get(name)
    if model is None:
        raise param_error(f"model_name {name!r} is not in /api/open/v4/aigModel/list (types[]=1501)")
    return model


def _plan(body: dict[str, Any], *, audio_required: bool, batch: bool) -> Plan:
    image_url = v.url(body, "image_url")
    assert image_url is not None
    ext = url_ext(image_url)
    if ext and ext not in IMAGE_EXTS:
        raise param_error(f"image_url must be a {', '.join(sorted(IMAGE_EXTS))} image, got '.{ext}'")
    prompt = v.string(body, "prompt")
    model = _model(body) if batch else catalog_v4.MODELS_BY_VALUE[catalog_v4.DEFAULT_MODEL]
    by_value = {r["value"]: r for r in model["resolutionList"]}
    resolution = v.one_of(body, "resolution", list(by_value))
    seconds = v.one_of(body, "video_length", model["durationList"])
    audio_type = v.one_of(body, "audio_type", AUDIO_TYPES, required=audio_required)
    audio_url = v.url(body, "audio_url", required=audio_type in (2, "2"))
    effect = v.string(body, "effect_code", required=False)
    if effect is not None and effect not in catalog_v4.EFFECT_CODES:
        raise param_error(f"effect_code {effect!r} is not in /api/open/v4/image2Video/effects")
    for name in ("extend_prompt", "is_premium_model", "generate_audio"):
        v.boolean(body, name)
    last = v.url(body, "last_image_url", required=False) if batch else None
    fields = {"image_url": image_url, "prompt": prompt, "negative_prompt": v.string(body, "negative_prompt",
                                                                                     required=False) or "",
              "extend_prompt": bool(body.get("extend_prompt")), "resolution": resolution, "video_duration": seconds,
              "audio_type": int(audio_type or 3), "audio_url": audio_url or "", "effect_code": effect or "",
              "effect_name": next((e["name"] for e in catalog_v4.EFFECTS if e["effect_code"] == effect), ""),
              "model_name": model["value"], "webhookUrl": v.string(body, "webhookurl", required=False) or "",
              "only_add_audio": False, **({"last_image_url": last} if last else {})}
    return Plan(cost=float(by_value[resolution]["unit_credit"] * seconds), fields=fields, result_ext="mp4")


def _prepare(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    return _plan(body, audio_required=True, batch=False)


def _prepare_batch(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    return _plan(body, audio_required=False, batch=True)


def _prepare_update_audio(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    pre_id = v.string(body, "pre_video_id")
    audio_type = v.one_of(body, "audio_type", (1, 2, "1", "2"))
    audio_url = v.url(body, "audio_url", required=audio_type in (2, "2"))
    with state.lock:
        pre = state.jobs.get(pre_id or "")
        if pre is None or pre.kind != kind.name or pre.deleted:
            raise ApiError(1008, f"The content you get does not exist: no image-to-video result {pre_id!r}")
        if pre.status() != COMPLETED:
            raise param_error(f"pre_video_id {pre_id!r} is not completed (status {pre.status()}); add audio "
                              "to a finished video")
        base = dict(pre.base)
    seconds = int(base["video_duration"])
    fields = {k: base[k] for k in ("image_url", "prompt", "negative_prompt", "extend_prompt", "resolution",
                                   "video_duration", "effect_code", "effect_name", "model_name")}
    fields.update(pre_video_id=pre_id, audio_type=int(audio_type), audio_url=audio_url or "", only_add_audio=True,
                  webhookUrl="")
    return Plan(cost=VIDEO_AUDIO_PRICE.get(seconds, float(seconds)), fields=fields, result_ext="mp4")


def add_routes(api: Callable[..., None], behaviour: Behaviour, create_parts: CreateParts) -> None:
    """The batch create and the audio update: creates outside the kind's own create path."""

    async def create_batch(request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        count = v.integer(body, "count", required=False, minimum=1, maximum=MAX_COUNT) or 1
        made = create_parts(behaviour, body, [body] * count, _prepare_batch, request)
        return ok({"successList": [behaviour.create_data(j) for j in made if isinstance(j, Job)],
                   "errorList": [{"code": e.code, "msg": e.msg} for e in made if isinstance(e, ApiError)]})

    async def update_audio(request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        [job] = create_parts(behaviour, body, [body], _prepare_update_audio, request)
        assert isinstance(job, Job)
        return ok(behaviour.create_data(job))

    api("POST", v4.BATCH_CREATE_PATH, create_batch)
    api("POST", v4.UPDATE_AUDIO_PATH, update_audio)


RECIPES = {
    "image_to_video": Recipe(ImageToVideoBehaviour, _prepare, (1015, "Create video error, please try again later")),
}
