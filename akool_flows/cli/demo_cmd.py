"""`akool-flows demo`: bulk-moderate a CSV of user comments against the embedded sandbox.

    akool-flows demo                                   # examples/comments.csv -> results/moderation.csv
    akool-flows demo --input my.csv --text-column body --id-column id --concurrency 32

The whole main job, offline and free: every row is validated before anything is sent (empty
comments are rejected with the validation message and cost nothing), the estimated cost is
shown up front, valid rows are moderated concurrently through `AsyncAkoolClient` (bounded
concurrency), and every input row comes back - completed with Jarvis's conclusion, failed with
Akool's code and message, or rejected - in a results table, a cost summary and a
spreadsheet-safe CSV. The sandbox runs in-process with a fast clock; no credential leaves it.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

#: Akool's published price: 0.1 credit = 0.004 USD (Jarvis table), i.e. 0.04 USD per credit.
USD_PER_CREDIT = 0.04
DEFAULT_INPUT = Path("examples/comments.csv")
DEFAULT_OUTPUT = Path("results/moderation.csv")
RESULT_COLUMNS = ("status", "conclusion", "reason", "credits", "usd", "job_id", "error_code")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `demo` to the `akool-flows` parser."""
    p = sub.add_parser(
        "demo",
        help="moderate examples/comments.csv against the embedded sandbox (offline, free)",
        description="Bulk-moderate a CSV of comments with Jarvis Moderator on the embedded Akool sandbox: "
                    "validate, estimate cost, run concurrently, print results and costs, write a "
                    "spreadsheet-safe results CSV.",
    )
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT, help=f"comments CSV (default {DEFAULT_INPUT})")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"results CSV (default {DEFAULT_OUTPUT})")
    p.add_argument("--text-column", default="text", help="column holding the comment text (default text)")
    p.add_argument("--id-column", default="comment_id", help="column identifying a row (default comment_id)")
    p.add_argument("--language", default=None, help="ISO-639-1 language hint sent with every comment, e.g. en")
    p.add_argument("--concurrency", type=int, default=16, help="jobs in flight at once (1-256, default 16)")
    p.add_argument("--job-seconds", type=float, default=0.5,
                   help="how long a sandbox job takes (default 0.5; Akool takes seconds to minutes)")
    p.set_defaults(func=run)


@dataclass
class RowResult:
    """One input row and what became of it."""

    row: dict[str, str]
    row_id: str
    status: str  # completed | failed | rejected
    conclusion: str = ""
    reason: str = ""
    credits: float = 0.0
    estimated: float = 0.0
    job_id: str = ""
    error_code: int | None = None

    def as_csv_row(self) -> dict[str, Any]:
        return {**self.row, "status": self.status, "conclusion": self.conclusion, "reason": self.reason,
                "credits": round(self.credits, 4), "usd": round(self.credits * USD_PER_CREDIT, 6),
                "job_id": self.job_id, "error_code": "" if self.error_code is None else self.error_code}


@dataclass
class DemoResult:
    results: list[RowResult]
    columns: list[str]
    seconds: float
    sandbox_stats: dict[str, Any] = field(default_factory=dict)

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def credits(self) -> float:
        return round(sum(r.credits for r in self.results), 6)

    @property
    def estimated_credits(self) -> float:
        return round(sum(r.estimated for r in self.results if r.status != "rejected"), 6)


class DemoInputError(ValueError):
    """The input CSV is missing or lacks the columns the demo needs."""


def read_rows(path: Path, text_column: str, id_column: str) -> tuple[list[dict[str, str]], list[str]]:
    """The CSV's rows (all values as text) and its columns; a clear error when unusable."""
    if not path.is_file():
        raise DemoInputError(f"input file not found: {path} (run from the repository root or pass --input)")
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        columns = list(reader.fieldnames or [])
        missing = [c for c in (text_column, id_column) if c not in columns]
        if missing:
            raise DemoInputError(f"{path}: missing column(s) {', '.join(missing)}; columns are: {', '.join(columns)}")
        rows = [{k: (v if v is not None else "") for k, v in row.items() if k is not None} for row in reader]
    return rows, columns


