"""Webhook completion for the engine: register submitted ids with the event store (its receiver
accepts events only for ids it knows) and look up terminal events of running jobs in batches.

A store failure is not swallowed: registering is what makes a job's webhook acceptable, so a
failed registration stops the run (`RunAborted` upstream) rather than leaving jobs unheard.
A failed *lookup* is only a delay (polling covers it) and is logged.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from akool_flows.api.jobs import JobStatus
from akool_flows.api.kinds import JobKind

__all__ = ["EventFeed", "register_ids"]

log = logging.getLogger("akool_flows.batch")


def register_ids(store: Any, ids: list[str], kind: str) -> None:
    many = getattr(store, "register_submitted_many", None)
    if many is not None:
        many(ids, kind=kind)
    else:
        for job_id in ids:
            store.register_submitted(job_id, kind)


class EventFeed:
    def __init__(self, store: Any, kind: JobKind, *, registers: bool) -> None:
        self.store = store
        self.kind = kind
        #: False when the client registers ids itself (it was given the same store).
        self.registers = registers
        self.pending: list[str] = []

    def submitted(self, job_id: str) -> None:
        if self.registers:
            self.pending.append(job_id)

    async def register_pending(self) -> None:
        if self.pending:
            ids, self.pending = self.pending, []
            try:
                await asyncio.to_thread(register_ids, self.store, ids, self.kind.name)
            except BaseException:
                self.pending = ids + self.pending  # kept: the caller reports them
                raise

    async def terminal(self, ids: list[str]) -> dict[str, JobStatus | None]:
        """Terminal statuses from events, by job id; None marks an event that says the job ended
        but lacks its result (one status call fetches it)."""
        store = self.store
        try:
            found = await asyncio.to_thread(store.latest_many, ids, terminal_only=True)
        except TypeError:  # a store without terminal_only
            found = await asyncio.to_thread(store.latest_many, ids)
        except Exception:  # noqa: BLE001 - a lookup hiccup only delays: polling covers it
            log.warning("webhook store lookup failed; polling continues", exc_info=True)
            return {}
        out: dict[str, JobStatus | None] = {}
        for job_id, event in found.items():
            st = JobStatus.from_event(self.kind.name, event)
            if st is None:
                continue
            out[job_id] = None if self._incomplete(st) else st
        return out

    def _incomplete(self, st: JobStatus) -> bool:
        # The registry says what a webhook cannot carry (verdict, credits, a failure's reason).
        return bool(self.kind.missing_after_event(st))
