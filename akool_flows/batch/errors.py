"""Exceptions of the batch engine (all are `AkoolError`s, so one `except` catches the API's too)."""

from __future__ import annotations

from akool_flows.api.errors import AkoolError, ValidationError


class BatchInputError(ValidationError):
    """The input as a whole cannot be planned (empty table, missing column, bad option).

    Per-row problems are not exceptions: those rows are *rejected* with a message instead.
    """


class BudgetError(ValidationError):
    """A budget was given but the batch's cost cannot be bounded (rows of unknown price)."""


class LedgerError(AkoolError):
    """The ledger cannot be used: unreadable, another kind's batch under this id, or locked."""


class BatchLockedError(LedgerError):
    """Another live process is running this batch from the same ledger."""
