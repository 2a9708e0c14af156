"""Audio kinds (TTS, voice clone): reported by the audio status endpoint, one mp3 each."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import catalog
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import param_error
from akool_flows.sandbox.jobs import Job
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import Behaviour, Plan, Recipe

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["AudioBehaviour", "RECIPES"]

MAX_TEXT = 5000
_RATE_RE = re.compile(r"^(\d{1,3})%$")


class AudioBehaviour(Behaviour):
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            **self.stamp(job),
            "from": 3,
            **plan.fields,
            self.result_field: "",
            self.status_field: 1,
            "deduction_credit": job.cost,
            "__v": 0,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        payload[self.result_field] = job.result_url


def _rate(body: dict[str, Any], *, required: bool) -> str:
    rate = v.string(body, "rate", required=required)
    if rate is None:
        return "100%"
    m = _RATE_RE.match(rate)
    if not m or int(m.group(1)) > 100:
        raise param_error(f"rate must be a percentage from '0%' to '100%', got {rate!r}")
    return rate


def _prepare_tts(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    text = v.string(body, "input_text", max_length=MAX_TEXT)
    voice_id = v.string(body, "voice_id")
    rate = _rate(body, required=False)
    voice = next((x for x in catalog.VOICES if x["voice_id"] == voice_id), None)
    voice_model_id = voice["_id"] if voice else state.voice_model_id(voice_id)
    if voice_model_id is None:
        raise param_error(f"voice_id {voice_id!r} is not in /api/open/v3/voice/list")
    assert text is not None
    return Plan(
        cost=pricing.text_credits(text),
        fields={"input_text": text, "rate": rate, "voice_model_id": voice_model_id},
        result_ext="mp3",
    )


def _prepare_voice_clone(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    text = v.string(body, "input_text", max_length=MAX_TEXT)
    rate = _rate(body, required=True)
    voice_url = v.url(body, "voice_url", required=False)
    voice_id = v.string(body, "voice_id", required=False)
    if not voice_url and not voice_id:
        raise param_error("voice_id or voice_url is required (provide one)")
    assert text is not None
    model_id = state.new_voice_model_id(voice_url or voice_id or "")
    return Plan(
        cost=pricing.text_credits(text) + pricing.VOICE_CLONE_EXTRA,
        fields={"input_text": text, "rate": rate, "voice_model_id": model_id},
        result_ext="mp3",
        on_created=state.register_user_voice,
    )


RECIPES = {
    "tts": Recipe(AudioBehaviour, _prepare_tts, (1201, "create audio error, please try again later")),
    "voice_clone": Recipe(AudioBehaviour, _prepare_voice_clone, (1112, "voice processing error")),
}
