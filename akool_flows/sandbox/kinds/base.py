"""What every job behaviour shares: the create plan, the payload life cycle, small helpers.

A :class:`Behaviour` is bound to one entry of the client registry
(``akool_flows.api.kinds``) and reads every *name* from it (paths, status and result
fields, webhook type, cancel fields); the subclasses per status group only say what the
sandbox *does*: which fields a payload carries, what a job costs, how it ends early.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from akool_flows.api.kinds import JobKind
from akool_flows.sandbox.jobs import COMPLETED, FAILED, Job

if TYPE_CHECKING:
    from akool_flows.sandbox.state import SandboxState

__all__ = ["ACCOUNT_UID", "ACCOUNT_USER_ID", "Behaviour", "Plan", "Prepare", "Recipe", "Split", "webhook_fields"]

ACCOUNT_UID = 101690
ACCOUNT_USER_ID = "64d985c5571729d3e2999477"


@dataclass
class Plan:
    """What a validated create request will become."""

    cost: float
    fields: dict[str, Any] = field(default_factory=dict)
    """Kind-specific static payload fields (merged into the group's base payload)."""
    result_ext: str = ""
    """Extension of the result file served under /_sandbox/files ("" = no file)."""
    result_url: str | None = None
    """A result URL that is not a sandbox file (e.g. an uploaded avatar's own link)."""
    lifetime: float | None = None
    """Seconds from creation to the end of the job when not ``job_seconds`` (sessions)."""
    extra: dict[str, Any] = field(default_factory=dict)
    on_created: Callable[[Job], None] | None = None
    """Called under the state lock once the job exists (registers avatars, buttons...)."""


#: Validates a create body for a registry kind and says what the job will be (or raises ApiError).
Prepare = Callable[[dict[str, Any], "SandboxState", JobKind], Plan]
#: The bodies of the jobs one create request makes, when it makes several (else None).
Split = Callable[[dict[str, Any]], "list[dict[str, Any]] | None"]


class Behaviour:
    """How the sandbox runs one registry kind. Subclasses render their status endpoint's payload."""

    #: Credit fields of the payload; a failed job is not charged, so they read 0.
    charge_fields: ClassVar[tuple[str, ...]] = ("deduction_credit",)
    create_msg: ClassVar[str] = "OK"
    #: Whether the faceswap ``delbyids`` endpoint may hide this kind's results.
    deletable: ClassVar[bool] = False

    def __init__(self, kind: JobKind, prepare: Prepare, error: tuple[int, str], split: Split | None = None) -> None:
        self.kind = kind
        self._prepare = prepare
        self._split = split
        self.error = error

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.kind.name} POST {self.kind.create_path}>"

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def status_field(self) -> str:
        return self.kind.status_fields[0]

    @property
    def result_field(self) -> str:
        return self.kind.result_fields[0]

    @property
    def cancel_field(self) -> str:
        """The body field of the registry's cancel endpoint (kinds/__init__ checks it is set)."""
        return self.kind.cancel_body_field or ""

    def prepare(self, body: dict[str, Any], state: SandboxState) -> Plan:
        return self._prepare(body, state, self.kind)

    def split(self, body: dict[str, Any]) -> list[dict[str, Any]] | None:
        """One body per job when this create makes several (video translation into "fr,de"); None
        for the usual one job."""
        return self._split(body) if self._split is not None else None

    # -- payloads ---------------------------------------------------------------------------
    @staticmethod
    def stamp(job: Job) -> dict[str, Any]:
        """The fields most payloads open with: the id, the creation time, the account."""
        return {"_id": job.id, "create_time": job.created_ms, "uid": ACCOUNT_UID}

    def base(self, job: Job, plan: Plan) -> dict[str, Any]:
        """Static fields of the status payload (computed once at creation)."""
        raise NotImplementedError

    def render(self, job: Job, status: int) -> dict[str, Any]:
        """The status payload for ``status``: static fields plus what changes over time."""
        payload = dict(job.base)
        payload[self.status_field] = status
        if status == COMPLETED:
            self.completed(job, payload)
        elif status == FAILED:
            self.failed(job, payload)
        return payload

    def completed(self, job: Job, payload: dict[str, Any]) -> None:
        pass

    def failed(self, job: Job, payload: dict[str, Any]) -> None:
        code, msg = job.failure or self.error
        payload["error_code"] = code
        payload["error_msg"] = msg
        for name in self.charge_fields:
            payload[name] = 0

    def create_data(self, job: Job) -> Any:
        """``data`` of the create response."""
        return self.render(job, 1)

    def webhook_url_field(self, job: Job, status: int) -> str:
        return job.result_url if status == COMPLETED else ""

    # -- identity and ending early ------------------------------------------------------------
    def task_id(self) -> str | None:
        """A second id the create answer carries (faceswap's ``job_id``); None for most kinds."""
        return None

    def static_record(self, record_id: str) -> dict[str, Any] | None:
        """A catalogue record the status endpoint answers for ``record_id`` without a job."""
        return None

    def cancel(self, state: SandboxState, body: Mapping[str, Any]) -> list[Job]:
        """End jobs early from the registry's cancel endpoint; returns the jobs to notify."""
        raise NotImplementedError(f"{self.kind.name} has no cancel endpoint")


@dataclass(frozen=True)
class Recipe:
    """A kind's behaviour before it is bound to its registry entry."""

    behaviour: type[Behaviour]
    prepare: Prepare
    error: tuple[int, str]
    split: Split | None = None

    def bind(self, kind: JobKind) -> Behaviour:
        return self.behaviour(kind, self.prepare, self.error, self.split)


def webhook_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The ``webhookUrl`` echo some payloads carry (video and moderation)."""
    return {"webhookUrl": body["webhookUrl"]} if body.get("webhookUrl") else {}
