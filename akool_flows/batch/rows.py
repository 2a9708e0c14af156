"""Every input row's state during a run, and the results table built from it.

Plain per-row lists (no pandas in the hot loop). A row whose request is identical to an earlier
row's (``plan.duplicate_of``) is never sent; it mirrors its original's outcome, job, verdict and
result, and the original's credits are shared evenly among the copies so the cost log's total
stays what was paid.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from akool_flows.api.jobs import JobStatus
from akool_flows.batch.export import IncrementalCsv
from akool_flows.batch.plan import BatchPlan
from akool_flows.batch.results import OUTCOMES, RESULT_COLUMNS, iso

__all__ = ["RowTable"]


def _plain_index(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if item is not None and type(value).__module__ == "numpy" else value


class RowTable:
    def __init__(self, plan: BatchPlan) -> None:
        self.plan = plan
        n = self.n = len(plan)
        self.outcome: list[str | None] = [None] * n
        self.job_id: list[str | None] = [None] * n
        self.final: list[JobStatus | None] = [None] * n
        self.attempt_at: list[float | None] = [None] * n
        self.submitted_at: list[float | None] = [None] * n
        self.finished_at: list[float | None] = [None] * n
        self.error: list[tuple[int | None, str] | None] = [None] * n
        self.note: list[str | None] = [None] * n
        self.artifacts: list[list[dict[str, Any]] | None] = [None] * n
        #: Rows created by an earlier run (their cost is "already paid", not new this run).
        self.earlier: list[bool] = [False] * n
        self.counts = dict.fromkeys(OUTCOMES, 0)
        self.copies: dict[int, list[int]] = {}
        for i, orig in enumerate(plan.duplicate_of):
            if orig is not None:
                self.copies.setdefault(orig, []).append(i)
        self.incremental: IncrementalCsv | None = None

    def set_outcome(self, i: int, outcome: str) -> None:
        for j in (i, *self.copies.get(i, ())):
            old = self.outcome[j]
            if old is not None:
                self.counts[old] -= 1
            self.outcome[j] = outcome
            self.counts[outcome] += 1
            if self.incremental is not None:
                self.incremental.add(self.row_dict(j))

    def reject(self, i: int) -> None:
        """A row the plan rejected: nothing is sent, its error is the plan's."""
        self.error[i] = (None, self.plan.errors[i] or "invalid")
        self.set_outcome(i, "rejected")

    def est(self, i: int, ceiling: float | None = None) -> float:
        """The row's estimate; for a row of unknown price, the user's per-row ceiling (else 0)."""
        value = self.plan.est[i]
        if value is None:
            return 0.0 if ceiling is None else float(ceiling)
        return float(value)

    def row_dict(self, i: int) -> dict[str, Any]:
        orig = self.plan.duplicate_of[i]
        src = i if orig is None else orig
        group = 1 + len(self.copies.get(src, ()))
        st = self.final[src]
        err = self.error[src]
        arts = self.artifacts[src] or []
        urls = list(st.result_urls) if st else []
        credits = st.credits if st else None
        est = self.plan.est[src]
        note = self.note[src]
        if orig is not None:
            note = f"duplicate of input row {_plain_index(self.plan.source.index[orig])}: same request, sent once"
        elif group > 1:
            note = "; ".join(filter(None, [note, f"shared with {group - 1} identical row(s)"]))
        return {
            "row_key": self.plan.keys[i],
            "input_index": _plain_index(self.plan.source.index[i]),
            "outcome": self.outcome[i],
            "duplicate_of": None if orig is None else _plain_index(self.plan.source.index[orig]),
            "job_id": self.job_id[src],
            "status_code": st.status_code if st else None,
            "result_url": urls[0] if urls else None,
            "result_urls": " ".join(urls) if urls else None,
            "conclusion": st.conclusion if st else None,
            "detail": st.detail if st else None,
            "credits": None if credits is None else credits / group,
            "est_credits": None if est is None else est / group,
            "duration": st.duration if st else None,
            "error_code": err[0] if err else None,
            "error_message": err[1] if err else None,
            "attempt_at": iso(self.attempt_at[src]),
            "submitted_at": iso(self.submitted_at[src]),
            "finished_at": iso(self.finished_at[src]),
            "artifact_paths": " ".join(a["path"] for a in arts if a.get("path")) or None,
            "artifact_sha256": " ".join(a["sha256"] for a in arts if a.get("sha256")) or None,
            "note": "; ".join(filter(None, [note] + [f"download failed: {a['error']}" for a in arts
                                                    if a.get("error")])) or None,
            "paid_in": None if not self.job_id[src] else ("earlier run" if self.earlier[src] else "this run"),
        }

    def frame(self) -> pd.DataFrame:
        engine = pd.DataFrame([self.row_dict(i) for i in range(self.n)], columns=list(RESULT_COLUMNS))
        for col in ("credits", "est_credits", "duration"):
            engine[col] = pd.to_numeric(engine[col], errors="coerce")
        for col in ("status_code", "error_code"):
            engine[col] = engine[col].astype("Int64")
        field = self.plan.kind.split_field
        taken = set(RESULT_COLUMNS)
        if field is not None and any(v is not None for v in self.plan.group_value):
            # One result row per value of a multi-value create: say which value it is.
            values = [v if v is not None else (b.get(field) if b else None)
                      for v, b in zip(self.plan.group_value, self.plan.bodies)]
            engine.insert(engine.columns.get_loc("outcome") + 1, field, values)
            taken.add(field)
        source = self.plan.source.reset_index(drop=True)
        rename = {c: f"input_{c}" for c in source.columns if c in taken}
        return pd.concat([engine, source.rename(columns=rename)], axis=1)
