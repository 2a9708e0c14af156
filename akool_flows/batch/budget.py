"""The money arithmetic of a run: what earlier runs already spent, what this run reserves before
each create, releases when nothing was created, and settles when Akool reports the real figure.

A budget counts earlier runs of the same batch too ("this batch may spend at most N"), so a
rerun cannot spend the budget a second time. Figures are credits.
"""

from __future__ import annotations

__all__ = ["Budget"]

#: Float sums of many 0.1-credit rows drift; a row that fits exactly must not be refused.
_EPS = 1e-9


class Budget:
    """Credits committed by a batch: ``earlier`` (rows whose job an earlier run created) and
    ``new`` (rows this run sends), against an optional ``cap``."""

    def __init__(self, limit: float | None = None) -> None:
        #: What the user allows (None: no budget); `cap` may be tightened by the account balance.
        self.limit = limit
        self.cap: float | None = limit
        self.earlier = 0.0
        self.new = 0.0

    @property
    def committed(self) -> float:
        return self.earlier + self.new

    def count_earlier(self, credits: float) -> None:
        """A row whose job an earlier run created (reported credits, else its estimate)."""
        self.earlier += credits

    def limit_to_balance(self, balance: float | None) -> None:
        """The account cannot spend more than it holds: cap at what is committed plus the balance."""
        if self.cap is not None and balance is not None:
            self.cap = min(self.cap, self.committed + balance)

    def fits(self, estimate: float) -> bool:
        return self.cap is None or self.committed + estimate <= self.cap + _EPS

    def reserve(self, estimate: float) -> None:
        """Before a create: the row's estimate counts until Akool reports what it cost."""
        self.new += estimate

    def release(self, estimate: float) -> None:
        """The create was proven not to have created anything."""
        self.new -= estimate

    def settle(self, estimate: float, reported: float | None, *, failed: bool, earlier: bool = False) -> None:
        """A job finished: replace its estimate with the reported figure. A failed job with no
        figure is taken as not charged (the docs do not say failed jobs are charged)."""
        if reported is not None:
            delta = reported - estimate
        elif failed:
            delta = -estimate
        else:
            return
        if earlier:
            self.earlier += delta
        else:
            self.new += delta

    def overrun_message(self, estimate: float) -> str:
        return (f"the next row would take spending past the budget ({self.committed:,.2f} + {estimate:,.2f} > "
                f"{self.cap:,.2f} credits)")
