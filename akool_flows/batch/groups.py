"""Multi-value creates: one request, one job per value (video translation's ``language: "fr,de,ja"``).

Akool answers such a create with one job per language (``all_results``). The plan turns the row
into one row per value, each with its own request key (the same key a one-language row of the
same video would have, so a catalog translated either way is never paid twice), its own ledger
row and its own result row; the engine sends one create for the values still to send and records
every job the answer lists.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from akool_flows.batch.cost import CostEstimate

if TYPE_CHECKING:
    from akool_flows.batch.plan import BatchPlan

__all__ = ["expand_groups", "split_values", "jobs_by_value"]


def split_values(value: Any) -> list[str]:
    """``"fr, de,fr"`` -> ``["fr", "de"]`` (order kept, duplicates and blanks dropped)."""
    if not isinstance(value, str):
        return []
    return list(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))


def expand_groups(plan: BatchPlan, usd_per_credit: float) -> BatchPlan:
    """The plan with every multi-value row replaced by one row per value (no-op for other kinds)."""
    from akool_flows.batch.plan import BatchPlan, row_key_for

    field = plan.kind.split_field
    if field is None or not any(ok and len(split_values(b.get(field))) > 1 for ok, b in zip(plan.valid, plan.bodies)):
        return plan
    out: dict[str, list[Any]] = {k: [] for k in ("keys", "bodies", "valid", "errors", "est", "dup", "group", "value",
                                                  "pos", "source")}
    seen: dict[str, int] = {}
    for i, key in enumerate(plan.keys):
        values = split_values(plan.bodies[i].get(field)) if plan.valid[i] else []
        if len(values) < 2:
            original = seen.get(key) if plan.valid[i] else None
            if original is not None:  # the same request as one value of an earlier multi-value row
                _add(out, plan, i, f"{key}@{len(out['keys'])}", plan.bodies[i], False, original, None, None)
                continue
            _add(out, plan, i, key, plan.bodies[i], plan.valid[i], _shift(plan.duplicate_of[i], out), None, None)
            if plan.valid[i]:
                seen[key] = len(out["keys"]) - 1
            continue
        leader = len(out["keys"])
        for value in values:
            body = {**plan.bodies[i], field: value}
            sub_key = row_key_for(plan.kind, body)
            original = seen.get(sub_key)
            if original is None:
                seen[sub_key] = len(out["keys"])
            _add(out, plan, i, sub_key if original is None else f"{sub_key}@{len(out['keys'])}", body,
                 original is None, original, leader, value)
    sources = ["unknown" if (ok and e is None) else (None if not ok else plan.rows["cost_source"].iloc[p])
               for ok, e, p in zip(out["valid"], out["est"], out["pos"])]
    rows = plan.rows.iloc[out["pos"]].copy()
    rows["row_key"] = out["keys"]
    rows["fields"] = out["bodies"]
    rows["valid"] = out["valid"]
    rows["duplicate_of"] = [None if d is None else rows.index[d] for d in out["dup"]]
    rows["est_credits"] = [float("nan") if e is None else e for e in out["est"]]
    rows["cost_source"] = sources
    rows[field] = out["value"]
    return BatchPlan(kind=plan.kind, rows=rows, source=plan.source.iloc[out["pos"]], keys=out["keys"],
                     bodies=out["bodies"], valid=out["valid"], errors=out["errors"], est=out["est"],
                     cost_table=plan.cost_table, duplicate_of=out["dup"], group_of=out["group"],
                     group_value=out["value"],
                     estimate=CostEstimate.from_rows(out["est"], sources, usd_per_credit))


def _shift(original: int | None, out: dict[str, list[Any]]) -> int | None:
    # A duplicate of an earlier single-value row: that row's new position.
    return None if original is None else out["pos"].index(original)


def _add(out: dict[str, list[Any]], plan: BatchPlan, i: int, key: str, body: dict[str, Any], valid: bool,
         dup: int | None, group: int | None, value: str | None) -> None:
    out["keys"].append(key)
    out["bodies"].append(body)
    out["valid"].append(valid)
    out["errors"].append(plan.errors[i])
    out["est"].append(plan.est[i] if valid else None)
    out["dup"].append(dup)
    out["group"].append(group)
    out["value"].append(value)
    out["pos"].append(i)


def jobs_by_value(job: Any, field: str) -> dict[str, Any]:
    """``{value: Job}`` for every job a multi-value create answered (``job.jobs`` when the client
    lists them, else the answer's ``all_results``)."""
    from akool_flows.api.jobs import Job

    found: dict[str, Any] = {}
    for sub in getattr(job, "jobs", None) or ():
        value = getattr(sub, "language", None) or (getattr(sub, "raw", None) or {}).get(field)
        if value and sub.job_id:
            found[str(value)] = sub
    raw = getattr(job, "raw", None) or {}
    for item in raw.get("all_results") or ():
        if isinstance(item, dict):
            data = item.get("data", item) if isinstance(item.get("data", item), dict) else item
            value, job_id = data.get(field), data.get("_id")
            if value and job_id and str(value) not in found:
                found[str(value)] = Job(job_id=str(job_id), kind=job.kind, raw=data)
    return found
