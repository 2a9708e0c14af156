"""The results DataFrame as the apps hand it out: the user's own columns first, internal keys last.

The engine's `BatchResult.results` starts with its own columns (row keys, job ids, timestamps)
and carries the input columns after them. A person reading ``app.results`` looks for their own
id and text first, then the answer (outcome, verdict, result, credits, error), and only rarely
for the keys; so the apps reorder, and the live table during a run has the same shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

__all__ = ["ANSWER_COLUMNS", "LIVE_OUTCOME", "apply_ledger", "check_input_frame", "input_columns", "order_columns",
           "pending_frame"]

#: What a row came to, in reading order, right after the user's columns.
ANSWER_COLUMNS = ("outcome", "conclusion", "detail", "result_url", "credits", "paid_in", "error_message",
                  "duplicate_of", "note")
#: Ledger states as the live table shows them while a run goes.
LIVE_OUTCOME = {"pending": "pending", "intent": "submitting", "submitted": "running", "uncertain": "uncertain",
                "timed_out": "timed_out", "completed": "completed", "failed": "failed"}


def check_input_frame(df: Any, *, needs: str | None = None, **columns: str | None) -> None:
    """Refuse what is not a DataFrame, a DataFrame without columns (when `needs` says what for),
    and a named column argument (``url_column="..."``) that df does not have."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    if needs and len(df.columns) == 0:
        raise ValueError(f"df has no columns: {needs}")
    for arg, column in columns.items():
        if column is not None and column not in df.columns:
            raise ValueError(f"{arg} {column!r} is not a column of df; columns: {', '.join(map(str, df.columns))}")


def _engine_columns() -> tuple[str, ...]:
    from akool_flows.batch.results import RESULT_COLUMNS

    return tuple(RESULT_COLUMNS)


def input_columns(source: pd.DataFrame) -> list[str]:
    """The input's columns as they are named in the results (the engine prefixes a clash with ``input_``)."""
    engine = set(_engine_columns())
    return [f"input_{c}" if c in engine else c for c in source.columns]


def order_columns(df: pd.DataFrame, inputs: list[Any]) -> pd.DataFrame:
    """`df` with the user's columns first, then the answer, then everything else."""
    first = [c for c in inputs if c in df.columns]
    answer = [c for c in ANSWER_COLUMNS if c in df.columns and c not in first]
    rest = [c for c in df.columns if c not in first and c not in answer]
    return df[first + answer + rest]


def pending_frame(plan: Any, table: pd.DataFrame) -> pd.DataFrame:
    """Every planned row, ``pending`` (or ``rejected`` with its validation error, or marked as the
    copy of an earlier identical row): what the live table shows until the ledger says more."""
    rows = plan.rows
    outcome = ["pending" if ok else ("pending" if dup is not None else "rejected")
               for ok, dup in zip(rows["valid"], plan.duplicate_of)]
    frame = pd.DataFrame({
        "row_key": rows["row_key"].to_numpy(),
        "input_index": rows["input_index"].to_numpy(),
        "outcome": outcome,
        "duplicate_of": rows["duplicate_of"].to_numpy(),
        "error_message": [None if dup is not None else err for err, dup in zip(rows["error"], plan.duplicate_of)],
    })
    for col in ("job_id", "result_url", "conclusion", "detail", "credits", "paid_in"):
        frame[col] = None
    inputs = table.reset_index(drop=True)
    inputs.columns = input_columns(inputs)
    return order_columns(pd.concat([frame, inputs], axis=1), list(inputs.columns))


def apply_ledger(frame: pd.DataFrame, rows: Mapping[str, Any], duplicate_of: list[int | None]) -> pd.DataFrame:
    """`frame` updated from the ledger's rows of the batch; copies of identical rows follow their original."""
    position = {key: i for i, key in enumerate(frame["row_key"])}
    columns = ("outcome", "job_id", "credits", "error_message", "conclusion", "detail", "result_url")
    values = {c: frame[c].astype(object).to_numpy(copy=True) for c in columns}
    copies: dict[int, list[int]] = {}
    for i, orig in enumerate(duplicate_of):
        if orig is not None:
            copies.setdefault(orig, []).append(i)
    changed = False
    for key, row in rows.items():
        i = position.get(key)
        if i is None:
            continue
        update: dict[str, Any] = {"outcome": LIVE_OUTCOME.get(row.state, row.state), "job_id": row.job_id,
                                  "credits": row.credits}
        if row.error_message:
            update["error_message"] = row.error_message
        if row.state in ("completed", "failed") and row.result:
            try:
                data = row.result_data
            except ValueError:
                data = {}
            urls = data.get("result_urls") or ([data["result_url"]] if data.get("result_url") else [])
            update.update(conclusion=data.get("conclusion"), detail=data.get("detail"),
                          result_url=urls[0] if urls else None)
        for j in (i, *copies.get(i, ())):
            for col, value in update.items():
                if j == i or col != "credits":  # a copy was not paid for: its original was
                    values[col][j] = value
        changed = True
    if not changed:
        return frame
    out = frame.copy()
    for col, arr in values.items():
        out[col] = arr
    return out
