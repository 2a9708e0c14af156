"""Durable store of webhook events and of the job ids this installation submitted.

One SQLAlchemy database (a SQLite file by default, any URL for a shared database) holds:

* ``akool_webhook_events`` - every accepted event, deduplicated on (job id, status,
  signature) because Akool retries a callback until it gets HTTP 200;
* ``akool_submitted_jobs`` - the job ids our own create calls returned. The receiver accepts
  events only for these, since Akool's signature proves integrity, not origin;
* ``akool_intent_jobs`` - intent key -> job id, from callbacks to a create's own signed path
  (``/webhook/<token>/<intent key>.<hmac>``): they name the job of a create whose answer was
  lost, so a retry attaches it instead of paying again.

Waiting for a job's terminal event (`wait_for`) is `webhook.waiting`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterable, Iterator
from contextlib import suppress
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from akool_flows.api.redact import redact_url
from akool_flows.webhook.events import TERMINAL_STATUSES, WebhookEvent
from akool_flows.webhook.waiting import EventWaiters

__all__ = ["DEFAULT_STORE_URL", "WebhookEventStore"]

DEFAULT_STORE_URL = "sqlite:///akool-webhooks.sqlite"

# Bound parameters per IN (...) query: well under SQLite's 32766 and every server's limits.
_IN_CHUNK = 500

_metadata = sa.MetaData()

events_table = sa.Table(
    "akool_webhook_events",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job_id", sa.String(256), nullable=False, index=True),
    sa.Column("status", sa.Integer, nullable=False),
    # "" rather than NULL for events without one: NULLs never collide in a UNIQUE index.
    sa.Column("signature", sa.String(64), nullable=False, default=""),
    sa.Column("event_json", sa.Text, nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
    sa.UniqueConstraint("job_id", "status", "signature", name="uq_akool_webhook_event"),
)

submitted_table = sa.Table(
    "akool_submitted_jobs",
    _metadata,
    sa.Column("job_id", sa.String(256), primary_key=True),
    sa.Column("kind", sa.String(64), nullable=True),
    sa.Column("submitted_at", sa.Float, nullable=False),
)


intents_table = sa.Table(
    "akool_intent_jobs",
    _metadata,
    sa.Column("intent_key", sa.String(128), primary_key=True),
    sa.Column("job_id", sa.String(256), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)


def _rank(status: int) -> int:
    # Later lifecycle stages win regardless of arrival order (retries reorder callbacks);
    # completed and failed rank equal, so between them the later arrival wins.
    return 3 if status in TERMINAL_STATUSES else status


def _chunks(items: list[str], size: int = _IN_CHUNK) -> Iterator[list[str]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


class WebhookEventStore:
    """Events and submitted job ids in one SQLAlchemy database.

    Thread-safe (SQLAlchemy's pool; SQLite in WAL mode with a busy timeout) and safe to share
    between a receiver and many waiters in one process, or across processes through the
    database.

    Args:
        url: SQLAlchemy URL; the default is a SQLite file in the working directory.
            ``"sqlite://"`` is an in-memory store shared by all threads of this process.
        poll_interval: seconds between the batched database checks that serve ``wait_for``
            when the event is written by another process.
        engine_kwargs: extra arguments for ``sqlalchemy.create_engine``.
    """

    def __init__(
        self,
        url: str = DEFAULT_STORE_URL,
        *,
        poll_interval: float = 0.5,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError("url must be a SQLAlchemy database URL such as 'sqlite:///events.db'")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        self.poll_interval = float(poll_interval)
        self._engine = self._make_engine(url, dict(engine_kwargs or {}))
        # SQLite caps bound parameters; a server takes one IN (...) for a whole triggerer's ids.
        self._chunk = _IN_CHUNK if self._engine.dialect.name == "sqlite" else 20_000
        _metadata.create_all(self._engine)
        self._waiting = EventWaiters(functools.partial(self.latest_many, terminal_only=True),
                                     self.poll_interval)

    @staticmethod
    def _make_engine(url: str, kwargs: dict[str, Any]) -> Engine:
        parsed = sa.make_url(url)
        if parsed.get_backend_name() == "sqlite":
            connect_args = kwargs.setdefault("connect_args", {})
            # The store is shared across threads (receiver, waiters' DB checks).
            connect_args.setdefault("check_same_thread", False)
            connect_args.setdefault("timeout", 30)
            if parsed.database in (None, "", ":memory:"):
                # One connection, or every thread would see its own empty database.
                kwargs.setdefault("poolclass", StaticPool)
        engine = sa.create_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":

            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                # WAL: readers never block the writer (the receiver) and vice versa.
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA synchronous=NORMAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

        return engine

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database URL with any password masked (opens the same store again; for display
        use `redact_url`, which also drops the user name and query values)."""
        return self._engine.url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"WebhookEventStore(url={redact_url(self.url)!r})"

    def close(self) -> None:
        """Release database connections and cancel background checks."""
        self._waiting.close()
        self._engine.dispose()

    def __enter__(self) -> WebhookEventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- submitted job ids ------------------------------------------------------------------

    def register_submitted(self, job_id: str, kind: str | None = None) -> None:
        """Record a job id returned by a create call, so its webhooks are accepted.

        Call it right after the create call returns (idempotent)."""
        self.register_submitted_many([job_id], kind=kind)

    def register_submitted_many(self, job_ids: Iterable[str], kind: str | None = None) -> int:
        """Record many job ids at once; returns how many were new."""
        ids = list(dict.fromkeys(_check_job_id(j) for j in job_ids))
        if kind is not None and (not isinstance(kind, str) or len(kind) > 64):
            raise ValueError("kind must be a string of at most 64 characters or None")
        if not ids:
            return 0
        now = time.time()
        new = 0
        for chunk in _chunks(ids):
            with self._engine.connect() as conn:
                known = set(
                    conn.scalars(
                        sa.select(submitted_table.c.job_id).where(
                            submitted_table.c.job_id.in_(chunk)
                        )
                    )
                )
            rows = [
                {"job_id": j, "kind": kind, "submitted_at": now} for j in chunk if j not in known
            ]
            new += self._insert_ignoring_duplicates(rows)
        return new

    def _insert_ignoring_duplicates(self, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        try:
            with self._engine.begin() as conn:
                conn.execute(submitted_table.insert(), rows)
            return len(rows)
        except IntegrityError:
            pass
        # Another writer registered some of these between our SELECT and INSERT: go row by
        # row (rare, so the slow path is fine).
        inserted = 0
        for row in rows:
            try:
                with self._engine.begin() as conn:
                    conn.execute(submitted_table.insert(), row)
                inserted += 1
            except IntegrityError:
                continue
        return inserted

    def is_submitted(self, job_id: str) -> bool:
        """True if ``register_submitted`` was called for this id."""
        if not isinstance(job_id, str):
            return False
        with self._engine.connect() as conn:
            found = conn.scalar(
                sa.select(submitted_table.c.job_id).where(submitted_table.c.job_id == job_id)
            )
        return found is not None

    # --- intents ----------------------------------------------------------------------------

    def record_intents(self, pairs: dict[str, str]) -> None:
        """Remember which job each intent key's create made (the first job heard wins) and
        register those jobs as submitted, so their later callbacks are accepted too."""
        if not pairs:
            return
        with self._engine.connect() as conn:
            known = set(conn.scalars(sa.select(intents_table.c.intent_key)
                                     .where(intents_table.c.intent_key.in_(list(pairs)))))
        rows = [{"intent_key": k, "job_id": j, "received_at": time.time()} for k, j in pairs.items()
                if k not in known]
        for row in rows:
            with suppress(IntegrityError):  # a concurrent receiver recorded it first
                with self._engine.begin() as conn:
                    conn.execute(intents_table.insert(), row)
        self.register_submitted_many(pairs.values())

    def job_for_intent(self, intent_key: str) -> str | None:
        """The job id a callback named for this intent key, or None."""
        return self.jobs_for_intents([intent_key]).get(intent_key)

    def jobs_for_intents(self, intent_keys: Iterable[str]) -> dict[str, str]:
        keys = list(dict.fromkeys(intent_keys))
        out: dict[str, str] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(keys, self._chunk):
                out.update((r.intent_key, r.job_id) for r in conn.execute(
                    sa.select(intents_table.c.intent_key, intents_table.c.job_id)
                    .where(intents_table.c.intent_key.in_(chunk))))
        return out

    # --- events -----------------------------------------------------------------------------

    def add(self, event: WebhookEvent) -> bool:
        """Store an event; return True if it is new, False for a duplicate (Akool retry).

        A new terminal event wakes every ``wait_for`` on its job id in this process."""
        if not isinstance(event, WebhookEvent):
            raise TypeError("event must be a WebhookEvent")
        row = {
            "job_id": event.job_id,
            "status": event.status,
            "signature": event.signature or "",
            "event_json": event.model_dump_json(),
            "received_at": time.time(),
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(events_table.insert(), row)
        except IntegrityError:
            return False
        if event.is_terminal:
            self._waiting.notify(event)
        return True

    def ingest_many(
        self, candidates: list[list[WebhookEvent]], *, require_submitted: bool = True,
        intents: list[str | None] | None = None,
    ) -> list[tuple[WebhookEvent | None, bool]]:
        """Store many received events in one lookup and one transaction (group commit).

        Each item lists the readings of one body (several only for a clientId under 16 bytes,
        see ``verify_and_decrypt_all``). For each item the result is ``(event, is_new)``: the
        first reading naming a submitted job (or the first reading when ``require_submitted``
        is False), or ``(None, False)`` when no reading names one. One SQLite commit per event
        caps a receiver near a thousand events/s; a batch shares its commit.

        ``intents`` (one per item, or None) are verified intent keys from the callback path: an
        item with one is accepted for a job not yet submitted - it is the job of that intent's
        create, whose answer was lost - and the pair is recorded (`record_intents`).
        """
        intents = intents if intents is not None else [None] * len(candidates)
        ids = list(dict.fromkeys(e.job_id for readings in candidates for e in readings))
        with self._engine.connect() as conn:
            submitted: set[str] = set()
            existing: set[tuple[str, int, str]] = set()
            for chunk in _chunks(ids):
                if require_submitted:
                    submitted.update(conn.scalars(
                        sa.select(submitted_table.c.job_id).where(submitted_table.c.job_id.in_(chunk))))
                existing.update(tuple(r) for r in conn.execute(
                    sa.select(events_table.c.job_id, events_table.c.status, events_table.c.signature)
                    .where(events_table.c.job_id.in_(chunk))))
        results: list[tuple[WebhookEvent | None, bool]] = []
        fresh: list[WebhookEvent] = []
        claimed: dict[str, str] = {}
        for readings, intent in zip(candidates, intents):
            event = next((e for e in readings if not require_submitted or e.job_id in submitted), None)
            if event is None and intent is not None and readings:
                event = readings[0]
            if event is None:
                results.append((None, False))
                continue
            if intent is not None:
                claimed.setdefault(intent, event.job_id)
            key = (event.job_id, event.status, event.signature or "")
            is_new = key not in existing
            existing.add(key)  # a retry inside the same batch is a duplicate too
            if is_new:
                fresh.append(event)
            results.append((event, is_new))
        self.record_intents(claimed)
        if fresh:
            now = time.time()
            rows = [{"job_id": e.job_id, "status": e.status, "signature": e.signature or "",
                     "event_json": e.model_dump_json(), "received_at": now} for e in fresh]
            try:
                with self._engine.begin() as conn:
                    conn.execute(events_table.insert(), rows)
            except IntegrityError:
                # Another writer stored some of them meanwhile: settle them one by one.
                stored = {id(e): self.add(e) for e in fresh}
                return [(e, stored.get(id(e), False) if e is not None and new else False)
                        for e, new in results]
            for event in fresh:
                if event.is_terminal:
                    self._waiting.notify(event)
        return results

    def events(self, job_id: str) -> list[WebhookEvent]:
        """Every stored event of a job, in arrival order."""
        with self._engine.connect() as conn:
            rows = conn.execute(
                sa.select(events_table.c.event_json)
                .where(events_table.c.job_id == job_id)
                .order_by(events_table.c.id)
            )
            return [WebhookEvent.model_validate_json(r.event_json) for r in rows]

    def latest(self, job_id: str) -> WebhookEvent | None:
        """The most advanced event of a job (terminal beats processing beats queued, however
        they arrived), or None if none was stored."""
        return self.latest_many([job_id]).get(job_id)

    def latest_many(
        self, job_ids: Iterable[str], *, terminal_only: bool = False
    ) -> dict[str, WebhookEvent]:
        """``latest`` for many ids in batched queries; ids without events are absent."""
        ids = list(dict.fromkeys(job_ids))
        best: dict[str, tuple[tuple[int, int], str]] = {}
        with self._engine.connect() as conn:
            for chunk in _chunks(ids, self._chunk):
                query = sa.select(
                    events_table.c.id,
                    events_table.c.job_id,
                    events_table.c.status,
                    events_table.c.event_json,
                ).where(events_table.c.job_id.in_(chunk))
                if terminal_only:
                    query = query.where(events_table.c.status.in_(sorted(TERMINAL_STATUSES)))
                for r in conn.execute(query):
                    key = (_rank(r.status), r.id)
                    current = best.get(r.job_id)
                    if current is None or key > current[0]:
                        best[r.job_id] = (key, r.event_json)
        return {j: WebhookEvent.model_validate_json(raw) for j, (_, raw) in best.items()}
    # --- waiting ----------------------------------------------------------------------------

    async def wait_for(self, job_id: str, timeout: float) -> WebhookEvent | None:
        """Wait up to ``timeout`` seconds for the job's terminal (completed/failed) event.

        Returns the event (at once if it is already stored), or None on timeout: the caller
        then falls back to polling, so a lost webhook never hangs a job. Thousands of
        concurrent calls cost one future each plus one batched query per poll interval.
        """
        return await self._waiting.wait_for(job_id, timeout)


def _check_job_id(job_id: Any) -> str:
    if not isinstance(job_id, str) or not job_id or len(job_id) > 256:
        raise ValueError(
            f"job_id must be a non-empty string of at most 256 characters, got {job_id!r:.80}"
        )
    return job_id
