"""Normalised views of Akool jobs: what a create call returned and where a job stands.

Akool's status payloads differ per kind (`video_status` vs `image_status` vs `faceswap_status`,
`video` vs `image` vs `url`); `JobStatus.from_payload` reads them through the registry entry so
everything above the client sees one shape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

from akool_flows.api.kinds import JobKind, get_kind

State = Literal["queued", "processing", "completed", "failed"]
STATES: dict[int, State] = {1: "queued", 2: "processing", 3: "completed", 4: "failed"}
TERMINAL: frozenset[str] = frozenset({"completed", "failed"})
#: How a caller accounts for each job it was asked to run (a batch row): every row ends in exactly
#: one. ``submitted`` only comes from a run that does not wait: the job is running and a later run
#: collects it. Kept below pandas so the Airflow batch operator checks ``fail_on`` at DAG parse.
OUTCOMES = ("completed", "failed", "rejected", "cancelled", "uncertain", "timed_out", "submitted")

_ERROR_MESSAGE_FIELDS = ("error_msg", "error_message", "msg_error", "error_reason", "reason", "message")
_ERROR_CODE_FIELDS = ("error_code", "err_code", "code")


def _first(payload: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        value = payload.get(name)
        if value not in (None, ""):
            return value
    return None


def _as_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class JobStatus:
    """Where one job stands, the same shape for every kind."""

    job_id: str
    kind: str
    state: State
    status_code: int
    result_urls: tuple[str, ...] = ()
    #: Moderation: "Compliant" / "Non-Compliant" / "Unknown"; `detail` holds Akool's `result` text.
    conclusion: str | None = None
    detail: str | None = None
    credits: float | None = None
    duration: float | None = None
    error_code: int | None = None
    error_message: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.state in TERMINAL

    @property
    def ok(self) -> bool:
        return self.state == "completed"

    @property
    def result_url(self) -> str | None:
        return self.result_urls[0] if self.result_urls else None

    @classmethod
    def from_payload(cls, kind: str | JobKind, payload: dict[str, Any], job_id: str | None = None) -> JobStatus:
        k = get_kind(kind)
        code = _first(payload, k.status_fields)
        try:
            code = int(code)
        except (TypeError, ValueError):
            code = 1
        state = STATES.get(code, "processing")
        urls: list[str] = []
        for name in k.result_fields:
            value = payload.get(name)
            if isinstance(value, str) and value:
                urls.append(value)
            elif isinstance(value, list):
                urls.extend(v for v in value if isinstance(v, str) and v)
        error_message = error_code = None
        if state == "failed":
            reasons = payload.get("error_reasons")
            if isinstance(reasons, list) and reasons:
                first = reasons[0]
                if isinstance(first, dict):
                    # An image's error_reasons entries use the same names as a payload's top level.
                    error_message = _first(first, (*_ERROR_MESSAGE_FIELDS, "msg"))
                    error_code = _first(first, _ERROR_CODE_FIELDS)
                else:
                    error_message = str(first)
            error_message = error_message or _first(payload, _ERROR_MESSAGE_FIELDS)
            error_code = error_code or _first(payload, _ERROR_CODE_FIELDS)
            try:
                error_code = int(error_code) if error_code is not None else None
            except (TypeError, ValueError):
                error_code = None
        return cls(
            job_id=str(job_id or payload.get("_id") or ""),
            kind=k.name,
            state=state,
            status_code=code,
            result_urls=tuple(dict.fromkeys(urls)),
            conclusion=payload.get("final_conclusion") or None,
            detail=payload.get("result") if isinstance(payload.get("result"), str) and payload.get("result") else None,
            credits=_as_float(_first(payload, k.credit_fields)) if k.credit_fields else None,
            duration=_as_float(_first(payload, k.duration_fields)) if k.duration_fields else None,
            error_code=error_code,
            error_message=str(error_message) if error_message is not None else None,
            raw=payload,
        )

    @classmethod
    def from_event(cls, kind: str | JobKind, event: Any) -> JobStatus | None:
        """A terminal status from a webhook event (`job_id`, `status`, `url`, `raw`, error fields),
        or None when the event is missing or not terminal."""
        code = getattr(event, "status", None)
        if code not in (3, 4):
            return None
        raw = dict(getattr(event, "raw", {}) or {})
        k = get_kind(kind)
        # Read what the event carries through the registry, then make sure status/url stick.
        base = cls.from_payload(k, {**raw, k.status_fields[0]: code}, getattr(event, "job_id", None))
        url = getattr(event, "url", None)
        return cls(job_id=base.job_id, kind=base.kind, state=STATES[code], status_code=code,
                   result_urls=base.result_urls or ((url,) if url else ()), conclusion=base.conclusion,
                   detail=base.detail, credits=base.credits, duration=base.duration,
                   error_code=base.error_code or getattr(event, "error_code", None),
                   error_message=base.error_message or getattr(event, "error_message", None), raw=raw)

    def to_dict(self) -> dict[str, Any]:
        """A small JSON-able summary (XCom, results rows); without the raw payload."""
        return {"job_id": self.job_id, "kind": self.kind, "state": self.state, "status_code": self.status_code,
                "result_urls": list(self.result_urls), "conclusion": self.conclusion, "detail": self.detail,
                "credits": self.credits, "duration": self.duration, "error_code": self.error_code,
                "error_message": self.error_message}


@dataclass(frozen=True, slots=True)
class Refusal:
    """A part of a create call that Akool refused (a language of a translation): no job, nothing
    charged, Akool's code and message."""

    code: int | None
    message: str
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "language": self.language}


@dataclass(frozen=True, slots=True)
class Job:
    """A created job: its `_id`, the kind, and what the create call answered.

    One create call can make several jobs (a video translation into ``"fr,de,ja"`` makes one
    per language, each with its own ``_id``, status and cost): `jobs` lists them all, in the
    order asked; this object is the first of them (its `job_id`), and `refused` names the
    parts Akool refused. For the usual single job, ``jobs == (job,)``.
    """

    job_id: str
    kind: str
    #: Akool's task id (`job_id` field) for kinds whose cancel endpoint takes it (faceswap/reage).
    task_id: str | None = None
    submitted_at: float = field(default_factory=time.time)
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    #: The target language of a video translation job (None for other kinds).
    language: str | None = None
    #: Every job the create call made, when it made several (use `jobs`).
    parts: tuple[Job, ...] = field(default=(), repr=False)
    #: The parts of the create call Akool refused (nothing was created or charged for them).
    refused: tuple[Refusal, ...] = ()

    @property
    def jobs(self) -> tuple[Job, ...]:
        """Every job the create call made, first one first (``(self,)`` for a single job)."""
        return self.parts or (self,)

    @property
    def initial_status(self) -> JobStatus:
        return JobStatus.from_payload(self.kind, self.raw, self.job_id)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job_id": self.job_id, "kind": self.kind, "task_id": self.task_id,
                               "submitted_at": self.submitted_at}
        if self.language is not None:
            out["language"] = self.language
        if len(self.jobs) > 1 or self.refused:
            out["jobs"] = [j.to_dict() for j in self.jobs]
            out["refused"] = [r.to_dict() for r in self.refused]
        return out
