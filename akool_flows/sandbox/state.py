"""Everything one sandbox remembers: credentials, the account balance, jobs and counters.

Handlers run on the server's event loop while tests call the Python API from another
thread, so every compound read or write takes ``lock`` (a re-entrant lock held only
for short, non-awaiting sections).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

from akool_flows.sandbox import catalog
from akool_flows.sandbox.config import SandboxConfig
from akool_flows.sandbox.errors import ApiError
from akool_flows.sandbox.faults import Faults
from akool_flows.sandbox.jobs import COMPLETED, FAILED, Job, new_object_id
from akool_flows.sandbox.kinds import Behaviour, Plan, Prepare, check_kind_name

__all__ = ["FAIL_MARKER", "SLOW_MARKER", "SandboxState", "input_hash"]

FAIL_MARKER = "sandbox-fail"
SLOW_MARKER = "sandbox-slow"
_WEBHOOK_LOG_SIZE = 10_000


def input_hash(kind: str, body: Mapping[str, Any]) -> str:
    """Stable identity of a create request: kind + canonical JSON body without ``webhookUrl``."""
    clean = {k: v for k, v in body.items() if k != "webhookUrl"}
    canonical = json.dumps([kind, clean], sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:20]


class _ReadTracking(dict):  # type: ignore[type-arg]
    """A request body that remembers which top-level fields the kind's validation read."""

    def __init__(self, body: Mapping[str, Any]) -> None:
        super().__init__(body)
        self.read: set[str] = set()

    def get(self, key: Any, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: Any) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: Any) -> bool:
        self.read.add(key)
        return super().__contains__(key)


# Never echoed: a receiver URL may carry a secret path token, and kinds that echo it do so themselves.
_NOT_ECHOED = frozenset({"webhookUrl"})


def _contains(value: Any, marker: str) -> bool:
    """Whether any string inside ``value`` (recursively, ``webhookUrl`` excepted) has ``marker``."""
    if isinstance(value, str):
        return marker in value
    if isinstance(value, Mapping):
        return any(_contains(v, marker) for k, v in value.items() if k != "webhookUrl")
    if isinstance(value, list):
        return any(_contains(v, marker) for v in value)
    return False


