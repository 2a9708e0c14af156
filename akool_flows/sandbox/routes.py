"""The endpoints that are not a job kind's: token, credit, result deletion, face detect,
catalogues (v3 and v4: effects, models, voices, knowledge bases) and the session list. Paths come from ``akool_flows.api.endpoints``, where the
client defines them.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiohttp import web

from akool_flows.api import endpoints, v4
from akool_flows.sandbox import catalog, catalog_v4
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.envelope import json_body, ok
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import COMPLETED
from akool_flows.sandbox.kinds.base import ACCOUNT_UID
from akool_flows.sandbox.state import FAIL_MARKER, SandboxState

__all__ = ["DETECT_PATH", "Register", "add_routes"]

#: Face detect lives on another host in production (https://sg3.akool.com/detect); the sandbox
#: serves it next to the API and points ``AKOOL_DETECT_URL`` there.
DETECT_PATH = "/detect"

Handler = Callable[[web.Request], Awaitable[Any]]


class Register(Protocol):
    def __call__(self, method: str, path: str, handler: Handler, *, auth: bool = True, poll: bool = False,
                 detect: bool = False) -> None: ...


def add_routes(api: Register, state: SandboxState) -> None:
    async def get_token(request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        token = state.issue_token(body.get("clientId"), body.get("clientSecret"))
        return {"code": 1000, "token": token}  # the docs' shape: no msg, no data

    async def quota_info(request: web.Request) -> dict[str, Any]:
        return ok({"credit": state.balance})

    async def delete_results(request: web.Request) -> dict[str, Any]:
        body = await json_body(request)
        ids = v.id_list(body.get("_ids"), "_ids")
        with state.lock:
            for job_id in ids:
                job = state.jobs.get(job_id)
                if job is not None and job.behaviour.deletable:
                    job.deleted = True
        return ok()

    async def voice_list(request: web.Request) -> dict[str, Any]:
        source = _query_choice(request, "from", (3, 4))
        voices: list[dict[str, Any]] = []
        if source in (None, 3):
            voices.extend(catalog.VOICES)
        if source in (None, 4):
            for voice_id, voice in list(state.user_voices.items()):
                job = voice["job"]
                if job.status() == COMPLETED:
                    voices.append({"_id": voice["_id"], "create_time": job.created_ms, "uid": ACCOUNT_UID,
                                   "from": 4, "voice_id": voice_id, "name": voice_id, "type": 1,
                                   "preview": job.result_url, "__v": 0})
        return ok(voices)

    async def language_list(request: web.Request) -> dict[str, Any]:
        return ok({"lang_list": list(catalog.LANGUAGES)})

    async def avatar_list(request: web.Request) -> dict[str, Any]:
        source = _query_choice(request, "from", (2, 3))
        kind = _query_choice(request, "type", (1, 2))
        page = v.query_int(request.query, "page", default=1, minimum=1)
        size = v.query_int(request.query, "size", default=100, minimum=1, maximum=1000)
        assert page is not None and size is not None
        items: list[dict[str, Any]] = [dict(a) for a in catalog.TALKING_AVATARS]
        items += [{**a, "status": 3} for a in catalog.LIVE_AVATARS]
        items += [job.payload() for job in list(state.avatars.values())]
        items = [a for a in items if (source is None or a["from"] == source) and (kind is None or a["type"] == kind)]
        return ok(items[(page - 1) * size: page * size])

    async def live_avatar_list(request: web.Request) -> dict[str, Any]:
        page = v.query_int(request.query, "page", default=1, minimum=1)
        size = v.query_int(request.query, "size", default=100, minimum=1, maximum=100)
        assert page is not None and size is not None
        items: list[dict[str, Any]] = [dict(a) for a in catalog.LIVE_AVATARS]
        for job in list(state.avatars.values()):
            if job.extra.get("avatar_type") == 2:
                p = job.payload()
                items.append({k: p[k] for k in ("_id", "uid", "type", "from", "avatar_id", "name", "url",
                                                "thumbnailUrl", "gender")}
                             | {"voice_id": "", "available": p["status"] == COMPLETED})
        return ok({"count": len(items), "result": items[(page - 1) * size: page * size]})

    # The list shows the sessions that the session detail endpoint reports.
    session_detail_path = endpoints.session_detail("_").path

    async def session_list(request: web.Request) -> dict[str, Any]:
        page = v.query_int(request.query, "page", default=1, minimum=1)
        size = v.query_int(request.query, "size", default=100, minimum=1, maximum=1000)
        wanted = _query_choice(request, "status", (1, 2, 3, 4))
        assert page is not None and size is not None
        now = time.monotonic()
        sessions = state.reported_jobs(session_detail_path)
        sessions.sort(key=lambda j: j.created, reverse=True)
        items = [job.payload(now) for job in sessions]
        if wanted is not None:
            items = [p for p in items if p["status"] == wanted]
        return ok({"count": len(items), "result": items[(page - 1) * size: page * size]})

    async def effects(request: web.Request) -> dict[str, Any]:
        return ok({"result": list(catalog_v4.EFFECTS)})

    async def ai_models(request: web.Request) -> dict[str, Any]:
        raw = request.query.getall("types[]", []) or request.query.getall("types", [])
        if not raw:
            raise param_error("types is required: an array of model types, e.g. types[]=1501 (image to video)")
        try:
            types = {int(t) for t in raw}
        except ValueError:
            raise param_error(f"types must be numbers, got {raw!r}") from None
        return ok([m for m in catalog_v4.AI_MODELS if m["type"] in types])

    async def translation_voices(request: web.Request) -> dict[str, Any]:
        language = request.query.get("language_code")
        items = [vc for vc in catalog_v4.TRANSLATION_VOICES if language in (None, vc["language_code"])]
        return ok({"result": _page(request, items)})

    async def stream_voices(request: web.Request) -> dict[str, Any]:
        wanted = _query_choice(request, "type", (1, 2))
        items = [vc for vc in catalog_v4.STREAM_VOICES if wanted in (None, vc["type"])]
        if request.query.get("support_stream") not in (None, "1"):
            items = []  # the sandbox only knows voices that can stream
        return ok({"result": _page(request, items)})

    async def knowledge_list(request: web.Request) -> dict[str, Any]:
        name = request.query.get("name")
        items = [kb for kb in catalog_v4.KNOWLEDGE_BASES if not name or name.lower() in kb["name"].lower()]
        return ok({"knowledge_list": _page(request, items)})

    api("POST", endpoints.GET_TOKEN_PATH, get_token, auth=False)
    api("GET", endpoints.credit_info().path, quota_info)
    api("POST", endpoints.delete_results(["_"]).path, delete_results)
    api("POST", DETECT_PATH, detect_handler, detect=True)
    api("GET", endpoints.voices().path, voice_list)
    api("GET", endpoints.languages().path, language_list)
    api("GET", endpoints.avatars().path, avatar_list)
    api("GET", endpoints.live_avatars().path, live_avatar_list)
    api("GET", endpoints.session_list().path, session_list)
    api("GET", v4.image_to_video_effects().path, effects)
    api("GET", v4.ai_models().path, ai_models)
    api("GET", v4.translation_voices().path, translation_voices)
    api("GET", v4.streaming_voices().path, stream_voices)
    api("GET", v4.knowledge_bases().path, knowledge_list)


async def detect_handler(request: web.Request) -> dict[str, Any]:
    """Face detect: deterministic landmarks from the image reference (URL or base64)."""
    started = time.perf_counter()
    body = await json_body(request)
    image_url = v.string(body, "image_url", required=False)
    img = v.string(body, "img", required=False)
    single_face = body.get("single_face", False)
    if not isinstance(single_face, bool):
        raise param_error(f"single_face must be true or false, got {single_face!r}")
    if not image_url and not img:
        raise param_error("image_url or img is required (a link or a base64 image)")
    if image_url:
        v.check_url("image_url", image_url)
    source = image_url or img or ""
    if FAIL_MARKER in source:
        raise ApiError(1108, "image processing error: the image could not be decoded")
    digest = hashlib.sha256(source.encode()).digest()
    faces = 0 if "sandbox-noface" in source else (1 if single_face else 1 + digest[0] % 3)
    landmarks, strings, regions = [], [], []
    for i in range(faces):
        x0 = 100 + 400 * i + digest[1 + i] % 80
        y0 = 150 + digest[4 + i] % 80
        points = [[x0 + 40, y0 + 60], [x0 + 150, y0 + 60], [x0 + 95, y0 + 120], [x0 + 60, y0 + 170]]
        landmarks.append([*points, [0, 0], [0, 0]])
        strings.append(":".join(f"{x},{y}" for x, y in points))
        regions.append([x0, y0, x0 + 190, y0 + 240])
    return {
        "error_code": 0,
        "error_msg": "SUCCESS",
        "landmarks": landmarks,
        "landmarks_str": strings,
        "region": regions,
        "seconds": round(time.perf_counter() - started, 6),
        "trx_id": str(uuid.uuid4()),
    }


def _page(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    page = v.query_int(request.query, "page", default=1, minimum=1)
    size = v.query_int(request.query, "size", default=100, minimum=1, maximum=1000)
    assert page is not None and size is not None
    return items[(page - 1) * size: page * size]


def _query_choice(request: web.Request, name: str, allowed: tuple[int, ...]) -> int | None:
    value = v.query_int(request.query, name)
    if value is not None and value not in allowed:
        raise param_error(f"{name} must be one of {', '.join(map(str, allowed))}; got {value}")
    return value
