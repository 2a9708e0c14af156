"""Backoff: the one place that decides how long to wait before trying again.

The client's retries, the engine's re-submission of refused creates, the operators' and the
triggers' status polls all back off the same way, so a fix here reaches every caller.
"""

from __future__ import annotations

import random

__all__ = ["backoff_delay"]


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
