"""From a DataFrame to a checked plan: every row mapped to request fields, validated, keyed and priced.

Nothing here talks to Akool. `plan_batch` is the "before anything is spent" step: the CLI's
``--dry-run``, the notebook's estimate button and the Airflow operator's log all show its
`BatchPlan.summary()`.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import pandas as pd

from akool_flows.api.faces import required_fields
from akool_flows.api.kinds import JobKind, get_kind
from akool_flows.batch.cost import USD_PER_CREDIT, CostEstimate, check_cost_table
from akool_flows.batch.errors import BatchInputError
from akool_flows.batch.plan_rows import RowPlanner, mapped_rows, python_value, row_key_for

__all__ = ["BatchPlan", "plan_batch", "row_key_for", "DEFAULT_MAX_CELL_CHARS"]

#: Longest text a single cell may hold. Nothing in the docs needs more, and a runaway cell is
#: expensive (text moderation is priced per 600 characters) or a sign of a broken CSV.
DEFAULT_MAX_CELL_CHARS = 100_000

ColumnSpec = Union[None, Mapping[str, str], Callable[[dict[str, Any]], Mapping[str, Any]]]


# --- keys ------------------------------------------------------------------------------------------

def default_batch_id(kind: JobKind, keys: list[str]) -> str:
    """Hash of the kind and every row key, so the same input resumes the same batch."""
    h = hashlib.sha256(kind.name.encode())
    for key in keys:
        h.update(b"\0" + key.encode())
    return f"{kind.name}-{h.hexdigest()[:16]}"


# --- the plan --------------------------------------------------------------------------------------

@dataclass
class BatchPlan:
    """Every input row mapped, validated, keyed and priced; nothing spent yet.

    ``rows`` has one row per input row, in input order: ``row_key``, ``input_index`` (the input
    DataFrame's index), ``fields`` (the request body, or the raw mapped fields when invalid),
    ``valid``, ``error`` (why a row was rejected), ``est_credits`` (NaN: rejected or unknown) and
    ``cost_source``.
    """

    kind: JobKind
    rows: pd.DataFrame
    estimate: CostEstimate
    #: The input table (its columns are carried into the results).
    source: pd.DataFrame = field(repr=False)
    # Plain lists mirroring `rows`, for the engine's hot loop (no pandas there).
    keys: list[str] = field(repr=False, default_factory=list)
    bodies: list[dict[str, Any]] = field(repr=False, default_factory=list)
    valid: list[bool] = field(repr=False, default_factory=list)
    errors: list[str | None] = field(repr=False, default_factory=list)
    est: list[float | None] = field(repr=False, default_factory=list)
    cost_table: dict[str, float] = field(repr=False, default_factory=dict)
    #: Per row: the position of the earlier row with the identical request (sent once, and this
    #: row carries its outcome), or None.
    duplicate_of: list[int | None] = field(repr=False, default_factory=list)
    #: Per row: the position of the first row of its multi-value group (one create answered by
    #: one job per value, see `batch.groups`), or None; and the row's own value in that group.
    group_of: list[int | None] = field(repr=False, default_factory=list)
    group_value: list[str | None] = field(repr=False, default_factory=list)

    def __post_init__(self) -> None:
        if not self.duplicate_of:
            self.duplicate_of = [None] * len(self.keys)
        if not self.group_of:
            self.group_of = [None] * len(self.keys)
            self.group_value = [None] * len(self.keys)

    @property
    def valid_count(self) -> int:
        return sum(self.valid)

    @property
    def duplicate_count(self) -> int:
        return sum(d is not None for d in self.duplicate_of)

    @property
    def rejected_count(self) -> int:
        return len(self.valid) - self.valid_count - self.duplicate_count

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def batch_id(self) -> str:
        """The default batch id of this plan (see `run_batch`)."""
        return default_batch_id(self.kind, self.keys)

    def rejections(self, limit: int | None = 10) -> list[dict[str, Any]]:
        """The most common rejection reasons: ``[{"error", "count", "first_rows"}]``."""
        by_error: dict[str, list[Any]] = {}
        index = self.source.index
        for i, (ok, err) in enumerate(zip(self.valid, self.errors)):
            if not ok and self.duplicate_of[i] is None:
                by_error.setdefault(err or "invalid", []).append(_plain(index[i]))
        ranked = sorted(by_error.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return [{"error": err, "count": len(rows), "first_rows": rows[:5]} for err, rows in ranked[:limit]]

    def summary(self) -> dict[str, Any]:
        """JSON-able overview for logs, XCom and widgets."""
        return {"kind": self.kind.name, "batch_id": self.batch_id, "rows": len(self), "valid": self.valid_count,
                "duplicates": self.duplicate_count, "rejected": self.rejected_count, "rejections": self.rejections(),
                "estimate": self.estimate.to_dict(), "estimate_text": self.estimate.describe()}

    def with_estimates(self, est: list[float | None], sources: list[str | None],
                       usd_per_credit: float) -> BatchPlan:
        """A copy with other per-row estimates (the engine fills unknowns from the ledger)."""
        rows = self.rows.copy()
        rows["est_credits"] = [math.nan if e is None else e for e in est]
        rows["cost_source"] = sources
        return BatchPlan(kind=self.kind, rows=rows, source=self.source, keys=self.keys, bodies=self.bodies,
                         valid=self.valid, errors=self.errors, est=list(est), cost_table=self.cost_table,
                         estimate=CostEstimate.from_rows(est, sources, usd_per_credit),
                         duplicate_of=self.duplicate_of, group_of=self.group_of, group_value=self.group_value)


def _plain(value: Any) -> Any:
    value = python_value(value)
    return value if isinstance(value, (int, float, str, bool)) or value is None else str(value)


def _check_df(df: Any) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise BatchInputError(f"expected a pandas DataFrame of inputs, got {type(df).__name__}", field="df")
    if not df.index.is_unique:
        raise BatchInputError("the DataFrame's index has duplicate labels; call df.reset_index(drop=True) "
                              "so every input row can be named in the results", field="df")
    return df


def _resolve_mapping(kind: JobKind, df: pd.DataFrame, columns: ColumnSpec, defaults: Mapping[str, Any],
                     strict_fields: bool) -> Callable[[dict[str, Any]], Mapping[str, Any]] | dict[str, str]:
    """``{field: column}`` or a function row-dict -> fields, after checking the mapping once."""
    names = kind.field_names
    available = [str(c) for c in df.columns]
    if callable(columns):
        return columns
    if columns is None:
        mapping = {c: c for c in available if c in names}
    elif isinstance(columns, Mapping):
        mapping = dict(columns)
        for fname, col in mapping.items():
            # A field the docs do not list is sent as given (warned once), unless strict_fields.
            if fname not in names and strict_fields:
                raise BatchInputError(f"columns: {fname!r} is not a {kind.name} field; allowed: {', '.join(names)}",
                                      field="columns")
            if col not in df.columns:
                raise BatchInputError(f"columns: column {col!r} (for field {fname!r}) is not in the input; "
                                      f"columns: {', '.join(available) or '(none)'}", field="columns")
    else:
        raise BatchInputError("columns must be None, a {field: column} mapping or a function row -> fields",
                              field="columns")
    missing = [f for f in required_fields(kind) if f not in mapping and f not in defaults]
    if missing:
        hint = (f"; pass columns={{{missing[0]!r}: '<column>'}} or defaults={{{missing[0]!r}: ...}}"
                if columns is None else "")
        unlisted = [f for f in [*mapping, *defaults] if f not in names]
        if unlisted:  # most likely a typo of the missing one
            hint += f"; {', '.join(map(repr, unlisted))} are not fields the docs list"
        raise BatchInputError(
            f"{kind.name} needs field(s) {', '.join(missing)} but no input column provides them "
            f"(columns: {', '.join(available) or '(none)'}){hint}", field="columns")
    return mapping


def plan_batch(df: pd.DataFrame, kind: str | JobKind, *, columns: ColumnSpec = None,
               defaults: Mapping[str, Any] | None = None, cost_table: Mapping[str, float] | None = None,
               durations: str | None = None, dedupe: bool = True,
               max_cell_chars: int = DEFAULT_MAX_CELL_CHARS, ledger: Any = None,
               usd_per_credit: float = USD_PER_CREDIT, stage: Any = None,
               strict_fields: bool = False) -> BatchPlan:
    """Map, validate, key and price every row of ``df`` as a job of ``kind``; spend nothing.

    Args:
        df: one input row per job.
        kind: a registry kind name (``"moderation"``, ``"video_translation"``...).
        columns: ``None`` uses the columns named as the docs' fields; a ``{field: column}`` dict
            maps them; a function ``row_dict -> fields`` builds them freely.
        defaults: constant fields for every row (a row's own non-empty value wins).
        cost_table: ``{kind: credits per job}`` for kinds whose price the docs do not publish.
        durations: column holding media seconds (prices audio/video moderation).
        dedupe: send a request identical to an earlier row's once: the copy is not sent and
            carries the earlier row's outcome, result and a share of its cost (``duplicate_of``);
            ``False`` submits (and pays for) each copy.
        max_cell_chars: longest text accepted in one field; longer rows are rejected.
        ledger: a `Ledger` (or its path) whose finished jobs price kinds of unknown cost.
        usd_per_credit: conversion for the USD figures.
        stage: where local files in URL fields will be staged (`run_batch`'s ``stage``): with
            it, a URL field may name a local file or an fsspec URI (``s3://...``), kept as is in
            the plan and replaced by a signed URL just before its create; without it such rows
            are rejected with a hint.
        strict_fields: refuse fields the docs do not list (in ``columns`` and ``defaults``: the
            plan raises; from a row function: the row is rejected). Default: they are sent as
            given, with one `UnknownFieldWarning` per kind and field.

    Rows that fail validation are *rejected* (``valid`` False, ``error`` says which field and what
    is allowed); only a problem with the whole input raises (`BatchInputError`).
    """
    k = get_kind(kind)
    df = _check_df(df)
    defaults = dict(defaults or {})
    unknown_defaults = [n for n in defaults if n not in k.field_names]
    if unknown_defaults and strict_fields:
        raise BatchInputError(f"defaults: {', '.join(map(repr, unknown_defaults))} not {k.name} field(s); "
                              f"allowed: {', '.join(k.field_names)}", field="defaults")
    if durations is not None and durations not in df.columns:
        raise BatchInputError(f"durations: column {durations!r} is not in the input", field="durations")
    if not isinstance(max_cell_chars, int) or max_cell_chars < 1:
        raise BatchInputError("max_cell_chars must be a positive integer", field="max_cell_chars")
    table = check_cost_table(cost_table)
    to_fields = _resolve_mapping(k, df, columns, defaults, strict_fields)
    planner = RowPlanner(k, defaults, max_cell_chars=max_cell_chars, staging=bool(stage), strict_fields=strict_fields,
                         cost_table=table, observed=_observed(ledger, k.name))

    keys: list[str] = []
    bodies: list[dict[str, Any]] = []
    valid: list[bool] = []
    errors: list[str | None] = []
    est: list[float | None] = []
    sources: list[str | None] = []
    first_seen: dict[str, int] = {}
    duplicate_of: list[int | None] = []
    seen_count: Counter[str] = Counter()
    used: set[str] = set()
    for position, (mapped, failure, duration) in enumerate(mapped_rows(df, to_fields, durations)):
        key, body, error, credits, source = planner.plan(mapped, failure, duration)
        original = None
        if error is None:
            if key in first_seen and dedupe:
                original = first_seen[key]
                credits = source = None
            first_seen.setdefault(key, position)
            if not dedupe:
                seen_count[key] += 1
                if seen_count[key] > 1:
                    key = f"{key}#{seen_count[key]}"
        duplicate_of.append(original)
        if key in used:
            key = f"{key}@{position}"  # identical rejected rows still need distinct keys
        used.add(key)
        keys.append(key)
        bodies.append(body)
        valid.append(error is None and original is None)
        errors.append(error)
        est.append(credits)
        sources.append(source)

    rows = pd.DataFrame({
        "row_key": keys,
        "input_index": list(df.index),
        "fields": bodies,
        "valid": valid,
        "duplicate_of": [None if d is None else _plain(df.index[d]) for d in duplicate_of],
        "error": errors,
        "est_credits": [math.nan if c is None else c for c in est],
        "cost_source": sources,
    }, index=df.index)
    plan = BatchPlan(kind=k, rows=rows, estimate=CostEstimate.from_rows(est, sources, usd_per_credit), source=df,
                     keys=keys, bodies=bodies, valid=valid, errors=errors, est=est, cost_table=table,
                     duplicate_of=duplicate_of)
    from akool_flows.batch.groups import expand_groups

    return expand_groups(plan, usd_per_credit)


def _observed(ledger: Any, kind: str) -> float | None:
    if ledger is None:
        return None
    from akool_flows.batch.ledger import Ledger

    if isinstance(ledger, Ledger):
        return ledger.observed_credits(kind)[0]
    with Ledger(ledger, create=False) as opened:
        return opened.observed_credits(kind)[0] if opened.exists else None
