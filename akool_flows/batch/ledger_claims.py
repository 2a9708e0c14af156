"""The ledger's fencing: one live run per batch (a lease with a generation), and `claim`, the
one transaction that decides whether a row's create may be sent now - or whether another batch
of the same ledger already holds (or is sending) the identical request, to adopt instead.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass

from akool_flows.batch.errors import BatchLockedError, LeaseLostError, LedgerError
from akool_flows.batch.ledger_file import COLUMNS, LedgerFile, LedgerRow

__all__ = ["LedgerClaims", "Claim", "SHARED_STATES"]

#: States in which a row of another batch holds (or may hold) a job for the identical request.
SHARED_STATES = ("submitted", "timed_out", "completed", "intent", "uncertain")
#: Which copy of an identical request to adopt when several batches hold one: the most advanced.
_RANK = {"completed": 0, "submitted": 1, "timed_out": 2, "uncertain": 3, "intent": 4}


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to "may I send this row's create now?" (`Ledger.claim`).

    ``granted``: the intent is recorded, send it. Otherwise either ``source`` is another batch's
    copy of the identical request, already adopted into this row (no create needed), or ``wait``
    is set: another live run is sending the identical request right now, ask again shortly.
    """

    granted: bool
    source_batch: str | None = None
    source: LedgerRow | None = None
    wait: bool = False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LedgerClaims(LedgerFile):
    """The lease and claim protocol over a `LedgerFile` (`Ledger` is the class to use)."""

    # --- lease: one live runner per batch --------------------------------------------------------

    def acquire(self, batch_id: str, ttl: float = 60.0) -> int:
        """Take the batch's lease and return its generation, or raise `BatchLockedError` if
        another live process holds it.

        A lease whose holder died on this host (pid gone) is taken over at once; one held from
        another host (or by a process that is alive but paused) is honoured until it expires
        (``ttl`` seconds after its last renewal). Each take bumps the generation: a holder that
        was paused past its lease finds out at its next `claim` (fencing) instead of sending.
        """
        host, now = socket.gethostname(), time.time()
        with self._lock, self._transaction() as conn:
            row = conn.execute("SELECT lease_owner, lease_host, lease_pid, lease_until FROM batches "
                               "WHERE batch_id=?", (batch_id,)).fetchone()
            if row and row[0] and row[0] != self.owner and (row[3] or 0) > now:
                holder_dead = row[1] == host and row[2] is not None and not _pid_alive(row[2])
                if not holder_dead:
                    raise BatchLockedError(
                        f"another run holds batch {batch_id!r}: process {row[2]} on {row[1]} (ledger "
                        f"{self.path}); wait for it to finish, or for its lease to expire in "
                        f"{row[3] - now:.0f}s if it died")
            conn.execute("UPDATE batches SET lease_owner=?, lease_host=?, lease_pid=?, lease_until=?, "
                         "lease_gen=lease_gen+1 WHERE batch_id=?", (self.owner, host, os.getpid(), now + ttl, batch_id))
            gen = conn.execute("SELECT lease_gen FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        if gen is None:
            raise LedgerError(f"batch {batch_id!r} is not in {self.path}; call begin_batch first")
        return int(gen[0])

    def renew(self, batch_id: str, generation: int, ttl: float = 60.0) -> None:
        """Extend the lease; raise `LeaseLostError` if another run has taken it meanwhile."""
        now = time.time()
        cur = self._exec("UPDATE batches SET lease_until=?, updated_at=? WHERE batch_id=? AND lease_owner=? "
                         "AND lease_gen=?", (now + ttl, now, batch_id, self.owner, generation))
        if cur.rowcount == 0:
            raise self._lost(batch_id)

    def release(self, batch_id: str, generation: int | None = None) -> None:
        gen_rule = "" if generation is None else " AND lease_gen=?"
        self._exec("UPDATE batches SET lease_owner=NULL, lease_until=NULL, updated_at=? WHERE batch_id=? "
                   f"AND lease_owner=?{gen_rule}",
                   (time.time(), batch_id, self.owner, *(() if generation is None else (generation,))))

    def _check_lease(self, conn: sqlite3.Connection, batch_id: str, generation: int) -> None:
        row = conn.execute("SELECT lease_owner, lease_gen FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
        if row is None or row[0] != self.owner or row[1] != generation:
            raise self._lost(batch_id)

    def _lost(self, batch_id: str) -> LeaseLostError:
        return LeaseLostError(f"another run took over batch {batch_id!r} (ledger {self.path}) while this one "
                              "was paused or slow; this run stops submitting and leaves the batch to it")

    # --- claims: send, wait, or adopt another batch's copy ----------------------------------------

    def claim(self, batch_id: str, row_key: str, *, generation: int, at: float, share: bool = True,
              share_uncertain: bool = True) -> Claim:
        """Record the intent to send this row's create - if this run still holds the batch and
        no other batch of this ledger holds (or is sending) the identical request.

        One transaction, so two runs on one ledger cannot both decide to send the same request:
        the lease check fences a run that lost its lease while paused, and the look at other
        batches sees their intents, not only their finished sends. With ``share`` False the row is
        sent whatever other batches did (the user asked to pay again). ``share_uncertain`` False
        ignores other batches' uncertain copies (the user asked to resubmit uncertain rows).
        """
        with self._lock, self._transaction() as conn:
            self._check_lease(conn, batch_id, generation)
            if share:
                found = self._other_copy(conn, batch_id, row_key, share_uncertain)
                if found is not None:
                    other, row, live = found
                    if row.state == "intent" and live:
                        return Claim(granted=False, source_batch=other, source=row, wait=True)
                    self._copy_into(conn, batch_id, row_key, row, other)
                    return Claim(granted=False, source_batch=other, source=row)
            conn.execute("UPDATE jobs SET state='intent', attempts=attempts+1, attempt_at=?, sent_at=NULL, "
                         "error_code=NULL, error_message=NULL, note=NULL WHERE batch_id=? AND row_key=?",
                         (at, batch_id, row_key))
        return Claim(granted=True)

    def _other_copy(self, conn: sqlite3.Connection, batch_id: str, row_key: str,
                    share_uncertain: bool) -> tuple[str, LedgerRow, bool] | None:
        states = [s for s in SHARED_STATES if share_uncertain or s != "uncertain"]
        cur = conn.execute(
            f"SELECT j.batch_id, b.lease_owner IS NOT NULL AND b.lease_until > ? AS live, "
            f"{', '.join('j.' + c for c in COLUMNS)} FROM jobs j JOIN batches b ON b.batch_id = j.batch_id "
            f"JOIN batches mine ON mine.batch_id = ? "
            f"WHERE j.kind = (SELECT kind FROM batches WHERE batch_id = ?) AND j.row_key = ? AND j.batch_id <> ? "
            f"AND j.state IN ({','.join('?' * len(states))}) "
            # A dead run's intent that never left cannot have created anything: not a copy.
            f"AND NOT (j.state = 'intent' AND j.sent_at IS NULL AND NOT live) "
            f"AND (mine.endpoint IS NULL OR b.endpoint IS NULL OR b.endpoint = mine.endpoint)",
            (time.time(), batch_id, batch_id, row_key, batch_id, *states))
        best: tuple[str, LedgerRow, bool] | None = None
        for other, live, *cols in cur.fetchall():
            row = LedgerRow(*cols)
            if best is None or _RANK[row.state] < _RANK[best[1].state]:
                best = (other, row, bool(live))
        return best

    def _copy_into(self, conn: sqlite3.Connection, batch_id: str, row_key: str, source: LedgerRow,
                   source_batch: str) -> None:
        # A dead run's intent is an uncertain create: adopt it as such, never as "not sent".
        conn.execute("UPDATE jobs SET state=?, job_id=?, task_id=?, attempts=?, attempt_at=?, submitted_at=?, "
                     "finished_at=?, status_code=?, credits=?, error_code=?, error_message=?, result=?, "
                     "artifacts=?, note=? WHERE batch_id=? AND row_key=?",
                     ("uncertain" if source.state == "intent" else source.state, source.job_id, source.task_id,
                      source.attempts, source.attempt_at, source.submitted_at, source.finished_at,
                      source.status_code, source.credits, source.error_code, source.error_message,
                      source.result, source.artifacts, f"same request as batch {source_batch}", batch_id, row_key))
    def adopt(self, batch_id: str, row_key: str, source: LedgerRow, source_batch: str) -> None:
        """Copy another batch's record of the identical request into this batch (no new create)."""
        with self._lock, self._transaction() as conn:
            self._copy_into(conn, batch_id, row_key, source, source_batch)

    def find_elsewhere(self, kind: str, row_keys: Sequence[str], exclude_batch: str, endpoint: str | None = None,
                       states: Sequence[str] = SHARED_STATES,
                       ) -> dict[str, tuple[str, LedgerRow]]:
        """Rows of *other* batches holding the identical request, most advanced first; with
        ``endpoint``, only batches run against that API base URL."""
        rank = _RANK
        out: dict[str, tuple[str, LedgerRow]] = {}
        marks = ",".join("?" * len(states))
        for i in range(0, len(row_keys), 500):
            chunk = list(row_keys[i:i + 500])
            same_api = "" if endpoint is None else "AND batch_id IN (SELECT batch_id FROM batches WHERE endpoint=?)"
            cur = self._exec(f"SELECT batch_id, {', '.join(COLUMNS)} FROM jobs WHERE kind=? AND batch_id<>? "
                             f"AND state IN ({marks}) AND row_key IN ({','.join('?' * len(chunk))}) {same_api}",
                             (kind, exclude_batch, *states, *chunk, *([endpoint] if endpoint else [])))
            for batch_id, *cols in cur.fetchall():
                row = LedgerRow(*cols)
                held = out.get(row.row_key)
                if held is None or rank[row.state] < rank[held[1].state]:
                    out[row.row_key] = (batch_id, row)
        return out
