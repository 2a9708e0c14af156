"""The ledger: a SQLite file that remembers, per (batch id, row key), what was sent and what came back.

Why it exists: Akool has no idempotency key, so the only defence against paying twice is to
write down *before* each create call that it is about to happen (state ``intent``) and *right
after* what it returned (``submitted`` + the ``_id``). A rerun after a crash, a Ctrl-C or an
Airflow retry then knows, for every row:

=============  ==================================================================================
``pending``    never sent, or proven not created (refused with a business code, connection never
               opened, stopped by budget/cancel) - a rerun submits it
``intent``     a create call was in flight when the process died - its job may exist; a rerun
               reports it as ``uncertain``
``uncertain``  the create call failed in a way that does not tell (timeout, 5xx, dropped
               connection, unreadable answer) - reported, resubmitted only when asked
``submitted``  has an ``_id`` - a rerun polls it (polling is free)
``timed_out``  has an ``_id``, the run stopped waiting - a rerun polls it again
``completed``  status 3 - never touched again
``failed``     status 4, or the create was refused for good - never touched again
=============  ==================================================================================

Writes are single-row autocommits in WAL mode with ``synchronous=NORMAL``: each survives a
killed process as soon as the call returns (about 15 µs), which is what the crash test needs.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from akool_flows.batch.errors import BatchLockedError, LeaseLostError, LedgerError, LedgerWriteError

__all__ = ["Ledger", "LedgerRow", "Claim", "LEDGER_STATES", "FINAL_STATES"]

LEDGER_STATES = ("pending", "intent", "uncertain", "submitted", "timed_out", "completed", "failed")
FINAL_STATES = frozenset({"completed", "failed"})
#: States in which a row of another batch holds (or may hold) a job for the identical request.
SHARED_STATES = ("submitted", "timed_out", "completed", "intent", "uncertain")
#: Which copy of an identical request to adopt when several batches hold one: the most advanced.
_RANK = {"completed": 0, "submitted": 1, "timed_out": 2, "uncertain": 3, "intent": 4}
SCHEMA_VERSION = "2"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    batch_id    TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    endpoint    TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    total_rows  INTEGER NOT NULL DEFAULT 0,
    meta        TEXT,
    lease_owner TEXT,
    lease_host  TEXT,
    lease_pid   INTEGER,
    lease_until REAL,
    lease_gen   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS jobs (
    batch_id      TEXT NOT NULL,
    row_key       TEXT NOT NULL,
    kind          TEXT NOT NULL,
    position      INTEGER,
    state         TEXT NOT NULL,
    job_id        TEXT,
    task_id       TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0,
    attempt_at    REAL,
    submitted_at  REAL,
    finished_at   REAL,
    status_code   INTEGER,
    credits       REAL,
    error_code    INTEGER,
    error_message TEXT,
    result        TEXT,
    artifacts     TEXT,
    note          TEXT,
    PRIMARY KEY (batch_id, row_key)
);
CREATE INDEX IF NOT EXISTS jobs_kind_key ON jobs (kind, row_key);
CREATE TABLE IF NOT EXISTS staged_files (
    source      TEXT NOT NULL,
    target      TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime       TEXT,
    staged_uri  TEXT NOT NULL,
    signed_url  TEXT NOT NULL,
    expires_at  REAL NOT NULL,
    staged_at   REAL NOT NULL,
    PRIMARY KEY (source, target)
);
"""

_COLUMNS = ("row_key", "position", "state", "job_id", "task_id", "attempts", "attempt_at", "submitted_at",
            "finished_at", "status_code", "credits", "error_code", "error_message", "result", "artifacts", "note")


@dataclass(slots=True)
class LedgerRow:
    """One row of a batch as the ledger knows it."""

    row_key: str
    position: int | None
    state: str
    job_id: str | None
    task_id: str | None
    attempts: int
    attempt_at: float | None
    submitted_at: float | None
    finished_at: float | None
    status_code: int | None
    credits: float | None
    error_code: int | None
    error_message: str | None
    result: str | None
    artifacts: str | None
    note: str | None

    @property
    def result_data(self) -> dict[str, Any]:
        return json.loads(self.result) if self.result else {}

    @property
    def artifact_data(self) -> list[dict[str, Any]]:
        return json.loads(self.artifacts) if self.artifacts else []


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


