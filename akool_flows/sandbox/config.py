"""Sandbox configuration: one dataclass, every knob with a default that makes tests fast."""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field
from typing import Any

from akool_flows.webhook.crypto import check_credentials

__all__ = ["SandboxConfig"]

# Fields that may be changed while the server runs (Python `Sandbox.configure` and
# `POST /_sandbox/config`). Identity fields (host, port, credentials) are fixed at start.
RUNTIME_FIELDS = frozenset(
    {
        "queue_seconds",
        "job_seconds",
        "latency",
        "credits",
        "rate_limit_per_second",
        "webhook_on_processing",
        "webhook_max_attempts",
        "webhook_retry_seconds",
        "webhook_timeout",
        "result_ttl_seconds",
        "session_time_scale",
    }
)


def _object_id() -> str:
    # Akool client ids look like MongoDB ObjectIds (24 hex chars, see the getToken example).
    return secrets.token_hex(12)


def _client_secret() -> str:
    # The Webhook page says Akool issues 24-character secrets (AES-192 keys); its own example
    # secret has 32 (AES-256), so configured secrets may have any AES key length.
    return secrets.token_urlsafe(18)[:24]


@dataclass
class SandboxConfig:
    """Behaviour of a :class:`~akool_flows.sandbox.Sandbox`.

    Times are seconds. A job is *queued* (status 1) for ``queue_seconds`` after its
    creation, *processing* (status 2) until ``job_seconds`` after creation, then
    completed (3) or failed (4). Requests whose string fields contain ``sandbox-slow``
    take twice as long; ``sandbox-fail`` makes the job end in status 4.

    Credentials default to fresh random values; they belong to this sandbox only and
    are kept out of ``repr``.
    """

    queue_seconds: float = 0.2
    job_seconds: float = 1.0
    latency: float = 0.0
    """Fixed delay added to every non-admin request (benchmarks use 0.02)."""
    credits: float = 1_000_000.0
    """Starting account balance; create calls draw it down (1006 when it cannot cover a job)."""
    rate_limit_per_second: float | None = None
    """Requests per second allowed per credential (token or API key); ``None`` = unlimited."""
    seed: int = 0
    """Seed of the fault-injection random generator (probabilistic faults are reproducible)."""
    host: str = "127.0.0.1"
    port: int = 0
    """0 picks a free port."""
    client_id: str = field(default_factory=_object_id)
    client_secret: str = field(default_factory=_client_secret, repr=False)
    token: str = field(default_factory=lambda: "sbx-tok-" + secrets.token_urlsafe(24), repr=False)
    api_key: str = field(default_factory=lambda: "sbx-key-" + secrets.token_urlsafe(24), repr=False)
    webhook_on_processing: bool = True
    """Also call the webhook when a job enters status 2 (the Webhook page lists 2, 3 and 4)."""
    webhook_max_attempts: int = 5
    webhook_retry_seconds: float = 0.2
    """First retry delay; doubles after each failed attempt (Akool retries until HTTP 200)."""
    webhook_timeout: float = 5.0
    result_ttl_seconds: float | None = None
    """Result files answer 403 this long after job creation (Akool: 7 days). ``None`` = never."""
    session_time_scale: float = 1.0
    """Live-avatar sessions end after ``duration * session_time_scale`` seconds."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first field whose value is not allowed."""
        for name in ("queue_seconds", "job_seconds", "latency", "webhook_retry_seconds"):
            _check_number(name, getattr(self, name), minimum=0.0)
        _check_number("credits", self.credits, minimum=0.0)
        _check_number("webhook_timeout", self.webhook_timeout, minimum=0.0, exclusive=True)
        _check_number("session_time_scale", self.session_time_scale, minimum=0.0, exclusive=True)
        if self.job_seconds < self.queue_seconds:
            raise ValueError(
                f"job_seconds must be >= queue_seconds (got job_seconds={self.job_seconds}, "
                f"queue_seconds={self.queue_seconds}): a job is queued, then processed, then done"
            )
        if self.rate_limit_per_second is not None:
            _check_number("rate_limit_per_second", self.rate_limit_per_second, minimum=0.0, exclusive=True)
        if self.result_ttl_seconds is not None:
            _check_number("result_ttl_seconds", self.result_ttl_seconds, minimum=0.0)
        if not isinstance(self.webhook_max_attempts, int) or self.webhook_max_attempts < 1:
            raise ValueError(f"webhook_max_attempts must be an integer >= 1, got {self.webhook_max_attempts!r}")
        if not isinstance(self.port, int) or not 0 <= self.port <= 65535:
            raise ValueError(f"port must be an integer in [0, 65535], got {self.port!r}")
        if not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        for name in ("client_id", "token", "api_key"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ValueError(f"{name} must be a non-empty string")
        if not isinstance(self.client_secret, str):
            raise ValueError("client_secret must be a string (it is the AES key of the webhooks)")
        # The webhook layer's own rule (16, 24 or 32 bytes), so every secret the sandbox
        # accepts can encrypt its callbacks; the message names the length, never the secret.
        check_credentials(self.client_id, self.client_secret)

    def replace(self, **changes: Any) -> SandboxConfig:
        """A validated copy with ``changes`` applied (unknown field names are rejected)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            allowed = ", ".join(sorted(f.name for f in dataclasses.fields(self)))
            raise ValueError(f"unknown SandboxConfig field(s) {sorted(unknown)}; allowed: {allowed}")
        return dataclasses.replace(self, **changes)

    def public_dict(self) -> dict[str, Any]:
        """The configuration without credentials (safe to print, log or serve)."""
        hidden = {"client_secret", "token", "api_key"}
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name not in hidden}


def _check_number(name: str, value: Any, *, minimum: float, exclusive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if value < minimum or (exclusive and value == minimum):
        op = ">" if exclusive else ">="
        raise ValueError(f"{name} must be {op} {minimum}, got {value!r}")