def _reason(detail: str | None) -> str:
    """Jarvis's `result` text, as one line: its findings without the final 'Result:' line."""
    if not detail:
        return ""
    lines = [ln.strip().removeprefix("- ") for ln in detail.splitlines()
             if ln.strip() and not ln.strip().lower().startswith("result:")]
    return "; ".join(lines)


def prepare(rows: list[dict[str, str]], *, text_column: str, id_column: str,
            language: str | None = None) -> list[RowResult]:
    """Validate every row before anything is sent: `pending` (with its estimated credits) or
    `rejected` (with the validation message)."""
    from akool_flows.api import get_kind
    from akool_flows.api.errors import ValidationError

    kind = get_kind("moderation")
    results = []
    for i, row in enumerate(rows):
        row_id = row.get(id_column) or f"row {i + 1}"
        fields = _fields(row, text_column, language)
        try:
            kind.validate(fields)
        except ValidationError as exc:
            results.append(RowResult(row, row_id, "rejected", reason=str(exc)))
            continue
        results.append(RowResult(row, row_id, "pending", estimated=kind.estimate_credits(fields) or 0.0))
    return results


def _fields(row: dict[str, str], text_column: str, language: str | None) -> dict[str, Any]:
    fields: dict[str, Any] = {"content": row.get(text_column, ""), "type": 4}
    if language:
        fields["language"] = language
    return fields


async def moderate(results: list[RowResult], *, env: dict[str, str], text_column: str,
                   language: str | None = None, concurrency: int = 16,
                   poll_interval: float = 0.1, timeout: float = 120.0) -> list[RowResult]:
    """Moderate the `pending` rows with at most `concurrency` jobs in flight; fills each result in."""
    from akool_flows.api import AsyncAkoolClient
    from akool_flows.api.errors import AkoolError

    sem = asyncio.Semaphore(concurrency)
    async with AsyncAkoolClient.from_env(env, max_connections=concurrency) as client:

        async def one(result: RowResult) -> None:
            async with sem:
                try:
                    job = await client.submit("moderation", **_fields(result.row, text_column, language))
                    result.job_id = job.job_id
                    st = await client.wait("moderation", job.job_id, poll_interval=poll_interval, timeout=timeout)
                except AkoolError as exc:
                    # A failed create keeps its job id empty; Akool's code and message say why.
                    result.status, result.error_code, result.reason = "failed", exc.code, str(exc)
                    return
            result.credits = st.credits or 0.0
            if st.ok:
                result.status, result.conclusion, result.reason = "completed", st.conclusion or "", _reason(st.detail)
            else:
                result.status, result.error_code = "failed", st.error_code
                result.reason = st.error_message or "the job failed"

        await asyncio.gather(*(one(r) for r in results if r.status == "pending"))
    return results


def write_results(path: Path, result: DemoResult) -> None:
    """The input columns plus the outcome columns, every text cell spreadsheet-safe."""
    from akool_flows.batch.export import neutralise

    path.parent.mkdir(parents=True, exist_ok=True)
    columns = [*result.columns, *(c for c in RESULT_COLUMNS if c not in result.columns)]
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[neutralise(c) for c in columns], extrasaction="ignore")
        writer.writeheader()
        for r in result.results:
            row = r.as_csv_row()
            writer.writerow({neutralise(c): neutralise(row.get(c, "")) for c in columns})
    tmp.replace(path)


