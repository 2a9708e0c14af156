"""Backoff: the one place that decides how long to wait before trying again.

The client's retries, the engine's re-submission of refused creates, the operators' and the
triggers' status polls all back off the same way, so a fix here reaches every caller. Also here:
the client's `RetryPolicy` (whether to try again at all). How fast to send - and so how long a
refused (1005 / 429) call waits - is `ratecontrol`'s, not a backoff's.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from akool_flows.api.endpoints import Call
    from akool_flows.api.errors import AkoolError

__all__ = ["RetryPolicy", "backoff_delay", "parse_retry_after"]


def backoff_delay(attempt: int, *, base: float, cap: float, multiplier: float = 2.0,
                  rng: random.Random | None = None) -> float:
    """Seconds to wait before try ``attempt + 1`` (``attempt`` >= 1 failures so far).

    Exponential with "equal jitter": a uniform draw from the upper half of the step, so many
    clients refused at once spread out but none retries almost at once.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    step = min(cap, base * multiplier ** (attempt - 1))
    return (rng or random).uniform(step / 2, step)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP date (RFC 9110
    10.2.3). None when absent or unreadable (negative, not a number, not a date); a date in the
    past means 0."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # asctime and "-0000" dates: HTTP dates are always GMT
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter (`backoff_delay`), capped, stretched by ``Retry-After``.

    A rate-limit refusal (1005 / 429) is retried without a backoff of its own: the shared
    `ratecontrol.RateController` slows the account's pace and holds every call for a ``Retry-After``.

    A create call is retried only when the failure proves nothing was created (connection never
    opened, HTTP 429, 1005 and the "try again later" codes); status calls on anything transient.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 20.0
    multiplier: float = 2.0
    #: Longest ``Retry-After`` honoured inside a call; a server asking for more gets the error
    #: raised at once (with `.retry_after`) instead of a call that blocks for minutes.
    max_retry_after: float = 60.0

    def should_retry(self, call: Call, exc: AkoolError, attempt: int) -> bool:
        if attempt >= self.max_attempts or not exc.retryable:
            return False
        if call.creates and exc.may_have_created:
            return False
        return exc.retry_after is None or exc.retry_after <= self.max_retry_after

    def backoff(self, attempt: int) -> float:
        return backoff_delay(attempt, base=self.initial_backoff, cap=self.max_backoff, multiplier=self.multiplier)

    def delay(self, exc: AkoolError, attempt: int) -> float:
        """Seconds before the next attempt: the backoff, or longer if the server said so."""
        return max(self.backoff(attempt), exc.retry_after or 0.0)
