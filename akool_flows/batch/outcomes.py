"""What a failed create call means for its row: a pure decision, so the money rule can be read
(and tested) without an engine around it.

The rule: a create is never sent again by this run unless the failure *proves* nothing was
created (the client has already retried those a few times). Anything that may have reached
Akool makes the row ``uncertain``: it is reported and resubmitted only when the user says so.
"""

from __future__ import annotations

from dataclasses import dataclass

from akool_flows.api.errors import (
    AuthenticationError,
    PermissionDeniedError,
    QuotaError,
    create_may_have_happened,
)

__all__ = ["CreateFailure", "classify_create_failure", "MAX_REFUSALS", "refusal_backoff"]

#: Engine-level re-submissions of a row whose create was refused with "try again later" after
#: the client's own retries (each of those already backed off up to 5 times).
MAX_REFUSALS = 3


@dataclass(frozen=True, slots=True)
class CreateFailure:
    """``action``: ``uncertain`` (may exist: never resend), ``stop_auth`` / ``stop_quota`` (not
    created; stop the run), ``retry`` (not created; try this row again later), ``give_up`` (not
    created, refused too often: a rerun tries again), ``final`` (refused for good).

    ``ledger_state`` is what the ledger records for the row; ``outcome`` the row's outcome in
    this run (None: still to be sent)."""

    action: str
    ledger_state: str
    outcome: str | None
    code: int | None
    message: str

    @property
    def created(self) -> bool | None:
        """None: unknown; False: proven not created."""
        return None if self.action == "uncertain" else False


def classify_create_failure(exc: BaseException, refusals: int) -> CreateFailure:
    """Decide for a create that raised ``exc``; ``refusals`` counts this row's "try again later"
    refusals so far, this one included."""
    code = getattr(exc, "code", None)
    text = str(exc)
    if create_may_have_happened(exc):
        return CreateFailure("uncertain", "uncertain", "uncertain", code,
                             f"create call outcome unknown ({type(exc).__name__}: {text}); "
                             "the job may exist - resubmit only with resubmit_uncertain")
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return CreateFailure("stop_auth", "pending", "cancelled", code, f"not created: {text}")
    if isinstance(exc, QuotaError):
        return CreateFailure("stop_quota", "pending", "cancelled", code, f"not created: {text}")
    if getattr(exc, "retryable", False):
        if refusals < MAX_REFUSALS:
            return CreateFailure("retry", "pending", None, code, f"not created yet: {text}")
        # Still refused: left pending so a rerun tries again; this run reports it failed.
        return CreateFailure("give_up", "pending", "failed", code,
                             f"not created (refused {refusals} times, try again later): {text}")
    return CreateFailure("final", "failed", "failed", code, f"not created: {text}")


def refusal_backoff(refusals: int) -> float:
    """Seconds before re-sending a refused create (after the client's own backoff)."""
    from akool_flows.api.retry import backoff_delay

    return backoff_delay(refusals + 1, base=2.0, cap=30.0)
