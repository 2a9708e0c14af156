"""Avatar upload: a talking (type 1) or streaming (type 2) avatar made from the caller's video."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import catalog
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import Job
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import ACCOUNT_UID, Behaviour, Plan, Recipe

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["AvatarBehaviour", "RECIPES"]

_AVATAR_ID_RE = re.compile(r"^[a-zA-Z0-9]+$")
THIRD_PARTY_HOSTS = ("youtube.com", "youtu.be", "tiktok.com", "x.com", "twitter.com", "drive.google.com")


class AvatarBehaviour(Behaviour):
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "_id": job.id,
            "disabled": False,
            "uid": ACCOUNT_UID,
            **plan.fields,
            "from": 3,
            self.status_field: 1,
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

    def static_record(self, record_id: str) -> dict[str, Any] | None:
        # The detail endpoint also answers Akool's official talking avatars by their _id.
        official = next((a for a in catalog.TALKING_AVATARS if a["_id"] == record_id), None)
        return dict(official) if official is not None else None


def _prepare_avatar_upload(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
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
        cost=pricing.AVATAR_UPLOAD,
        fields={"type": type_, "name": avatar_id, "avatar_id": avatar_id, "url": url, "modify_url": url,
                "url_from": url_from},
        result_url=url,
        extra={"avatar_type": type_},
        on_created=register,
    )


RECIPES = {
    "avatar_upload": Recipe(AvatarBehaviour, _prepare_avatar_upload, (1109, "create avatar video error")),
}
