"""The price probe: what a kind costs when the docs publish no price.

Run the first few rows and divide what the account's balance dropped by the jobs this run
created. Only as exact as the account is quiet meanwhile; the app then prices later estimates
(and budgets) with it through its ``cost_table``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PriceProbe"]


class PriceProbe:
    """One app's probe: armed before a run over ``rows`` rows, read after it."""

    def __init__(self) -> None:
        self.active = False
        self._limit_before = 0
        self._balance_after: float | None = None

    def arm(self, limit: Any, rows: int) -> None:
        """Limit the next run to ``rows`` rows (``limit`` is the app's row-limit widget)."""
        if rows < 1:
            raise ValueError(f"rows must be >= 1, got {rows}")
        self._limit_before, limit.value = limit.value, rows
        self._balance_after = None
        self.active = True

    def disarm(self, limit: Any) -> None:
        """Give the user's row limit back."""
        self.active = False
        limit.value = self._limit_before

    async def read_balance(self, client: Any) -> None:
        """Right after the run, while its client is open: the balance the jobs left."""
        if not self.active:
            return
        try:
            self._balance_after = float(await client.credit_info())
        except Exception:  # noqa: BLE001 - no balance, no probe price; the run itself is fine
            self._balance_after = None

    def price(self, result: Any) -> tuple[float | None, str]:
        """Credits per created job (None when it cannot tell), and a line for the history."""
        before, after = result.summary.get("balance_before"), self._balance_after
        created = int((result.results["paid_in"] == "this run").sum()) if "paid_in" in result.results else 0
        if before is None or after is None or not created:
            return None, "Price probe: the account's balance could not be read, or no job was created"
        spent = float(before) - float(after)
        price = round(spent / created, 6)
        return price, f"Price probe: {created} job(s) cost {spent:g} credits: {price:g} per row"
