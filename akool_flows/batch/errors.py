"""Exceptions of the batch engine (all are `AkoolError`s, so one `except` catches the API's too)."""

from __future__ import annotations

from akool_flows.api.errors import AkoolError, ValidationError


class BatchInputError(ValidationError):
    """The input as a whole cannot be planned (empty table, missing column, bad option).

    Per-row problems are not exceptions: those rows are *rejected* with a message instead.
    """


class BudgetError(ValidationError):
    """A budget was given but the batch's cost cannot be bounded (rows of unknown price)."""

    @classmethod
    def unpriced(cls, limit: float, rows: int, kind: str) -> BudgetError:
        return cls(f"budget_credits={limit} cannot be enforced: {rows} row(s) have no price known "
                   f"before Akool runs them ({kind}); pass max_credits_per_row (--max-credits-per-row) "
                   f"as a ceiling per such row, cost_table={{'{kind}': <credits per job>}}, or run "
                   "without a budget", field="budget_credits")


class LedgerError(AkoolError):
    """The ledger cannot be used: unreadable, another kind's batch under this id, or locked."""


class BatchLockedError(LedgerError):
    """Another live process is running this batch from the same ledger."""


class LedgerWriteError(LedgerError):
    """The ledger could not record a step (disk full, I/O error, read-only file).

    A run that meets it stops sending creates at once: a create whose intent or id cannot be
    written down is one a rerun might pay for again."""


class LeaseLostError(LedgerError):
    """Another run took this batch's lease (this one was paused or slow past it): stop sending."""


class RunAborted(LedgerError):
    """A run stopped early because a part of it failed (ledger, results file, webhook store)."""
