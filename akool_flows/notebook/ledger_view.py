"""What the ledger already knows, read in one place through `Ledger`'s public API.

The apps read the ledger for three things: which of the planned rows a Run would take over
instead of paying for (the estimate's "already known" note and its "already paid" figure), the
rows of a running batch (the live table), and the credits finished jobs of a kind reported (a
price for kinds the docs publish none for). All three go through `LedgerView`, so the rule for
"known" is written once, and it is the engine's: `akool_flows.batch.reconcile` takes over this
batch's rows that are not ``pending`` and adopts the identical request of another batch run
against the same API when that copy is submitted, timed out, completed or uncertain.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Known", "LedgerView", "default_ledger"]

#: Another batch's copy of the identical request that a Run adopts (see batch.reconcile).
_ADOPTED_STATES = ("submitted", "timed_out", "completed", "uncertain")
#: A dead run's intent is reported as uncertain by the next run (batch.ledger.mark_stale_intents).
_AS_REPORTED = {"intent": "uncertain"}


@dataclass(frozen=True)
class Known:
    """The planned rows the ledger already holds: ``states`` counts them per ledger state;
    ``paid`` is what they cost (Akool's figure, else the plan's estimate) for rows that have a job
    (a rerun does not pay for them again); ``keys`` are their row keys."""

    states: Mapping[str, int] = field(default_factory=dict)
    paid: float = 0.0
    keys: frozenset[str] = frozenset()

    @property
    def count(self) -> int:
        return sum(self.states.values())

    def __bool__(self) -> bool:
        return bool(self.states)


def default_ledger(connection: Any) -> str:
    """Where an app records its rows when the user names no ledger."""
    server = connection.sandbox_server
    if server is not None:
        # The in-process sandbox forgets its jobs when the kernel stops; a ledger shared with
        # a later kernel (a different sandbox) would poll ids that no longer exist. So each
        # sandbox instance gets its own ledger (ports are reused; process and client id not).
        tag = hashlib.sha256(f"{os.getpid()}:{server.port}:{server.client_id}".encode()).hexdigest()[:12]
        return str(Path(tempfile.gettempdir()) / f"akool-sandbox-ledger-{tag}.sqlite")
    from akool_flows.batch import DEFAULT_LEDGER

    return DEFAULT_LEDGER


def _open(path: Any) -> Any:
    from akool_flows.batch import Ledger

    return Ledger(path, create=False)


class LedgerView:
    """A read-only view of the app's ledger (a path or a `Ledger`), shared by estimate and live table.

    ``endpoint`` is the API base URL the app sends to: like the engine, only batches run against
    it count (job ids of one API mean nothing to another).
    """

    def __init__(self, ledger: Any, endpoint: str | None = None) -> None:
        self.ledger = ledger
        self.endpoint = endpoint
        self._reader: Any = None
        self._lock = threading.Lock()

    def _owned(self) -> bool:
        from akool_flows.batch import Ledger

        return not isinstance(self.ledger, Ledger)

    def exists(self) -> bool:
        return not self._owned() or Path(str(self.ledger)).exists()

    def _connection(self) -> Any:
        """The ledger to read: the user's `Ledger`, else one reader opened when the file exists."""
        if not self._owned():
            return self.ledger
        with self._lock:
            if self._reader is None or not self._reader.exists:
                if not Path(str(self.ledger)).exists():
                    return None
                self._reader = _open(self.ledger)
            return self._reader

    def close(self) -> None:
        with self._lock:
            reader, self._reader = self._reader, None
        if reader is not None:
            reader.close()

    # --- the three questions ------------------------------------------------------------------

    def rows(self, batch_id: str) -> dict[str, Any]:
        """The ledger's rows of a batch (``{row_key: LedgerRow}``; empty when there is no ledger)."""
        led = self._connection()
        return led.rows(batch_id) if led is not None else {}

    def observed_price(self, kind: str) -> tuple[float | None, int]:
        """Mean credits finished jobs of `kind` reported in this ledger, and how many."""
        led = self._connection()
        return led.observed_credits(kind) if led is not None else (None, 0)

    def known(self, plan: Any, batch_id: str) -> Known:
        """Which valid rows of `plan` a Run of `batch_id` would take over from the ledger."""
        led = self._connection()
        if led is None:
            return Known()
        keys = [k for k, ok in zip(plan.keys, plan.valid) if ok]
        here = led.rows(batch_id)
        found: dict[str, Any] = {}
        fresh: list[str] = []
        for key in keys:
            row = here.get(key)
            if row is not None and row.state != "pending":
                found[key] = row
            else:
                fresh.append(key)
        if fresh:
            for key, (_batch, row) in led.find_elsewhere(plan.kind.name, fresh, batch_id, endpoint=self.endpoint,
                                                         states=_ADOPTED_STATES).items():
                found[key] = row
        return _summarise(found, _estimates(plan))


def _estimates(plan: Any) -> dict[str, float]:
    return {k: float(e) for k, e, ok in zip(plan.keys, plan.est, plan.valid) if ok and e is not None}


def _summarise(found: Mapping[str, Any], estimates: Mapping[str, float]) -> Known:
    states: dict[str, int] = {}
    paid = 0.0
    for key, row in found.items():
        state = _AS_REPORTED.get(row.state, row.state)
        states[state] = states.get(state, 0) + 1
        if row.job_id:
            credits = row.credits
            if credits is None or (isinstance(credits, float) and math.isnan(credits)):
                credits = 0.0 if row.state == "failed" else estimates.get(key, 0.0)
            paid += float(credits)
    return Known(states=dict(sorted(states.items())), paid=round(paid, 6), keys=frozenset(found))

