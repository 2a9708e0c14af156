"""Backoff: the one place that decides how long to wait before trying again.

The client's retries, the engine's re-submission of refused creates, the operators' and the
triggers' status polls all back off the same way, so a fix here reaches every caller.
"""

from __future__ import annotations

import math
import random
import time
from datetime import timezone
from email.utils import parsedate_to_datetime

__all__ = ["backoff_delay", "parse_retry_after"]


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
