"""Face swap and re-age (image and video): polled many at a time, cancellable by ``job_id``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox import validation as v
from akool_flows.sandbox.errors import ApiError, param_error
from akool_flows.sandbox.jobs import COMPLETED, Job, new_task_id
from akool_flows.sandbox.kinds import pricing
from akool_flows.sandbox.kinds.base import ACCOUNT_UID, ACCOUNT_USER_ID, Behaviour, Plan, Prepare, Recipe
from akool_flows.sandbox.media import media_duration_seconds

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["FaceswapBehaviour", "RECIPES"]

FACESWAP_MSG = "Please be patient! If your results are not generated in three hours, please check your input image."
CANCELLED_CODE = 1016


class FaceswapBehaviour(Behaviour):
    charge_fields = ("deduction_duration", "deduction_credit")
    create_msg = FACESWAP_MSG
    deletable = True

    @property
    def task_field(self) -> str:
        """The create answer's second id, which the cancel endpoint takes (``job_id``)."""
        return self.kind.cancel_id_field or ""

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        video = plan.extra["video"]
        duration = plan.extra.get("duration", 0)
        return {
            "faceswap_type": 2 if video else 1,
            "faceswap_quality": 2,
            self.status_field: 1,
            "deduction_status": 1,
            "image": 0 if video else 1,
            "video_duration": duration,
            "deduction_duration": pricing.billed_seconds(duration) if video else 0,
            "deduction_credit": job.cost,
            "update_time": 0,
            "_id": job.id,
            "userId": ACCOUNT_USER_ID,
            "uid": ACCOUNT_UID,
            self.result_field: job.result_url,
            self.task_field: job.task_id,
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
        return {"_id": job.id, self.result_field: job.result_url, self.task_field: job.task_id}

    def task_id(self) -> str | None:
        return new_task_id()

    def cancel(self, state: SandboxState, body: Mapping[str, Any]) -> list[Job]:
        """Cancel unfinished jobs by their task ids; credits are refunded, finished jobs stay."""
        task_ids = v.id_list(body.get(self.cancel_field), self.cancel_field)
        failure = (CANCELLED_CODE, f"The job was cancelled by {self.kind.cancel_path}")
        cancelled = []
        with state.lock:
            jobs = [state.task_ids[t] for t in task_ids if t in state.task_ids]
            if not jobs:
                raise ApiError(1008, f"The content you get does not exist: "
                                     f"no faceswap {self.task_field} in {task_ids!r}")
            for job in jobs:
                if job.status() >= COMPLETED:
                    continue
                job.end_now("cancel", failure)
                state.refund(job)
                cancelled.append(job)
        return cancelled


def _prepare(*, video: bool, reage: bool) -> Prepare:
    media_field = "modifyVideo" if video else "modifyImage"

    def prepare(body: dict[str, Any], state: SandboxState, kind: JobKind) -> Plan:
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
            cost = pricing.video_credits(duration)
        else:
            cost = pricing.FACESWAP_IMAGE
        return Plan(cost=cost, result_ext="mp4" if video else "png", extra=extra)

    return prepare


_ERROR = (1016, "Face swapping error")

RECIPES = {
    "faceswap_image": Recipe(FaceswapBehaviour, _prepare(video=False, reage=False), _ERROR),
    "faceswap_video": Recipe(FaceswapBehaviour, _prepare(video=True, reage=False), _ERROR),
    "reage_image": Recipe(FaceswapBehaviour, _prepare(video=False, reage=True), _ERROR),
    "reage_video": Recipe(FaceswapBehaviour, _prepare(video=True, reage=True), _ERROR),
}
