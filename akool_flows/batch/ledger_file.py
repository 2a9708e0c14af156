"""The ledger's file: its tables, the row record, and one SQLite connection with the one
transaction discipline every write follows. `batch.ledger` says what the states mean.

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
from typing import Any, TypeVar

from akool_flows.batch.errors import LedgerError, LedgerWriteError

__all__ = ["LedgerFile", "LedgerRow", "LEDGER_STATES", "FINAL_STATES", "COLUMNS"]

LEDGER_STATES = ("pending", "intent", "uncertain", "submitted", "timed_out", "completed", "failed")
FINAL_STATES = frozenset({"completed", "failed"})
SCHEMA_VERSION = "3"
_Self = TypeVar("_Self", bound="LedgerFile")

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
    -- when the intent's create request was handed to the transport (NULL: never sent)
    sent_at       REAL,
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

COLUMNS = ("row_key", "position", "state", "job_id", "task_id", "attempts", "attempt_at", "submitted_at",
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


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a schema 1 or 2 file to the current one, inside the caller's transaction."""
    def columns(table: str) -> set[str]:
        return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}

    if "lease_gen" not in columns("batches"):  # schema 1
        conn.execute("ALTER TABLE batches ADD COLUMN lease_gen INTEGER NOT NULL DEFAULT 0")
    if "sent_at" not in columns("jobs"):  # schema 1 and 2
        conn.execute("ALTER TABLE jobs ADD COLUMN sent_at REAL")
        # Those versions did not record the send: their intents may have been sent.
        conn.execute("UPDATE jobs SET sent_at=COALESCE(attempt_at, 0) WHERE state='intent'")
    conn.execute("UPDATE ledger_meta SET value=? WHERE key='schema'", (SCHEMA_VERSION,))


class LedgerFile:
    """One SQLite ledger file, opened (and created or migrated) once; safe to share between
    threads of one process. `Ledger` adds what the rows mean."""

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
        # Several processes opening a new file at once: SQLite can answer "database is locked"
        # at once, without its busy handler, while another connection switches the file to WAL.
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = self._open()
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise LedgerError(f"cannot use {self.path} as a ledger: {exc}") from None
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                raise LedgerError(f"cannot use {self.path} as a ledger: {exc}") from None
        self._conn = conn

    def _open(self) -> sqlite3.Connection:
        """Connect, switch to WAL, and create or migrate the tables (one writer at a time)."""
        conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30)
        try:
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
                elif version[0] in ("1", "2"):
                    _migrate(conn)
                elif version[0] != SCHEMA_VERSION:
                    raise LedgerError(f"ledger {self.path} has schema {version[0]}, this version reads "
                                      f"{SCHEMA_VERSION}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except BaseException:
            conn.close()  # a half-opened file must not stay locked by this process
            raise
        return conn

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

    def __enter__(self: _Self) -> _Self:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"

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
