"""The estimate an app shows before anything is spent: rows, rejections, and honest cost figures.

Honest means: rows the docs publish no price for are "unknown" (with their count), never a bold
0; rows the ledger already holds are not counted as new spend but shown apart as already paid;
a price learnt from earlier runs (the ledger's observed credits) or from a price probe says
where it comes from. Rejections are grouped by reason (the offending values become examples)
with counts, and nothing is silently cut: "+N more" says what is not listed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from akool_flows.notebook.ledger_view import Known
from akool_flows.notebook.render import e
from akool_flows.notebook.status import format_credits

__all__ = ["EstimateNumbers", "estimate_html", "group_rejections"]

# "(got 'english')" at the end of a problem, or "got 'x', allowed: ..." of an enumeration.
_GOT_RE = re.compile(r"\s*\(got (?P<v>'[^']*'|\"[^\"]*\"|[^)]*)\)|got (?P<w>'[^']*'|\"[^\"]*\"|\S+), ")
MAX_GROUPS = 8
MAX_EXAMPLES = 3
MAX_ROWS = 5


def _template(error: str) -> tuple[str, list[str]]:
    """A reason without the offending values (``language: expected ISO-639-1 code``) and the values."""
    values: list[str] = []

    def cut(m: re.Match[str]) -> str:
        values.append(m.group("v") or m.group("w"))
        return "" if m.group("v") is not None else "got …, "

    return _GOT_RE.sub(cut, error).strip(), values


def group_rejections(plan: Any) -> list[dict[str, Any]]:
    """``[{"reason", "count", "rows", "examples"}]`` over every rejected row, most common first.
    ``rows`` and ``examples`` hold the first few row labels and distinct offending values."""
    groups: dict[str, dict[str, Any]] = {}
    position = {label: i for i, label in enumerate(plan.source.index.tolist())}

    def where(row: Any) -> int:
        return position.get(row, len(position))

    # In input order, so the examples and row numbers are the first ones a reader meets.
    for item in sorted(plan.rejections(limit=None), key=lambda it: where(it["first_rows"][0])):
        reason, values = _template(str(item["error"]))
        g = groups.setdefault(reason, {"reason": reason, "count": 0, "rows": [], "examples": []})
        g["count"] += int(item["count"])
        g["rows"].extend(item["first_rows"])
        for v in values:
            if v not in g["examples"]:
                g["examples"].append(v)
    ranked = sorted(groups.values(), key=lambda g: (-g["count"], g["reason"]))
    for g in ranked:
        g["rows"] = sorted(g["rows"], key=where)
    return ranked


@dataclass(frozen=True)
class EstimateNumbers:
    """What Run would do: rows to send (``new_rows``), their known-price total (``new_credits``)
    and how many of them have no price (``new_unknown``), plus what the ledger already holds."""

    total: int
    valid: int
    rejected: int
    duplicates: int
    new_rows: int
    new_credits: float
    new_unknown: int
    known: Known = field(default_factory=Known)
    sources: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, plan: Any, known: Known) -> EstimateNumbers:
        new = [(k, est) for k, est, ok in zip(plan.keys, plan.est, plan.valid) if ok and k not in known.keys]
        priced = [float(est) for _, est in new if est is not None and not math.isnan(est)]
        return cls(total=len(plan), valid=plan.valid_count, rejected=plan.rejected_count,
                   duplicates=plan.duplicate_count, new_rows=len(new), new_credits=round(sum(priced), 6),
                   new_unknown=len(new) - len(priced), known=known, sources=dict(plan.estimate.sources))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _cost_text(n: EstimateNumbers, usd_per_credit: float) -> str:
    if n.new_rows == 0:
        return "0 credits: nothing new to send"
    if n.new_unknown == n.new_rows:
        return (f'<span class="akool-unknown">unknown</span> <span class="akool-muted">({_plural(n.new_unknown, "row")} '
                f'of a kind the docs publish no price for: pass cost_table=, run a price probe, or run a few '
                f'rows first - later estimates use what Akool charged)</span>')
    text = f"{format_credits(n.new_credits)} credits (≈ ${n.new_credits * usd_per_credit:,.2f})"
    if n.new_unknown:
        text += (f' <span class="akool-unknown">+ {_plural(n.new_unknown, "row")} of unknown price</span>'
                 f' <span class="akool-muted">(no published price; pass cost_table= or run a price probe)</span>')
    return text


def _source_note(n: EstimateNumbers, observed: tuple[float | None, int], probe: float | None) -> str:
    notes = []
    if n.sources.get("observed") and observed[0] is not None:
        notes.append(f"{_plural(n.sources['observed'], 'row')} priced at {format_credits(observed[0])} credits each: "
                     f"the mean of {_plural(observed[1], 'finished job')} of this kind in the ledger")
    if probe is not None:
        notes.append(f"price probe: {format_credits(probe)} credits per row (the account's balance before and after)")
    return "".join(f'<div class="akool-muted akool-price-source">{e(t)}</div>' for t in notes)


def _rejections_html(groups: list[dict[str, Any]]) -> str:
    if not groups:
        return ""
    out = ['<div class="akool-rejections">Rejected rows are never sent; each is in the results with its '
           'reason:<ul>']
    for g in groups[:MAX_GROUPS]:
        rows = [str(r) for r in g["rows"][:MAX_ROWS]]
        more_rows = g["count"] - len(rows)
        where = ", ".join(rows) + (f" +{more_rows:,} more" if more_rows > 0 else "")
        examples = g["examples"][:MAX_EXAMPLES]
        more_ex = len(g["examples"]) - len(examples)
        got = (f' <span class="akool-examples">(e.g. {e(", ".join(examples))}'
               f'{f" +{more_ex:,} more values" if more_ex > 0 else ""})</span>') if examples else ""
        out.append(f'<li class="akool-problem"><span class="akool-rejected-count">{_plural(g["count"], "row")}</span>'
                   f' <span class="akool-rejected-rows">(row {e(where)})</span>: {e(g["reason"])}{got}</li>')
    hidden = groups[MAX_GROUPS:]
    if hidden:
        n = sum(g["count"] for g in hidden)
        out.append(f'<li class="akool-problem akool-more">+{len(hidden):,} more reasons ({_plural(n, "row")}): '
                   f'filter the results by "problems" after a run, or see <code>app.plan.rejections()</code></li>')
    out.append("</ul></div>")
    return "".join(out)


def estimate_html(plan: Any, known: Known | None = None, *, usd_per_credit: float = 0.04,
                  observed: tuple[float | None, int] = (None, 0), probe: float | None = None) -> str:
    """Validation and cost estimate before anything is spent (see the module docstring)."""
    known = known if known is not None else Known()
    n = EstimateNumbers.of(plan, known)
    rows = [("Rows", f"{n.total:,}"), ("Valid", f"{n.valid:,}")]
    if n.duplicates:
        rows.append(("Identical to an earlier row", f"{n.duplicates:,} (sent once, sharing its result)"))
    rows.append(("Rejected", f'<span class="{"akool-problem" if n.rejected else ""}">{n.rejected:,}</span>'))
    if known:
        rows.append(("Already in the ledger", f"{n.known.count:,} (not sent again)"))
    rows.append(("New spend (estimate)", _cost_text(n, usd_per_credit)))
    if known:
        rows.append(("Already paid", f"{format_credits(known.paid)} credits (earlier runs; not charged again)"))
    out = ['<table class="akool-kv akool-estimate-table">']
    out += [f'<tr><td>{k}</td><td class="akool-estimate-{k.split()[0].lower()}"><b>{v}</b></td></tr>'
            for k, v in rows]
    out.append("</table>")
    out.append(_source_note(n, observed, probe))
    if known:
        states = ", ".join(f"{c:,} {s}" for s, c in known.states.items())
        out.append(f'<div class="akool-resume">The ledger already knows {known.count:,} of these rows ({e(states)}): '
                   f'Run takes them over without paying again.</div>')
    out.append(_rejections_html(group_rejections(plan)))
    return "".join(out)
