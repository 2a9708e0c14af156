"""Content moderation (Jarvis): a verdict instead of a file, priced by the docs' table."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import param_error
from akool_flows.sandbox.jobs import Job
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import ACCOUNT_UID, Behaviour, Plan, Recipe, webhook_fields
from akool_flows.sandbox.media import is_url
from akool_flows.sandbox.moderation import MODERATION_TYPES, classify

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["AnalysisBehaviour", "RECIPES"]

_LANG_RE = re.compile(r"^[a-zA-Z]{2}(?:[-_][a-zA-Z0-9]{2,4})?$")


class AnalysisBehaviour(Behaviour):
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            "create_time": job.created_ms,
            "uid": ACCOUNT_UID,
            **plan.fields,
            self.status_field: 1,
            "result": "",
            "deduction_credit": job.cost,
            "_id": job.id,
            "__v": 0,
        }

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        verdict = job.extra["verdict"]
        payload["result"] = verdict.result
        payload["final_conclusion"] = verdict.final_conclusion


def _prepare_moderation(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
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
        cost=pricing.moderation_price(type_, content),
        fields={"type": type_, **webhook_fields(body)},
        extra={"verdict": classify(type_, content, user_input)},
    )


RECIPES = {
    "moderation": Recipe(AnalysisBehaviour, _prepare_moderation, (1212, "Sentiment analysis fails")),
}
