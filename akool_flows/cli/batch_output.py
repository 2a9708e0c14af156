"""What the batch commands print: the plan, a results table, the summary.

Everything shown comes partly from the user's file or from Akool (cells, column names, error
texts, verdicts). Terminal control characters in it - ESC sequences that clear the screen, retitle
the window or hide text, other C0/C1 controls, bidi overrides that reverse what is read - are
printed as visible escapes (``\\x1b``, ``\\u202e``) by `visible`, never raw.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from typing import Any

from akool_flows.api.jobs import OUTCOMES

# C0 and C1 controls, DEL, bidi embeddings/overrides/isolates/marks, line and paragraph separators.
_OTHERS = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE = re.compile(f"[\x00-\x1f{_OTHERS}]")
_UNSAFE_BUT_LINES = re.compile(f"[\x00-\x08\x0b-\x1f{_OTHERS}]")  # keeps tab and newline


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: Any, *, keep_lines: bool = False) -> str:
    """``text`` with every terminal control character shown as an escape; ``keep_lines`` keeps
    newlines and tabs (multi-line messages)."""
    pattern = _UNSAFE_BUT_LINES if keep_lines else _UNSAFE
    return pattern.sub(_escape, str(text))


def _cells(text: str) -> int:
    """Terminal columns `text` takes: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def clip(value: Any, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = visible(" ".join(str(value).split()))
    if _cells(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = _cells(ch)
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _pad(text: str, width: int) -> str:
    return text + " " * max(0, width - _cells(text))


def format_table(headers: list[str], rows: list[list[Any]], widths: list[int] | None = None) -> str:
    """A plain fixed-width table (no dependency, readable in any log; wide characters aligned)."""
    widths = widths or [40] * len(headers)
    cells = [[clip(v, w) for v, w in zip(r, widths)] for r in rows]
    cols = [max([_cells(h)] + [_cells(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(_pad(h, c) for h, c in zip(headers, cols)).rstrip()
    rule = "  ".join("-" * c for c in cols)
    body = ["  ".join(_pad(v, c) for v, c in zip(r, cols)).rstrip() for r in cells]
    return "\n".join([line, rule, *body])


def print_plan(plan: Any, out: Any) -> None:
    dupes = (f", {plan.duplicate_count} identical to an earlier row (sent once, sharing its result)"
             if plan.duplicate_count else "")
    print(f"{plan.kind.title}: {len(plan)} rows, {plan.valid_count} valid, {plan.rejected_count} rejected{dupes}",
          file=out)
    for rej in plan.rejections(limit=5):
        rows = ", ".join(map(str, rej["first_rows"])) + (", ..." if rej["count"] > len(rej["first_rows"]) else "")
        print(f"  rejected {rej['count']} x  {clip(rej['error'], 110)}  (rows {visible(rows)})", file=out)
    print(f"Estimated cost: {visible(plan.estimate.describe())}", file=out)


def _verdict_field(result: Any) -> str | None:
    from akool_flows.api.kinds import get_kind

    return get_kind(result.summary["kind"]).verdict_field


def print_results(result: Any, args: Any, out: Any) -> None:
    if args.show <= 0:
        return
    df = result.results
    verdict = _verdict_field(result)
    shown = df.head(args.show)
    if verdict:  # the answer is a verdict, not a file: show it next to the input it judges
        text_col = getattr(args, "column", None)
        text_col = text_col if text_col in df.columns else (f"input_{text_col}" if text_col else None)
        headers = ["row", "content", "outcome", f"{verdict} / error"]
        rows = [[r["input_index"], r.get(text_col) if text_col else None, r["outcome"],
                 r[verdict] if r["outcome"] == "completed" else r["error_message"]]
                for r in shown.to_dict("records")]
        widths = [6, 48, 10, 60]
    else:
        headers = ["row", "outcome", "job_id", "result / error"]
        rows = [[r["input_index"], r["outcome"], r["job_id"],
                 r["result_url"] if r["outcome"] == "completed" else r["error_message"]]
                for r in shown.to_dict("records")]
        widths = [6, 10, 26, 70]
    print("", file=out)
    print(format_table(headers, rows, widths), file=out)
    total = result.summary.get("rows", len(df))  # a run in chunks keeps only the first rows in memory
    if total > len(shown):
        print(f"... {total - len(shown)} more row(s) in {visible(args.out)}", file=out)


def print_summary(result: Any, out: Any, cost_log: str | None = None) -> None:
    s = result.summary
    counts = s["counts"]
    rows = [[name.replace("_", " "), counts.get(name, 0)] for name in OUTCOMES if counts.get(name, 0)]
    print("", file=out)
    print(format_table(["outcome", "rows"], rows, [12, 10]), file=out)
    verdict = _verdict_field(result)
    if verdict and counts.get("completed"):
        verdicts = s.get("verdicts") or result.results.loc[result.results["outcome"] == "completed",
                                                            verdict].value_counts().to_dict()
        print("Verdicts: " + ", ".join(f"{clip(name, 40)} {n}" for name, n in verdicts.items()), file=out)
    est = s["estimate"]
    already = s.get("credits_already_paid") or 0.0
    split = (f"{s['credits'] - already:,.2f} new this run, {already:,.2f} already paid in earlier runs; "
             if already else "")
    print(f"\nCost: {s['credits']:,.2f} credits (~{s['usd']:,.2f} USD at {s['usd_per_credit']} USD/credit); {split}"
          f"{s['credits_reported']:,.2f} reported by Akool; estimated before the run: "
          f"{est['total_credits']:,.2f}" + (f" + {est['unknown_rows']} row(s) of unknown price"
                                            if est["unknown_rows"] else ""), file=out)
    if s.get("balance_before") is not None:
        print(f"Account balance before the run: {s['balance_before']:,.2f} credits", file=out)
    print(visible(f"Wall time {s['wall_seconds']:,.1f}s, {s['api_calls']} API calls, batch {s['batch_id']}, "
                  f"ledger {s['ledger']}" + (f", results {s['results_path']}" if s.get("results_path") else "")
                  + (f", cost log {cost_log}" if cost_log else "")), file=out)
    if s["stopped_by"] == "budget":
        print(f"Stopped by the budget ({s['budget_credits']} credits): the remaining rows are 'cancelled'; "
              "rerun with a larger --budget-credits to continue.", file=out)
    elif s["stopped_by"] == "quota":
        print("Stopped: the account is out of credits. Top it up and rerun the same command.", file=out)
    elif s["stopped_by"] == "auth":
        print("Stopped: Akool refused the credentials (check AKOOL_API_TOKEN / AKOOL_API_KEY / "
              "AKOOL_CLIENT_ID+AKOOL_CLIENT_SECRET).", file=out)
    elif s["stopped_by"] == "lease":
        print(visible(f"Stopped: {s['stop_message']}. Nothing more was sent by this run."), file=sys.stderr)
    elif s["stopped_by"] == "error":
        print(visible(f"Stopped: {s['stop_message']}. Fix the cause (disk space, permissions) and rerun the same "
                      "command: finished rows are kept and running jobs are collected."), file=sys.stderr)
    for item in s.get("unsaved_job_ids") or []:
        print(f"KEEP THIS: job {visible(item['job_id'])} (row {item['row_key']}) was created but could not be "
              "written to the ledger; it is in the results file if that could be written.", file=sys.stderr)
    if s.get("results_error"):
        print(visible(f"error: {s['results_error']}"), file=sys.stderr)
    if counts.get("uncertain"):
        print(f"{counts['uncertain']} row(s) are uncertain: their create call was sent but its answer was lost, "
              "so Akool may or may not have created (and charged) the job. See attempt_at in the results; "
              "rerun with --resubmit-uncertain to submit them again (this may pay twice).", file=out)
