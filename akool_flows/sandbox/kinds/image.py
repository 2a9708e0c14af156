"""Image kinds (background change, generation, 4K / variation buttons): one png each."""

from __future__ import annotations

import re
import secrets
from typing import TYPE_CHECKING, Any

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import COMPLETED, Job, new_uuid
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import Behaviour, Plan, Recipe

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["BUTTONS", "ImageBehaviour", "RECIPES"]

BUTTONS = ("U1", "U2", "U3", "U4", "V1", "V2", "V3", "V4")
SCALES = ("1:1", "4:3", "3:4", "16:9", "9:16", "3:2", "2:3")
HEX_COLOR_RE = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


class ImageBehaviour(Behaviour):
    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        return {
            **self.stamp(job),
            "faceswap_quality": 2,
            "image_id": new_uuid(),
            "image_sub_status": 1,
            self.status_field: 1,
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
        payload[self.result_field] = job.result_url
        if job.extra.get("grid"):  # a 4-image grid: each image can be upscaled (U) or varied (V)
            payload["buttons"] = list(BUTTONS)
        if job.extra.get("external"):  # background change also answers the cut-out foreground
            payload["external_img"] = job.result_url.replace(f"{job.id}.png", f"{job.id}-external.png")

    def failed(self, job: Job, payload: dict[str, Any]) -> None:
        super().failed(job, payload)
        code, msg = job.failure or self.error
        payload["error_reasons"] = [{"error_code": code, "error_msg": msg}]


def _prepare_background_change(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    v.url(body, "origin_img")
    v.size_string(body, "modify_origin_img_size")
    v.integer(body, "overlay_origin_x")
    v.integer(body, "overlay_origin_y")
    v.size_string(body, "canvas_size")
    color = v.string(body, "color_code", required=False)
    if color is not None and not HEX_COLOR_RE.match(color):
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
    return Plan(cost=pricing.BACKGROUND_CHANGE, fields={"type": 3}, result_ext="png", extra={"external": True})


def _prepare_image_generate(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    prompt = v.string(body, "prompt")
    scale = v.one_of(body, "scale", SCALES, required=False) or "1:1"
    source = v.url(body, "source_image", required=False)
    fields: dict[str, Any] = {"origin_prompt": prompt, "prompt": prompt, "scale": scale, "type": 4, "from": 1}
    if source:
        fields["source_image"] = source
    return Plan(cost=pricing.IMAGE, fields=fields, result_ext="png", extra={"grid": True})


def _prepare_image_button(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
    origin_id = v.string(body, "_id")
    button = v.one_of(body, "button", BUTTONS)
    assert origin_id is not None
    # The image to upscale or vary is reported by the same status endpoint as this kind.
    origin = state.find_job(kind.status_path, origin_id)
    if not origin.extra.get("grid"):
        raise ApiError(1010, f"You can not operate this content: image {origin_id} has no U/V buttons")
    if origin.status() != COMPLETED:
        raise ApiError(1010, f"You can not operate this content: image {origin_id} is not completed")
    if button in origin.extra.get("used_buttons", ()):
        raise ApiError(1011, f"This content has been operated: button {button} was already used on {origin_id}")

    def mark_used(job: Job) -> None:
        origin.extra.setdefault("used_buttons", []).append(button)

    return Plan(
        cost=pricing.IMAGE,
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


_GENERATE_ERROR = (1108, "image generate error,please try again later")

RECIPES = {
    "background_change": Recipe(ImageBehaviour, _prepare_background_change,
                                (1206, "background change processing error")),
    "image_generate": Recipe(ImageBehaviour, _prepare_image_generate, _GENERATE_ERROR),
    "image_button": Recipe(ImageBehaviour, _prepare_image_button, _GENERATE_ERROR),
}
