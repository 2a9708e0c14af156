"""Live-avatar sessions: Agora join credentials, a lifetime of ``duration`` seconds, closable.

No webhook: the Webhook page lists no type for sessions, the create-session table has no
``webhookUrl`` and Akool's LiveKit plugin sends none, so the registry's ``webhook_type`` is
None and a session never calls back (even when a body carries ``webhookUrl``, as some of
the docs' code samples do).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import COMPLETED, Job
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import ACCOUNT_UID, Behaviour, Plan, Recipe

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["RECIPES", "SessionBehaviour"]

#: The close body field Akool's LiveKit plugin (livekit-plugins-akool) sends instead of the docs' ``id``.
LIVEKIT_CLOSE_FIELD = "session_id"


class SessionBehaviour(Behaviour):
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "_id": job.id,
            "uid": ACCOUNT_UID,
            "type": 1,
            self.status_field: 1,
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

    def cancel(self, state: SandboxState, body: Mapping[str, Any]) -> list[Job]:
        """Close one session: ``{"id": ...}`` (docs) or ``{"session_id": ...}`` (LiveKit plugin)."""
        documented = self.cancel_field
        name = LIVEKIT_CLOSE_FIELD if body.get(documented) in (None, "") and LIVEKIT_CLOSE_FIELD in body \
            else documented
        session_id = v.string(body, name)
        assert session_id is not None
        with state.lock:
            job = state.find_job(self.kind.status_path, session_id)
            if job.status() >= COMPLETED:
                raise ApiError(1219, f"liveAvatar closed: session {session_id} has already ended")
            job.end_now("close", None)
        return [job]


def _prepare_live_session(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    avatar_id = v.string(body, "avatar_id")
    duration = v.integer(body, "duration", minimum=1, maximum=3600)
    assert avatar_id is not None and duration is not None
    if not state.live_avatar_available(avatar_id):
        raise param_error(f"avatar_id {avatar_id!r} is not an available streaming avatar "
                          f"(see /api/open/v4/liveAvatar/avatar/list)")
    return Plan(
        cost=pricing.session_credits(duration),
        fields={"avatar_id": avatar_id, "duration": duration},
        lifetime=duration * state.config.session_time_scale,
    )


RECIPES = {
    "live_session": Recipe(SessionBehaviour, _prepare_live_session, (1218, "liveAvatar processing error")),
}