class Ledger:
    """A batch ledger in one SQLite file (safe to share between threads of one process).

    ``Ledger("akool-ledger.sqlite")`` creates the file if needed. Several batches (and kinds)
    can share one file; rows are keyed by ``(batch_id, row_key)``.
    """

    def __init__(self, path: str | os.PathLike[str] = "akool-ledger.sqlite", *, create: bool = True) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        if not create and not self.path.exists():
            return
        if self.path.parent and not self.path.parent.exists():
            if not create:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=30000")
            # One writer at a time sets up or migrates the file: three runs starting at once on a
            # new ledger must not race each other's CREATE/INSERT.
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.execute("SELECT 1")
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    conn.execute(statement)
                version = conn.execute("SELECT value FROM ledger_meta WHERE key='schema'").fetchone()
                if version is None:
                    conn.execute("INSERT OR IGNORE INTO ledger_meta VALUES ('schema', ?)", (SCHEMA_VERSION,))
                elif version[0] == "1":
                    conn.execute("ALTER TABLE batches ADD COLUMN lease_gen INTEGER NOT NULL DEFAULT 0")
                    conn.execute("UPDATE ledger_meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))
                elif version[0] != SCHEMA_VERSION:
                    raise LedgerError(f"ledger {self.path} has schema {version[0]}, this version reads "
                                      f"{SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"cannot use {self.path} as a ledger: {exc}") from None
        self._conn = conn

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self._conn is not None

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"ledger {self.path} does not exist")
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    def _exec(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self.conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                raise self._write_error(exc) from None

    def _many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock, self._transaction() as conn:
            conn.executemany(sql, rows)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT: the lock is taken up front, so reads inside see what the
        write will be based on (another process cannot slip in between)."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._write_error(exc) from None
        try:
            yield conn
        except BaseException as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise self._write_error(exc) from None
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise self._write_error(exc) from None

    def _write_error(self, exc: sqlite3.OperationalError) -> LedgerWriteError:
        return LedgerWriteError(f"cannot write the ledger {self.path}: {exc}")

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
        cur = self._exec(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE batch_id=?", (batch_id,))
        return {r[0]: LedgerRow(*r) for r in cur.fetchall()}

    def row(self, batch_id: str, row_key: str) -> LedgerRow | None:
        """One row (the primary key lookup; `rows` reads the whole batch)."""
        found = self._exec(f"SELECT {', '.join(_COLUMNS)} FROM jobs WHERE batch_id=? AND row_key=?",
                           (batch_id, row_key)).fetchone()
        return LedgerRow(*found) if found else None

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

    # --- row transitions (one autocommit each: durable before the next network call) -------------

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
            conn.execute("UPDATE jobs SET state='intent', attempts=attempts+1, attempt_at=?, error_code=NULL, "
                         "error_message=NULL, note=NULL WHERE batch_id=? AND row_key=?", (at, batch_id, row_key))
        return Claim(granted=True)

    def _other_copy(self, conn: sqlite3.Connection, batch_id: str, row_key: str,
                    share_uncertain: bool) -> tuple[str, LedgerRow, bool] | None:
        states = [s for s in SHARED_STATES if share_uncertain or s != "uncertain"]
        cur = conn.execute(
            f"SELECT j.batch_id, b.lease_owner IS NOT NULL AND b.lease_until > ?, "
            f"{', '.join('j.' + c for c in _COLUMNS)} FROM jobs j JOIN batches b ON b.batch_id = j.batch_id "
            f"JOIN batches mine ON mine.batch_id = ? "
            f"WHERE j.kind = (SELECT kind FROM batches WHERE batch_id = ?) AND j.row_key = ? AND j.batch_id <> ? "
            f"AND j.state IN ({','.join('?' * len(states))}) "
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

    def mark_intent(self, batch_id: str, row_key: str, at: float) -> None:
        """Record that a create call for this row is about to be sent (no lease check: tests and
        tools; the engine uses `claim`)."""
        self._exec("UPDATE jobs SET state='intent', attempts=attempts+1, attempt_at=?, error_code=NULL, "
                   "error_message=NULL, note=NULL WHERE batch_id=? AND row_key=?", (at, batch_id, row_key))

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

    def mark_stale_intents(self, batch_id: str) -> int:
        """Intents left by a dead run become ``uncertain``; returns how many."""
        cur = self._exec("UPDATE jobs SET state='uncertain', error_message=? WHERE batch_id=? AND state='intent'",
                         ("the run was interrupted while this row's create call was in flight", batch_id))
        return cur.rowcount

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

    def adopt(self, batch_id: str, row_key: str, source: LedgerRow, source_batch: str) -> None:
        """Copy another batch's record of the identical request into this batch (no new create)."""
        with self._lock, self._transaction() as conn:
            self._copy_into(conn, batch_id, row_key, source, source_batch)

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

    def find_elsewhere(self, kind: str, row_keys: Sequence[str], exclude_batch: str, endpoint: str | None = None,
                       states: Sequence[str] = ("submitted", "timed_out", "completed", "intent", "uncertain"),
                       ) -> dict[str, tuple[str, LedgerRow]]:
        """Rows of *other* batches holding the identical request, most advanced first; with
        ``endpoint``, only batches run against that API base URL."""
        rank = _RANK
        out: dict[str, tuple[str, LedgerRow]] = {}
        marks = ",".join("?" * len(states))
        for i in range(0, len(row_keys), 500):
            chunk = list(row_keys[i:i + 500])
            same_api = "" if endpoint is None else "AND batch_id IN (SELECT batch_id FROM batches WHERE endpoint=?)"
            cur = self._exec(f"SELECT batch_id, {', '.join(_COLUMNS)} FROM jobs WHERE kind=? AND batch_id<>? "
                             f"AND state IN ({marks}) AND row_key IN ({','.join('?' * len(chunk))}) {same_api}",
                             (kind, exclude_batch, *states, *chunk, *([endpoint] if endpoint else [])))
            for batch_id, *cols in cur.fetchall():
                row = LedgerRow(*cols)
                held = out.get(row.row_key)
                if held is None or rank[row.state] < rank[held[1].state]:
                    out[row.row_key] = (batch_id, row)
        return out
