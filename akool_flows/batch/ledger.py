"""The ledger: a SQLite file that remembers, per (batch id, row key), what was sent and what came back.

Why it exists: Akool has no idempotency key, so the only defence against paying twice is to
write down *before* each create call that it is about to happen (state ``intent``) and *right
after* what it returned (``submitted`` + the ``_id``). A rerun after a crash, a Ctrl-C or an
Airflow retry then knows, for every row:

=============  ==================================================================================
``pending``    never sent, or proven not created (refused with a business code, connection never
               opened, stopped by budget/cancel) - a rerun submits it
``intent``     a create call was about to be sent or in flight when the process died - if it
               was handed to the transport (``sent_at``) its job may exist and a rerun reports
               it as ``uncertain``; if not, the rerun submits it
``uncertain``  the create call failed in a way that does not tell (timeout, 5xx, dropped
               connection, unreadable answer) - reported, resubmitted only when asked
``submitted``  has an ``_id`` - a rerun polls it (polling is free)
``timed_out``  has an ``_id``, the run stopped waiting - a rerun polls it again
``completed``  status 3 - never touched again
``failed``     status 4, or the create was refused for good - never touched again
=============  ==================================================================================

The file and its connection are `batch.ledger_file`; the lease and `claim` (fencing, and
adopting another batch's copy of an identical request) are `batch.ledger_claims`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

from akool_flows.batch.errors import LedgerError
from akool_flows.batch.ledger_claims import Claim, LedgerClaims
from akool_flows.batch.ledger_file import COLUMNS, FINAL_STATES, LEDGER_STATES, LedgerRow

__all__ = ["Ledger", "LedgerRow", "Claim", "LEDGER_STATES", "FINAL_STATES"]


class Ledger(LedgerClaims):
    """A batch ledger in one SQLite file (safe to share between threads of one process).

    ``Ledger("akool-ledger.sqlite")`` creates the file if needed. Several batches (and kinds)
    can share one file; rows are keyed by ``(batch_id, row_key)``.
    """

    # --- batches -----------------------------------------------------------------------------

    def begin_batch(self, batch_id: str, kind: str, rows: Sequence[tuple[str, int]],
                    meta: dict[str, Any] | None = None, endpoint: str | None = None) -> None:
        """Create the batch (or check it is the same kind and API) and add new rows as ``pending``.

        ``endpoint`` is the API base URL: job ids of one API (the sandbox) mean nothing to another.
        """
        now = time.time()
        with self._lock:
            found = self._exec("SELECT kind, endpoint FROM batches WHERE batch_id=?", (batch_id,)).fetchone()
            if found and found[0] != kind:
                raise LedgerError(f"batch {batch_id!r} in {self.path} is a {found[0]} batch, not {kind}; "
                                  "use another batch_id or ledger")
            if found and endpoint and found[1] and found[1] != endpoint:
                raise LedgerError(f"batch {batch_id!r} in {self.path} ran against {found[1]}, not {endpoint}; "
                                  "its job ids mean nothing there - use another batch_id or ledger")
            if not found:
                # OR IGNORE: another run may have created it since the SELECT (same content).
                self._exec("INSERT OR IGNORE INTO batches (batch_id, kind, endpoint, created_at, updated_at, "
                           "total_rows, meta) VALUES (?,?,?,?,?,?,?)",
                           (batch_id, kind, endpoint, now, now, len(rows), json.dumps(meta or {})))
            else:
                self._exec("UPDATE batches SET updated_at=?, total_rows=? WHERE batch_id=?",
                           (now, len(rows), batch_id))
            self._many("INSERT INTO jobs (batch_id, row_key, kind, position, state) VALUES (?,?,?,?,'pending') "
                       "ON CONFLICT(batch_id, row_key) DO UPDATE SET position=excluded.position",
                       ((batch_id, key, kind, pos) for key, pos in rows))

    def batches(self) -> list[dict[str, Any]]:
        """Every batch in the ledger with its row counts per state."""
        out = []
        for batch_id, kind, created, updated, total in self._exec(
                "SELECT batch_id, kind, created_at, updated_at, total_rows FROM batches ORDER BY created_at"):
            counts = dict(self._exec("SELECT state, COUNT(*) FROM jobs WHERE batch_id=? GROUP BY state",
                                     (batch_id,)).fetchall())
            out.append({"batch_id": batch_id, "kind": kind, "created_at": created, "updated_at": updated,
                        "rows": total, "states": counts})
        return out

    def rows(self, batch_id: str) -> dict[str, LedgerRow]:
        cur = self._exec(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE batch_id=?", (batch_id,))
        return {r[0]: LedgerRow(*r) for r in cur.fetchall()}

    def row(self, batch_id: str, row_key: str) -> LedgerRow | None:
        """One row (the primary key lookup; `rows` reads the whole batch)."""
        found = self._exec(f"SELECT {', '.join(COLUMNS)} FROM jobs WHERE batch_id=? AND row_key=?",
                           (batch_id, row_key)).fetchone()
        return LedgerRow(*found) if found else None

    def batches_holding(self, kind: str, row_key: str, job_id: str) -> set[str]:
        """Every batch whose row of this request carries this job (its creator and adopters)."""
        cur = self._exec("SELECT batch_id FROM jobs WHERE kind=? AND row_key=? AND job_id=?", (kind, row_key, job_id))
        return {r[0] for r in cur.fetchall()}

    # --- row transitions (one autocommit each: durable before the next network call) -------------

    def mark_intent(self, batch_id: str, row_key: str, at: float) -> None:
        """Record that a create call for this row is about to be sent (no lease check: tests and
        tools; the engine uses `claim`)."""
        self._exec("UPDATE jobs SET state='intent', attempts=attempts+1, attempt_at=?, sent_at=NULL, "
                   "error_code=NULL, error_message=NULL, note=NULL WHERE batch_id=? AND row_key=?", (at, batch_id, row_key))

    def mark_submitted(self, batch_id: str, row_key: str, job_id: str, task_id: str | None, at: float,
                       note: str | None = None) -> None:
        """Record the job id a create call returned."""
        self._exec("UPDATE jobs SET state='submitted', job_id=?, task_id=?, submitted_at=?, note=? "
                   "WHERE batch_id=? AND row_key=?", (job_id, task_id, at, note, batch_id, row_key))

    def resolve_intent(self, batch_id: str, row_key: str, job_id: str, at: float | None = None) -> bool:
        """An uncertain (or stale intent) row's job became known - its callback to the create's
        own path named it: attach it as submitted. True if the row was uncertain."""
        cur = self._exec("UPDATE jobs SET state='submitted', job_id=?, submitted_at=?, error_code=NULL, "
                         "error_message=NULL, note=? WHERE batch_id=? AND row_key=? AND state IN "
                         "('uncertain', 'intent')", (job_id, at if at is not None else time.time(),
                                                     "job named by its webhook after the create's answer was lost",
                                                     batch_id, row_key))
        return cur.rowcount > 0

    def mark_uncertain(self, batch_id: str, row_key: str, error_code: int | None, message: str) -> None:
        self._exec("UPDATE jobs SET state='uncertain', error_code=?, error_message=? WHERE batch_id=? AND "
                   "row_key=?", (error_code, message, batch_id, row_key))

    def mark_pending(self, batch_id: str, row_key: str, error_code: int | None = None,
                     message: str | None = None) -> None:
        """Back to not-sent: the create was proven not to create anything (or never happened)."""
        self._exec("UPDATE jobs SET state='pending', error_code=?, error_message=? WHERE batch_id=? AND "
                   "row_key=?", (error_code, message, batch_id, row_key))

    def mark_sent(self, batch_id: str, row_key: str, at: float, generation: int | None = None) -> None:
        """The intent's create request is being handed to the transport: from now on it may exist.

        With ``generation`` the mark is fenced like `claim`: a run paused past its lease (whose
        unsent intents the new holder resubmits) gets `LeaseLostError` and must not send."""
        mark = "UPDATE jobs SET sent_at=? WHERE batch_id=? AND row_key=? AND state='intent'"
        args = (at, batch_id, row_key)
        if generation is None:
            self._exec(mark, args)
            return
        with self._lock, self._transaction() as conn:
            self._check_lease(conn, batch_id, generation)
            if not conn.execute(mark, args).rowcount:
                raise self._lost(batch_id)  # no longer this run's intent

    def mark_stale_intents(self, batch_id: str) -> tuple[int, int]:
        """Intents left by a dead run: never sent ones go back to ``pending`` (nothing can exist),
        sent ones become ``uncertain``. Returns (resubmittable, uncertain)."""
        with self._lock, self._transaction() as conn:
            unsent = conn.execute("UPDATE jobs SET state='pending', note=? WHERE batch_id=? AND state='intent' "
                                  "AND sent_at IS NULL",
                                  ("the run stopped before this row's create was sent", batch_id)).rowcount
            sent = conn.execute("UPDATE jobs SET state='uncertain', error_message=? WHERE batch_id=? AND "
                                "state='intent'", ("the run was interrupted while this row's create call was in "
                                                   "flight", batch_id)).rowcount
        return unsent, sent

    def finish_many(self, batch_id: str, items: Iterable[tuple[Any, ...]]) -> None:
        """Record outcomes: ``(row_key, state, finished_at, status_code, credits, error_code,
        error_message, result_json)`` each, in one transaction.

        A final state (completed / failed) is never replaced by ``timed_out``: a run that stopped
        waiting must not undo what another run (or an earlier poll) learnt."""
        self._many("UPDATE jobs SET state=?, finished_at=?, status_code=?, credits=?, error_code=?, "
                   "error_message=?, result=? WHERE batch_id=? AND row_key=? "
                   "AND (? <> 'timed_out' OR state NOT IN ('completed', 'failed'))",
                   ((state, at, code, credits, ecode, emsg, result, batch_id, key, state)
                    for key, state, at, code, credits, ecode, emsg, result in items))

    def set_artifacts(self, batch_id: str, row_key: str, artifacts: list[dict[str, Any]]) -> None:
        self._exec("UPDATE jobs SET artifacts=? WHERE batch_id=? AND row_key=?",
                   (json.dumps(artifacts), batch_id, row_key))

    # --- staged input files (batch.staging) ------------------------------------------------------

    def staged_file(self, source: str, target: str) -> dict[str, Any] | None:
        """What the ledger knows of ``source`` staged under ``target``: its fingerprint (sha256,
        size, mtime), ``staged_uri``, ``signed_url`` and ``expires_at``; None if never staged."""
        cur = self._exec("SELECT source, target, sha256, size, mtime, staged_uri, signed_url, expires_at, staged_at "
                         "FROM staged_files WHERE source=? AND target=?", (source, target))
        row = cur.fetchone()
        return None if row is None else dict(zip([c[0] for c in cur.description], row))

    def record_staged(self, source: str, target: str, *, sha256: str, size: int, mtime: str | None,
                      staged_uri: str, signed_url: str, expires_at: float) -> None:
        """Remember that ``source`` (as fingerprinted) is at ``staged_uri``, readable by ``signed_url``."""
        self._exec("INSERT OR REPLACE INTO staged_files VALUES (?,?,?,?,?,?,?,?,?)",
                   (source, target, sha256, size, mtime, staged_uri, signed_url, expires_at, time.time()))

    # --- queries ------------------------------------------------------------------------------

    def observed_credits(self, kind: str) -> tuple[float | None, int]:
        """Mean credits reported by completed jobs of ``kind`` in this ledger, and how many."""
        mean, n = self._exec("SELECT AVG(credits), COUNT(credits) FROM jobs WHERE kind=? AND state='completed' "
                             "AND credits IS NOT NULL", (kind,)).fetchone()
        return (float(mean) if mean is not None else None), int(n)