def run_demo(input_path: Path = DEFAULT_INPUT, output_path: Path | None = DEFAULT_OUTPUT, *,
             text_column: str = "text", id_column: str = "comment_id", language: str | None = None,
             concurrency: int = 16, job_seconds: float = 0.5, out: IO[str] | None = None) -> DemoResult:
    """Run the demo end to end and print its report to `out` (stdout by default)."""
    from akool_flows.api.errors import ValidationError
    from akool_flows.sandbox import Sandbox, SandboxConfig

    out = out or sys.stdout
    if not 1 <= concurrency <= 256:
        raise ValidationError(f"concurrency must be between 1 and 256, got {concurrency}", field="concurrency")
    if not 0 < job_seconds <= 60:
        raise ValidationError(f"job_seconds must be in (0, 60], got {job_seconds}", field="job_seconds")
    rows, columns = read_rows(input_path, text_column, id_column)
    results = prepare(rows, text_column=text_column, id_column=id_column, language=language)
    valid = [r for r in results if r.status == "pending"]
    estimate = sum(r.estimated for r in valid)
    print(f"{input_path}: {len(rows)} comments, {len(valid)} valid, {len(rows) - len(valid)} rejected "
          f"before sending (they cost nothing).", file=out)
    print(f"Estimated cost: {estimate:.2f} credits = ${estimate * USD_PER_CREDIT:.4f} (Jarvis: 0.1 credit per "
          f"600 characters of text).", file=out)
    print(f"Moderating {len(valid)} comments on the embedded Akool sandbox, {concurrency} at a time...",
          file=out, flush=True)
    config = SandboxConfig(queue_seconds=min(0.1, job_seconds), job_seconds=job_seconds)
    started = time.monotonic()
    with Sandbox(config) as sb:
        asyncio.run(moderate(results, env=sb.env(), text_column=text_column, language=language,
                             concurrency=concurrency, poll_interval=max(0.05, job_seconds / 5)))
        stats = sb.stats()
    demo = DemoResult(results, columns, time.monotonic() - started, stats)
    print(file=out)
    print(results_table(demo), file=out)
    print(file=out)
    print(summary(demo), file=out)
    if output_path is not None:
        write_results(output_path, demo)
        print(f"\nResults: {output_path} ({len(results)} rows, spreadsheet-safe)", file=out)
    return demo


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 1] + "…"


def results_table(demo: DemoResult, reason_width: int = 72) -> str:
    headers = ["ID", "RESULT", "CREDITS", "REASON"]
    rows = [[_clip(r.row_id, 16), r.conclusion if r.status == "completed" else r.status,
             f"{r.credits:.1f}" if r.status != "rejected" else "-", _clip(r.reason, reason_width)]
            for r in demo.results]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    fmt = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(headers), fmt(["-" * w for w in widths]), *(fmt(row) for row in rows)])


def summary(demo: DemoResult) -> str:
    conclusions: dict[str, int] = {}
    for r in demo.results:
        if r.status == "completed":
            conclusions[r.conclusion or "?"] = conclusions.get(r.conclusion or "?", 0) + 1
    sent = len(demo.results) - demo.count("rejected")
    by_conclusion = ", ".join(f"{n} {c}" for c, n in sorted(conclusions.items(), key=lambda kv: (-kv[1], kv[0])))
    dupes = len(demo.sandbox_stats.get("duplicate_creates", {}) or {})
    lines = [
        f"Rows: {len(demo.results)} = {demo.count('completed')} completed ({by_conclusion or 'none'}) "
        f"+ {demo.count('failed')} failed + {demo.count('rejected')} rejected before sending",
        f"Cost: {demo.credits:.2f} credits = ${demo.credits * USD_PER_CREDIT:.4f} "
        f"(estimated before sending: {demo.estimated_credits:.2f} credits; ${USD_PER_CREDIT}/credit)",
        f"Jobs: {sent} sent, {demo.sandbox_stats.get('creates', sent)} created, {dupes} duplicates; "
        f"{demo.seconds:.1f} s",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from akool_flows.api.errors import ValidationError

    try:
        demo = run_demo(args.input, args.output, text_column=args.text_column, id_column=args.id_column,
                        language=args.language, concurrency=args.concurrency, job_seconds=args.job_seconds)
    except (DemoInputError, ValidationError) as exc:
        print(f"akool-flows demo: {exc}", file=sys.stderr)
        return 2
    return 0 if demo.count("failed") == 0 else 1
