"""Never pay twice for one task: what a task instance submitted, recorded across its retries.

Airflow 3.3's ``task_state_store`` keeps key/values per (DAG run, task, map index) across
retries. Its ``ResumableJobMixin`` saves the job id *after* the create call, so a worker that
dies between the create and the save resubmits on retry. Here an *intent* is written before
the create call and the id after it, which leaves three cases for a retry:

* nothing recorded (or a record for different fields): submit;
* a job id: reattach to that job (poll it, or return its result if it already finished);
  a recorded job that *failed* is submitted again - that is what a retry is for;
* an intent never handed to the transport (``sent: false``: the worker died before the
  request left, e.g. during the token exchange): nothing can exist, so the retry submits;
* an intent that was sent, without an id: the create call may have reached Akool and been
  charged. If the create carried its own callback path (webhooks on), the receiver records
  the job its callback names under the intent key and the retry attaches that job. Otherwise
  the retry fails with instructions instead of paying again, unless the task says
  ``resubmit_uncertain=True``. Records written before the ``sent`` mark existed count as sent.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

__all__ = ["STATE_KEY", "SubmissionGuard", "SubmissionRecord", "UncertainSubmissionError", "intent_key",
           "request_fingerprint"]

#: task_state_store key. Renaming it breaks in-flight retries of deployed tasks.
STATE_KEY = "akool_job"

# Fields that do not change what Akool computes (a new receiver URL is the same job).
_NOT_IN_FINGERPRINT = frozenset({"webhookUrl"})


def intent_key(ti: Any, fingerprint: str) -> str:
    """A key naming one try's create (task instance, try, request): the callback path's key."""
    parts = [getattr(ti, a, None) for a in ("dag_id", "run_id", "task_id", "map_index", "try_number")]
    return hashlib.sha256("|".join(map(str, [*parts, fingerprint])).encode()).hexdigest()[:40]


def request_fingerprint(kind: str, fields: Mapping[str, Any]) -> str:
    """A stable hash of what the task asks Akool to do (its kind and rendered fields)."""
    material = {k: v for k, v in fields.items() if v is not None and k not in _NOT_IN_FINGERPRINT}
    blob = json.dumps([kind, material], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class SubmissionRecord:
    """One task instance's submission, as stored in ``task_state_store``."""

    phase: Literal["intent", "submitted"]
    kind: str
    fingerprint: str
    job_id: str | None = None
    #: Akool's task id (face swap / re-age cancel takes it).
    task_id: str | None = None
    try_number: int | None = None
    recorded_at: float = 0.0
    #: Every part of a create call that made several jobs (`outcomes.parts_of`), else None.
    parts: list[dict[str, Any]] | None = None
    #: Whether the create request was handed to the transport (None: a record from before this
    #: mark existed - treated as sent).
    sent: bool | None = None
    #: The key of this create's own callback path (webhooks), under which the receiver records
    #: the job its callback names.
    intent_key: str | None = None

    @property
    def maybe_created(self) -> bool:
        return self.phase == "submitted" or self.sent is not False

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, value: Any) -> SubmissionRecord | None:
        if not isinstance(value, dict) or value.get("phase") not in ("intent", "submitted"):
            return None
        try:
            return cls(**{k: value.get(k) for k in cls.__dataclass_fields__ if k in value})
        except TypeError:
            return None


class UncertainSubmissionError(Exception):
    """A previous try may have created (and paid for) a job whose id was never recorded."""


def uncertain_message(record: SubmissionRecord, *, dag_id: str | None, run_id: str | None,
                      task_id: str | None, map_index: int | None) -> str:
    where = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/state-store/{STATE_KEY}"
    if map_index is not None and map_index >= 0:
        where += f"?map_index={map_index}"
    return (
        f"A previous try (try {record.try_number}) sent a {record.kind} create call to Akool but never "
        "recorded the job id (the worker died or the answer was lost), so that job may exist and may "
        "have been charged. Not submitting again without your consent. Check the Akool dashboard, "
        "then either: set resubmit_uncertain=True on this task and clear it (pays for a new job), "
        f"or record the existing job and clear the task: PATCH {where} with "
        f'{{"value": {{"phase": "submitted", "kind": "{record.kind}", '
        f'"fingerprint": "{record.fingerprint}", "job_id": "<the _id>"}}}}.'
    )


class SubmissionGuard:
    """Reads and writes the submission record through a ``task_state_store`` accessor.

    ``store`` may be None (Airflow before 3.3, or ``execute()`` called outside a task run):
    then nothing is recorded and a retry submits again; a warning says so once.
    """

    def __init__(self, store: Any, *, log: Any, key: str = STATE_KEY, try_number: int | None = None) -> None:
        self.store = store
        self.key = key
        self.log = log
        self.try_number = try_number
        if store is None:
            log.warning("task_state_store is not available: a retry of this task cannot find the job it "
                        "submitted and would submit (and pay for) a new one")

    def previous(self) -> SubmissionRecord | None:
        if self.store is None:
            return None
        return SubmissionRecord.from_json(self.store.get(self.key))

    def record_intent(self, kind: str, fingerprint: str, intent_key: str | None = None) -> None:
        self._intent = SubmissionRecord("intent", kind, fingerprint, try_number=self.try_number,
                                        recorded_at=time.time(), sent=False, intent_key=intent_key)
        self._set(self._intent)

    def record_sent(self) -> None:
        """The create request is being handed to the transport: from now on it may exist."""
        if getattr(self, "_intent", None) is not None:
            self._set(replace(self._intent, sent=True, recorded_at=time.time()))

    def record_submitted(self, kind: str, fingerprint: str, job_id: str, task_id: str | None,
                         parts: list[dict[str, Any]] | None = None) -> None:
        self._set(SubmissionRecord("submitted", kind, fingerprint, job_id=job_id, task_id=task_id,
                                   try_number=self.try_number, recorded_at=time.time(), parts=parts))

    def forget(self) -> None:
        """Drop the record: the create call provably created nothing."""
        if self.store is not None:
            self.store.delete(self.key)

    def _set(self, record: SubmissionRecord) -> None:
        if self.store is None:
            return
        try:
            from airflow.sdk.execution_time.context import NEVER_EXPIRE
        except ImportError:  # pragma: no cover - the accessor exists only where this does
            NEVER_EXPIRE = None
        # Never expire: a retry may come days later (retry_delay, a manual clear), and the
        # record is what stops it from paying twice.
        if NEVER_EXPIRE is not None:
            self.store.set(self.key, record.to_json(), retention=NEVER_EXPIRE)
        else:
            self.store.set(self.key, record.to_json())
