"""The v4 endpoints beside the registry's job kinds, as `Call` objects like `endpoints`: image
to video's batch create, audio update, effects and model list (shaped from
AKOOL-Official/akool-image-to-video-demo), the v4 voice lists and the knowledge bases a live
session can use.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from akool_flows.api import models as m
from akool_flows.api.endpoints import Call, _first_record, _job_from, _params, several_jobs
from akool_flows.api.errors import ValidationError
from akool_flows.api.jobs import Job, Refusal
from akool_flows.api.kinds import V4, JobKind, get_kind


def _build(model: type[BaseModel], k: JobKind, fields: Mapping[str, Any], strict: bool) -> dict[str, Any]:
    """The body of a create that is not the kind's own endpoint, checked like `JobKind.validate`."""
    return m.dump_request(replace(k, request_model=model).validate(fields, strict=strict))


# --- image to video ----------------------------------------------------------------------------

I2V = f"{V4}/image2Video"
BATCH_CREATE_PATH = f"{I2V}/createBySourcePrompt/batch"
UPDATE_AUDIO_PATH = f"{I2V}/updateVideoAudio"


def _result_list(data: Any) -> list[Any]:
    return list((data or {}).get("result") or []) if isinstance(data, dict) else list(data or [])


def image_to_video_batch(fields: Mapping[str, Any], *, strict: bool = False) -> Call:
    """``count`` videos of one image (any model of `ai_models`); the `Job` lists them all."""
    k = get_kind("image_to_video")
    body = _build(m.ImageToVideoBatchRequest, k, fields, strict)
    path = BATCH_CREATE_PATH

    def parse(data: Any) -> Job:
        data = data if isinstance(data, dict) else {}
        jobs = [_job_from(k, record, path) for record in data.get("successList") or [] if isinstance(record, dict)]
        refused = [Refusal(e.get("code") if isinstance(e.get("code"), int) else None,
                           str(e.get("msg") or e.get("message") or e)) for e in data.get("errorList") or []
                   if isinstance(e, dict)]
        return several_jobs(jobs, refused, path)

    return Call("POST", path, body=body, creates=True, parse=parse)


def update_video_audio(pre_video_id: str, audio_url: str, audio_type: int) -> Call:
    """Add or replace the audio of a finished image-to-video result: a new job of that kind."""
    k = get_kind("image_to_video")
    body = _build(m.UpdateVideoAudioRequest, k, {"pre_video_id": pre_video_id, "audio_url": audio_url,
                                                 "audio_type": audio_type}, True)
    path = UPDATE_AUDIO_PATH
    return Call("POST", path, body=body, creates=True, parse=lambda data: _job_from(k, _first_record(data), path))


def image_to_video_effects() -> Call:
    """Effects for `effect_code`: ``[{"_id", "name", "logo", "video_url", "effect_code"}]``."""
    return Call("GET", f"{I2V}/effects", parse=_result_list)


def ai_models(types: Iterable[int] = (1501,)) -> Call:
    """Generation models of the given types (1501 image to video, 1502 text to video...), each
    with its ``value`` (a ``model_name``), ``resolutionList`` and ``durationList``."""
    type_list = [int(t) for t in types]
    if not type_list:
        raise ValidationError("give at least one model type, e.g. 1501 (image to video)", field="types")
    return Call("GET", f"{V4}/aigModel/list", params={"types[]": type_list}, parse=_result_list)


# --- voices and knowledge bases -----------------------------------------------------------------

def translation_voices(language_code: str | None = None, page: int | None = None, size: int | None = None) -> Call:
    """Voices for video translation's ``voices_map`` (per target language)."""
    return Call("GET", f"{V4}/voice/videoTranslation",
                params=_params(language_code=language_code, page=page, size=size), parse=_result_list)


def streaming_voices(type_: int | None = None, page: int | None = None, size: int | None = None) -> Call:
    """Voices a live session can speak with (``support_stream=1``): type 1 your clones, 2 Akool's."""
    if type_ not in (None, 1, 2):
        raise ValidationError("type must be 1 (your voice clones) or 2 (Akool voices)", field="type")
    return Call("GET", f"{V4}/voice/list", params=_params(support_stream=1, type=type_, page=page, size=size),
                parse=_result_list)


def knowledge_bases(page: int | None = None, size: int | None = None, name: str | None = None) -> Call:
    """Knowledge bases for a live session's ``knowledge_id``: ``[{"_id", "name", ...}]``."""
    return Call("GET", f"{V4}/knowledge/list", params=_params(page=page, size=size, name=name),
                parse=lambda data: list((data or {}).get("knowledge_list") or []) if isinstance(data, dict)
                else list(data or []))