class SandboxState:
    """The mutable world of one sandbox server."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.lock = threading.RLock()
        self.faults = Faults(config.seed)
        self.tokens: set[str] = {config.token}
        self.api_keys: set[str] = {config.api_key}
        self._reset_data()

    def _reset_data(self) -> None:
        self.balance: float = float(self.config.credits)
        self.jobs: dict[str, Job] = {}
        self.task_ids: dict[str, Job] = {}
        self.avatars: dict[str, Job] = {}
        self.user_voices: dict[str, dict[str, Any]] = {}
        self.lipsync_translations: dict[tuple[str, str], Job] = {}
        self.buckets: dict[str, list[float]] = {}
        self.requests = 0
        self.requests_by_path: Counter[str] = Counter()
        self.creates: Counter[str] = Counter()
        self.create_inputs: Counter[str] = Counter()
        self.polls: Counter[str] = Counter()
        self.rejected: Counter[int] = Counter()
        self.credits_charged = 0.0
        self.credits_refunded = 0.0
        self.webhook_attempts = 0
        self.webhooks_delivered = 0
        self.webhooks_failed = 0
        self.webhook_log: deque[dict[str, Any]] = deque(maxlen=_WEBHOOK_LOG_SIZE)

    def reset(self) -> None:
        """Forget jobs, counters and faults; restore the starting balance. Credentials stay valid."""
        # Webhook timers are not touched here: they belong to the event loop (see
        # WebhookDispatcher.cancel_all) and ignore jobs that are no longer in `jobs`.
        with self.lock:
            self._reset_data()
            self.faults.reset()

    # -- auth -----------------------------------------------------------------------------
    def issue_token(self, client_id: Any, client_secret: Any) -> str:
        """A new bearer token for a valid clientId/clientSecret pair (Akool's getToken)."""
        if not client_id or not client_secret:
            raise ApiError(1102, "Authorization cannot be empty: clientId and clientSecret are required")
        if not (
            isinstance(client_id, str)
            and isinstance(client_secret, str)
            and hmac.compare_digest(client_id.encode(), self.config.client_id.encode())
            and hmac.compare_digest(client_secret.encode(), self.config.client_secret.encode())
        ):
            raise ApiError(1101, "Invalid authorization or The request token has expired: wrong clientId/clientSecret")
        token = "sbx-tok-" + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens.add(token)
        return token

    def authenticate(self, headers: Mapping[str, str]) -> str:
        """The credential of a request (bearer token or x-api-key); 1102 if none, 1101 if invalid."""
        key = headers.get("x-api-key")
        if key:
            if key in self.api_keys:
                return key
            raise ApiError(1101, "Invalid authorization or The request token has expired: unknown x-api-key")
        auth = headers.get("Authorization")
        if not auth or not auth.strip():
            raise ApiError(1102)
        scheme, _, token = auth.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer":
            raise ApiError(1101, "Invalid authorization: expected 'Authorization: Bearer <token>'")
        if not token:
            raise ApiError(1102, "Authorization cannot be empty: the bearer token is missing")
        if token in self.tokens:
            return token
        raise ApiError(1101)

    def allow(self, credential: str) -> bool:
        """Token bucket per credential: ``rate_limit_per_second`` refill, burst of max(1, rate)."""
        rate = self.config.rate_limit_per_second
        if rate is None:
            return True
        now = time.monotonic()
        capacity = max(1.0, rate)
        with self.lock:
            bucket = self.buckets.get(credential)
            if bucket is None:
                bucket = self.buckets[credential] = [capacity, now]
            tokens = min(capacity, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return True
            bucket[0] = tokens
            return False

    # -- jobs -----------------------------------------------------------------------------
    def create_job(self, behaviour: Behaviour, body: dict[str, Any], files_base: str,
                   received: Mapping[str, Any] | None = None, prepare: Prepare | None = None) -> Job:
        """Validate ``body`` for ``behaviour``, charge the account and create the job (or raise ApiError).

        ``received`` is the request as sent when it made several jobs (``body`` is this job's part);
        ``prepare`` replaces the kind's own for a create at another endpoint (image to video's batch)."""
        with self.lock:
            tracked = _ReadTracking(body)
            plan: Plan = (behaviour.prepare(tracked, self) if prepare is None
                          else prepare(tracked, self, behaviour.kind))
            cost = round(float(plan.cost), 6)
            if self.balance + 1e-9 < cost:
                raise ApiError(1006, f"Your quota is not enough: this job needs {cost:g} credits, "
                                     f"the balance is {self.balance:g}")
            failing = _contains(body, FAIL_MARKER)
            factor = 2.0 if _contains(body, SLOW_MARKER) else 1.0
            now = time.monotonic()
            lifetime = self.config.job_seconds
            if plan.lifetime is not None and not failing:  # a failing session fails like any job
                lifetime = plan.lifetime
            done_at = now + lifetime * factor
            job_id = new_object_id()
            if plan.result_url is not None:
                result_url = plan.result_url
            elif plan.result_ext:
                result_url = f"{files_base}{job_id}.{plan.result_ext}"
            else:
                result_url = ""
            # A job that will fail is not charged: Akool deducts credits for results only.
            charged = 0.0 if failing else cost
            job = Job(
                id=job_id,
                behaviour=behaviour,
                created=now,
                created_ms=int(time.time() * 1000),
                queued_until=min(now + self.config.queue_seconds * factor, done_at),
                done_at=done_at,
                cost=charged,
                base={},
                result_url=result_url,
                # A kind without a webhook type never calls back (the docs list no type for it).
                webhook_url=(body.get("webhookUrl") or None) if behaviour.kind.webhook_type else None,
                input_hash=input_hash(behaviour.name, body),
                failure=behaviour.error if failing else None,
                task_id=behaviour.task_id(),
                extra={**plan.extra, "files_base": files_base, "nominal_cost": cost},
                request=dict(body if received is None else received),
            )
            job.base = behaviour.base(job, plan)
            # Akool accepts fields its docs do not list; the sandbox echoes the ones it did not
            # read in the job's payload, so a test sees them arrive.
            for name in body.keys() - tracked.read - _NOT_ECHOED:
                job.base.setdefault(name, body[name])
            self.balance = round(self.balance - charged, 6)
            self.credits_charged = round(self.credits_charged + charged, 6)
            self.jobs[job_id] = job
            if job.task_id:
                self.task_ids[job.task_id] = job
            self.creates[behaviour.name] += 1
            self.create_inputs[job.input_hash] += 1
            if plan.on_created is not None:
                plan.on_created(job)
            return job

    def reported_job(self, status_path: str, job_id: str) -> Job | None:
        """The job ``job_id`` if the status endpoint ``status_path`` reports it (not deleted)."""
        job = self.jobs.get(job_id)
        if job is None or job.behaviour.kind.status_path != status_path or job.deleted:
            return None
        return job

    def find_job(self, status_path: str, job_id: str) -> Job:
        """Like :meth:`reported_job`, but 1008 when there is no such job."""
        job = self.reported_job(status_path, job_id)
        if job is None:
            raise ApiError(1008, f"The content you get does not exist: no job {job_id!r} at {status_path}")
        return job

    def reported_jobs(self, status_path: str) -> list[Job]:
        """Every job the status endpoint ``status_path`` reports, oldest first."""
        with self.lock:
            return [job for job in self.jobs.values()
                    if job.behaviour.kind.status_path == status_path and not job.deleted]

    def refund(self, job: Job) -> None:
        with self.lock:
            self.balance = round(self.balance + job.cost, 6)
            self.credits_refunded = round(self.credits_refunded + job.cost, 6)
            job.cost = 0.0

    # -- registries used by kinds ------------------------------------------------------------
    def voice_model_id(self, voice_id: str | None) -> str | None:
        voice = self.user_voices.get(voice_id or "")
        return voice["_id"] if voice else None

    def new_voice_model_id(self, source: str) -> str:
        return new_object_id()

    def register_user_voice(self, job: Job) -> None:
        voice_id = "sbxvoice" + job.id[-12:]
        self.user_voices[voice_id] = {"_id": job.base.get("voice_model_id", job.id), "job": job, "voice_id": voice_id}

    def avatar_exists(self, avatar_id: str) -> bool:
        official = any(a["avatar_id"] == avatar_id for a in catalog.TALKING_AVATARS + catalog.LIVE_AVATARS)
        return official or avatar_id in self.avatars

    def register_avatar(self, avatar_id: str, job: Job) -> None:
        self.avatars[avatar_id] = job

    def _uploaded_ready(self, avatar_id: str, avatar_type: int) -> bool:
        job = self.avatars.get(avatar_id)
        return job is not None and job.extra.get("avatar_type") == avatar_type and job.status() == COMPLETED

    def talking_avatar_available(self, avatar_id: str) -> bool:
        return any(a["avatar_id"] == avatar_id for a in catalog.TALKING_AVATARS) or self._uploaded_ready(avatar_id, 1)

    def live_avatar_available(self, avatar_id: str) -> bool:
        return any(a["avatar_id"] == avatar_id for a in catalog.LIVE_AVATARS) or self._uploaded_ready(avatar_id, 2)

    def lipsync_translation_exists(self, key: tuple[str, str]) -> bool:
        job = self.lipsync_translations.get(key)
        return job is not None and job.status() != FAILED

    def remember_lipsync_translation(self, key: tuple[str, str], job: Job) -> None:
        self.lipsync_translations[key] = job

    # -- counters ---------------------------------------------------------------------------
    def count_request(self, path: str, *, poll: bool = False) -> None:
        with self.lock:
            self.requests += 1
            self.requests_by_path[path] += 1
            if poll:
                self.polls[path] += 1

    def count_rejected(self, code: int) -> None:
        with self.lock:
            self.rejected[code] += 1

    def create_count(self, kind: str | None = None) -> int:
        """Jobs created (accepted create calls), in total or for one kind name."""
        check_kind_name(kind)
        with self.lock:
            return self.creates[kind] if kind else sum(self.creates.values())

    def duplicate_creates(self) -> dict[str, int]:
        """``{input_hash: count}`` for every create input that was accepted more than once."""
        with self.lock:
            return {h: n for h, n in self.create_inputs.items() if n > 1}

    def record_webhook(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.webhook_log.append(entry)
            if entry["delivered"]:
                self.webhooks_delivered += 1
            else:
                self.webhooks_failed += 1

    def stats(self) -> dict[str, Any]:
        """A JSON-ready snapshot of every counter (served at ``GET /_sandbox/stats``)."""
        with self.lock:
            now = time.monotonic()
            by_status: Counter[int] = Counter(job.status(now) for job in self.jobs.values())
            return {
                "requests": self.requests,
                "requests_by_path": dict(self.requests_by_path),
                "creates": sum(self.creates.values()),
                "creates_by_kind": dict(self.creates),
                "duplicate_creates": {h: n for h, n in self.create_inputs.items() if n > 1},
                "polls": sum(self.polls.values()),
                "polls_by_path": dict(self.polls),
                "rejected_by_code": {str(code): n for code, n in self.rejected.items()},
                "jobs": len(self.jobs),
                "jobs_by_status": {str(s): n for s, n in sorted(by_status.items())},
                "credits": self.balance,
                "credits_charged": self.credits_charged,
                "credits_refunded": self.credits_refunded,
                "webhook_attempts": self.webhook_attempts,
                "webhooks_delivered": self.webhooks_delivered,
                "webhooks_failed": self.webhooks_failed,
                "faults_injected": dict(self.faults.injected),
                "faults_active": self.faults.rules(),
            }
