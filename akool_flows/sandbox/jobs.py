"""A sandbox job and its clock-driven lifecycle (1 queued -> 2 processing -> 3 done / 4 failed).

Status is computed from the clock when read, never advanced by polling: a job created
at ``t`` is queued until ``queued_until``, processing until ``done_at``, then terminal.
Cancelling or closing a job just moves ``done_at`` to now.
"""

from __future__ import annotations

import itertools
import os
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

    from akool_flows.sandbox.kinds.base import Behaviour

__all__ = ["COMPLETED", "FAILED", "PROCESSING", "QUEUED", "Job", "new_object_id", "new_task_id", "new_uuid"]

QUEUED, PROCESSING, COMPLETED, FAILED = 1, 2, 3, 4

# MongoDB-style ObjectIds (what Akool's `_id`s are): 4-byte time, 5 random bytes per
# process, 3-byte counter. Unique across sandbox instances, unlike a seeded sequence,
# so a ledger can never confuse the jobs of two sandboxes.
_PROCESS_RANDOM = os.urandom(5).hex()
_COUNTER = itertools.count(int.from_bytes(os.urandom(3), "big"))
_RANDOM = random.Random()


def new_object_id() -> str:
    """A 24-hex-character id like ``65f8017f56559aa67f0ecde7``."""
    return f"{int(time.time()) & 0xFFFFFFFF:08x}{_PROCESS_RANDOM}{next(_COUNTER) & 0xFFFFFF:06x}"


def new_task_id() -> str:
    """A faceswap ``job_id`` like ``20240102082900592-5653``."""
    now = datetime.now(timezone.utc)
    return now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}-{_RANDOM.randrange(10_000):04d}"


def new_uuid() -> str:
    """A random UUID4 string (``video_id``, ``image_id``)."""
    return str(uuid.uuid4())


@dataclass(eq=False, slots=True)
class Job:
    """One created job. ``base`` holds the static fields of its status payload."""

    id: str
    behaviour: Behaviour  # what the sandbox does for this job's registry kind
    created: float  # time.monotonic()
    created_ms: int  # wall clock, milliseconds (Akool's create_time)
    queued_until: float
    done_at: float
    cost: float  # credits charged (0 for a job that will fail)
    base: dict[str, Any]
    result_url: str
    webhook_url: str | None
    input_hash: str
    failure: tuple[int, str] | None = None
    task_id: str | None = None
    deleted: bool = False
    ended_by: str | None = None  # "cancel" / "close" when ended early by a request
    extra: dict[str, Any] = field(default_factory=dict)
    #: The create request's body as received (tests read it to see what a client really sent).
    request: dict[str, Any] = field(default_factory=dict)
    notified: set[int] = field(default_factory=set)
    timers: list[asyncio.TimerHandle] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.behaviour.name

    def status(self, now: float | None = None) -> int:
        """The Akool status code at monotonic time ``now`` (default: the current time)."""
        if now is None:
            now = time.monotonic()
        if now < self.queued_until:
            return QUEUED
        if now < self.done_at:
            return PROCESSING
        return FAILED if self.failure else COMPLETED

    def end_now(self, reason: str, failure: tuple[int, str] | None) -> None:
        """End the job at the current time (cancel, close), optionally as a failure."""
        now = time.monotonic()
        self.done_at = min(self.done_at, now)
        self.queued_until = min(self.queued_until, now)
        self.ended_by = reason
        if failure is not None:
            self.failure = failure

    def created_iso(self) -> str:
        """``createdAt`` as the faceswap endpoints render it: ``2023-08-15T02:43:38.536Z``."""
        dt = datetime.fromtimestamp(self.created_ms / 1000, tz=timezone.utc)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"

    def payload(self, now: float | None = None) -> dict[str, Any]:
        """The job as its status endpoint returns it at time ``now``."""
        return self.behaviour.render(self, self.status(now))

    def summary(self, now: float | None = None) -> dict[str, Any]:
        """A compact description for the admin API and tests."""
        return {
            "_id": self.id,
            "kind": self.kind,
            "status": self.status(now),
            "cost": self.cost,
            "input_hash": self.input_hash,
            "task_id": self.task_id,
            "deleted": self.deleted,
            "ended_by": self.ended_by,
            "result_url": self.result_url,
            "webhook": bool(self.webhook_url),
        }
