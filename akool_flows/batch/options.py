"""How a batch runs: one `BatchOptions`, shared by `run_batch`, the CLI, the notebook apps and
the Airflow batch operator, so an option is added (and checked) in one place.

Every check names the field and what is allowed, and runs before anything is sent or paid for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from akool_flows.api.redact import redact_url
from akool_flows.batch.cost import USD_PER_CREDIT
from akool_flows.batch.errors import BatchInputError

__all__ = ["BatchOptions"]


def _bad(field: str, text: str) -> BatchInputError:
    return BatchInputError(f"{field} {text}", field=field)


def _positive(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or math.isinf(value):
        raise _bad(name, f"must be a number > 0, got {value!r}")


def _credits(name: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value < 0:
        raise _bad(name, f"must be a number of credits >= 0, got {value!r}")


@dataclass(frozen=True)
class BatchOptions:
    """Everything about *how* a batch runs (what it runs is the `BatchPlan`).

    See `run_batch` for the meaning of each field. ``max_credits_per_row`` is the ceiling a
    budget reserves for a row whose price cannot be known before Akool fetches it (text
    moderation of a document URL, kinds without a published price): without it such rows make a
    budget unenforceable and the run refuses to start.
    """

    concurrency: int = 32
    max_requests_per_second: float | None = None
    poll_interval: float = 5.0
    job_timeout: float | None = None
    event_fallback_interval: float | None = None
    budget_credits: float | None = None
    max_credits_per_row: float | None = None
    usd_per_credit: float = USD_PER_CREDIT
    resubmit_uncertain: bool = False
    events: Any = None
    webhook_url: str | None = None
    download_dir: str | Path | None = None
    download_max_bytes: int | None = None
    results_path: str | Path | None = None
    progress: Callable[[Any], Any] | None = None
    cancel: Any = None
    reuse: bool = True
    strict: bool = False
    wait: bool = True
    #: Seconds a run's lease lasts without renewal (another run may take the batch after that).
    lease_ttl: float = 60.0
    #: Where files named in URL fields are uploaded before their create (`batch.staging`): an
    #: fsspec URL such as ``s3://bucket/prefix``, or ``"sandbox:"``; None: such rows are rejected.
    stage: str | None = None
    #: Seconds the signed URL of a staged file stays valid (S3 allows at most 7 days).
    stage_expiry: float = 24 * 3600.0
    #: fsspec storage options for the stage target (``{"key": ..., "client_kwargs": {...}}``).
    #: They may hold credentials: kept out of the repr.
    stage_options: Mapping[str, Any] | None = field(default=None, repr=False)

    @classmethod
    def from_kwargs(cls, options: BatchOptions | None = None, **kwargs: Any) -> BatchOptions:
        """``options`` with ``kwargs`` applied; an unknown keyword names the allowed ones."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise BatchInputError(f"unknown batch option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}",
                                  field=unknown[0])
        base = options if options is not None else cls()
        return replace(base, **kwargs).checked()

    def checked(self) -> BatchOptions:
        """Raise `BatchInputError` on the first bad field; return self."""
        c = self.concurrency
        if isinstance(c, bool) or not isinstance(c, int) or c < 1:
            raise _bad("concurrency", f"must be an integer >= 1, got {c!r}")
        _positive("poll_interval", self.poll_interval, allow_none=False)
        _positive("job_timeout", self.job_timeout, allow_none=True)
        _positive("max_requests_per_second", self.max_requests_per_second, allow_none=True)
        _positive("event_fallback_interval", self.event_fallback_interval, allow_none=True)
        _positive("lease_ttl", self.lease_ttl, allow_none=False)
        _positive("stage_expiry", self.stage_expiry, allow_none=False)
        if self.stage is not None and (not isinstance(self.stage, str) or not self.stage.strip()):
            raise _bad("stage", f"must be an fsspec URL (s3://bucket/prefix) or 'sandbox:', got {self.stage!r}")
        if self.stage_options is not None and not isinstance(self.stage_options, Mapping):
            raise _bad("stage_options", "must be a mapping of fsspec storage options")
        _credits("budget_credits", self.budget_credits)
        _credits("max_credits_per_row", self.max_credits_per_row)
        upc = self.usd_per_credit
        if isinstance(upc, bool) or not isinstance(upc, (int, float)) or upc < 0:
            raise _bad("usd_per_credit", f"must be a number >= 0, got {upc!r}")
        if self.webhook_url is not None and not str(self.webhook_url).startswith(("http://", "https://")):
            raise _bad("webhook_url", f"must be an http(s) URL, got {redact_url(str(self.webhook_url))!r}")
        dmb = self.download_max_bytes
        if dmb is not None and (isinstance(dmb, bool) or not isinstance(dmb, int) or dmb < 1):
            raise _bad("download_max_bytes", "must be a positive integer")
        if self.cancel is not None and not callable(getattr(self.cancel, "is_set", None)):
            raise _bad("cancel", "must be a threading.Event or asyncio.Event")
        for name in ("wait", "reuse", "strict", "resubmit_uncertain"):
            if not isinstance(getattr(self, name), bool):
                raise _bad(name, f"must be True or False, got {getattr(self, name)!r}")
        return self

    @property
    def fallback_interval(self) -> float:
        """With webhook events: how long to wait for a job's event before polling it."""
        if self.event_fallback_interval is not None:
            return float(self.event_fallback_interval)
        return max(float(self.poll_interval), 30.0)

    def to_mapping(self) -> Mapping[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
