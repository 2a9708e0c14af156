"""`akool-flows moderate | translate | batch`: run a CSV through the batch engine.

    akool-flows moderate comments.csv --column text --type text --out results.csv
    akool-flows translate videos.csv --url-column url --source en --to fr,de,es --out results.csv
    akool-flows batch talking_photo inputs.csv --map talking_photo_url=photo --set audio_url=https://... --out r.csv

Exit status: 0 every row fine, 1 some rows failed / uncertain / timed out / cancelled (rejected
rows too with --strict), 2 bad input, credentials or options, 3 stopped by the budget or by an
empty account, 130 interrupted (Ctrl-C; rerun the same command to resume).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import signal
import sys
import threading
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

EXIT_INTERRUPTED = 130
_TYPES = {"image": 1, "video": 2, "audio": 3, "text": 4}


class InputFileError(Exception):
    """The input file cannot be read as a table (message is shown as is, exit 2)."""


# --- argument parsing ------------------------------------------------------------------------------

def _common(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("run")
    g.add_argument("--out", metavar="PATH", help="results file (.csv, spreadsheet-safe, or .parquet); "
                                                 "written as rows finish and in full at the end")
    g.add_argument("--dry-run", action="store_true", help="validate and estimate the cost only; send nothing")
    g.add_argument("--budget-credits", type=float, metavar="CREDITS",
                   help="stop submitting before the batch would spend more than this")
    g.add_argument("--max-credits-per-row", type=float, metavar="CREDITS",
                   help="with --budget-credits: the ceiling reserved for a row whose price is only known after "
                        "Akool runs it (a text moderation of a document URL, a kind without a published price)")
    g.add_argument("--lease-ttl", type=float, default=60.0, metavar="SECONDS", help=argparse.SUPPRESS)
    g.add_argument("--cost", type=float, metavar="CREDITS",
                   help="credits per job for kinds whose price the docs do not publish")
    g.add_argument("--concurrency", type=int, default=32, help="HTTP requests in flight at once (default 32)")
    g.add_argument("--rps", type=float, metavar="N", help="at most N requests per second")
    g.add_argument("--poll-interval", type=float, metavar="SECONDS",
                   help="seconds between status polls of a running job (default 5; 0.5 with --sandbox)")
    g.add_argument("--job-timeout", type=float, metavar="SECONDS",
                   help="stop waiting for a job after this long (it is reported timed_out; rerun to collect)")
    g.add_argument("--ledger", default="akool-ledger.sqlite", metavar="PATH",
                   help="SQLite ledger; rerunning the same command with it resumes (default akool-ledger.sqlite)")
    g.add_argument("--batch-id", metavar="ID", help="ledger key of the batch (default: a hash of the input)")
    g.add_argument("--resubmit-uncertain", action="store_true",
                   help="resubmit rows whose earlier create call may or may not have reached Akool "
                        "(this can pay twice for them)")
    g.add_argument("--download", metavar="DIR", help="download result files to DIR (or an fsspec URL), "
                                                     "with sha256 checksums in the results")
    g.add_argument("--webhook-url", metavar="URL", help="send this webhookUrl with every create")
    g.add_argument("--events", metavar="STORE_URL",
                   help="webhook event store the receiver writes to (e.g. sqlite:///akool-webhooks.sqlite); "
                        "jobs complete from their events, polling is the fallback")
    g.add_argument("--sandbox", action="store_true",
                   help="run against an embedded Akool sandbox (no account, no cost)")
    g.add_argument("--sandbox-job-seconds", type=float, default=1.0, metavar="SECONDS",
                   help="with --sandbox: how long each job takes (default 1)")
    g.add_argument("--allow-duplicates", action="store_true",
                   help="submit identical rows separately (default: reject copies of an earlier row)")
    g.add_argument("--max-cell-chars", type=int, default=100_000, metavar="N",
                   help="reject rows with a text field longer than N characters (default 100000)")
    g.add_argument("--encoding", default="utf-8", help="input file encoding (default utf-8)")
    g.add_argument("--strict", action="store_true", help="exit 1 when any row was rejected")
    g.add_argument("--show", type=int, default=20, metavar="N", help="result rows to print (default 20; 0 = none)")
    g.add_argument("--quiet", action="store_true", help="no progress output")


def register(sub: Any) -> None:
    m = sub.add_parser("moderate", help="moderate a CSV of texts or media URLs (Jarvis)",
                       description="Moderate every row of a CSV with Jarvis: Compliant / Non-Compliant / Unknown.")
    m.add_argument("input", help="CSV or Parquet file")
    m.add_argument("--column", required=True, help="column holding the text (or the media URL)")
    m.add_argument("--type", required=True, choices=list(_TYPES), help="what the column holds")
    m.add_argument("--language", help="ISO-639-1 code of the content, e.g. en")
    m.add_argument("--rules", metavar="TEXT", help="your own moderation rules, in words (Akool's `input`)")
    m.add_argument("--duration-column", metavar="COLUMN", help="media seconds, to price audio/video")
    _common(m)
    m.set_defaults(func=run_moderate)

    t = sub.add_parser("translate", help="translate a catalog of videos into several languages",
                       description="One video_translation job per video and target language.")
    t.add_argument("input", help="CSV or Parquet file")
    t.add_argument("--url-column", required=True, help="column holding the video URLs")
    t.add_argument("--source", required=True, help="language of the videos, e.g. en")
    t.add_argument("--to", required=True, metavar="LANGS", help="comma-separated target languages, e.g. fr,de,es")
    t.add_argument("--lipsync", action="store_true", help="also lip-sync the translated videos")
    _common(t)
    t.set_defaults(func=run_translate)

    b = sub.add_parser("batch", help="run any job kind over a CSV (see `akool-flows kinds`)",
                       description="One job of KIND per row. Columns named as the docs' fields are used as is; "
                                   "--map renames, --set adds constants.")
    b.add_argument("kind", help="job kind, e.g. tts, talking_photo, faceswap_image")
    b.add_argument("input", help="CSV or Parquet file")
    b.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="constant field for every row (JSON values allowed: --set type=4, --set lipsync=true)")
    b.add_argument("--map", action="append", default=[], metavar="FIELD=COLUMN",
                   help="take FIELD from COLUMN")
    _common(b)
    b.set_defaults(func=run_generic)


# --- input -----------------------------------------------------------------------------------------

def read_table(path: str, encoding: str = "utf-8") -> Any:
    """A CSV (all cells as text) or Parquet file as a DataFrame indexed by data row number (1, 2, ...).

    Every problem a user can cause - missing file, empty file, bytes in another encoding, broken
    quoting - becomes an `InputFileError` with a message saying what and where.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{path}: no such file")
    if p.is_dir():
        raise InputFileError(f"{path}: is a directory, expected a CSV or Parquet file")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
    else:
        raw = p.read_bytes()
        if not raw.strip():
            raise InputFileError(f"{path}: the file is empty; expected a header row and one row per job")
        try:
            text = raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise InputFileError(
                f"{path}: not valid {encoding}: byte 0x{raw[exc.start]:02x} at line {line}, column {col}. "
                "Re-save the file as UTF-8, or pass its encoding, e.g. --encoding cp1252") from None
        except LookupError:
            raise InputFileError(f"--encoding {encoding!r} is not an encoding Python knows") from None
        if "\x00" in text:
            line = text[:text.index("\x00")].count("\n") + 1
            raise InputFileError(f"{path}: contains NUL bytes (line {line}); is it really a CSV text file?")
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                             skip_blank_lines=False)
        except pd.errors.EmptyDataError:
            raise InputFileError(f"{path}: no header row; expected a header row and one row per job") from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise InputFileError(f"{path}: not a well-formed CSV: {exc}") from None
    if len(df.columns) == 0:
        raise InputFileError(f"{path}: no columns")
    if len(df) == 0:
        raise InputFileError(f"{path}: has a header ({', '.join(map(str, df.columns))}) but no rows")
    df.index = pd.RangeIndex(1, len(df) + 1, name="row")
    return df


def _check_column(df: Any, column: str, option: str) -> None:
    if column not in df.columns:
        raise InputFileError(f"{option} {column!r}: no such column; the input has: "
                             f"{', '.join(map(str, df.columns))}")


def _parse_assignments(items: list[str], option: str, json_values: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputFileError(f"{option} {item!r}: expected FIELD={'VALUE' if json_values else 'COLUMN'}")
        if json_values:
            try:
                out[name.strip()] = json.loads(value)
            except ValueError:
                out[name.strip()] = value
        else:
            out[name.strip()] = value
    return out


# --- running ---------------------------------------------------------------------------------------

@contextlib.contextmanager
def _environment(args: argparse.Namespace) -> Iterator[tuple[Any, Any]]:
    """(client, event store) for the run: the embedded sandbox, or credentials from AKOOL_*."""
    from akool_flows.api import AsyncAkoolClient
    from akool_flows.api.errors import ValidationError

    store = None
    if args.events:
        from akool_flows.webhook import WebhookEventStore

        store = WebhookEventStore(args.events)
    connections = max(64, args.concurrency + 8)
    try:
        if args.sandbox:
            from akool_flows.sandbox import Sandbox, SandboxConfig

            job_seconds = max(0.0, args.sandbox_job_seconds)
            with Sandbox(SandboxConfig(queue_seconds=min(0.2, job_seconds), job_seconds=job_seconds)) as sb:
                yield AsyncAkoolClient(base_url=sb.base_url, detect_url=sb.detect_url, token=sb.token,
                                       max_connections=connections), store
        else:
            try:
                client = AsyncAkoolClient.from_env(max_connections=connections)
            except ValidationError:
                if not args.dry_run:
                    raise
                client = None  # a dry run needs no account; it just cannot show the balance
            yield client, store
    finally:
        if store is not None:
            store.close()


def _sync_client_for_languages(args: argparse.Namespace, client: Any) -> Any:
    from akool_flows.api import AkoolClient

    return AkoolClient.from_client(client)


def _execute(args: argparse.Namespace, kind: str, df: Any, *, columns: Any = None,
             defaults: dict[str, Any] | None = None, durations: str | None = None,
             prepare: Any = None) -> int:
    """Plan, print the estimate, and (unless --dry-run) run; returns the exit status."""
    import asyncio

    from akool_flows.api.errors import AkoolError
    from akool_flows.batch import BatchOptions, Ledger, ProgressPrinter, arun_batch, plan_batch
    from akool_flows.batch.results import EXIT_BAD_INPUT

    if not args.dry_run and not args.out:
        raise InputFileError("--out PATH is required (where the results go), or use --dry-run")
    if args.out and Path(args.out).suffix.lower() not in (".csv", ".parquet", ".pq"):
        raise InputFileError(f"--out {args.out!r}: use a .csv or .parquet file name")
    cost_table = {kind: args.cost} if args.cost is not None else None
    out = sys.stdout
    with _environment(args) as (client, store):
        if prepare is not None:
            df = prepare(client)
        ledger_path = Path(args.ledger)
        with (Ledger(ledger_path) if not args.dry_run or ledger_path.exists() else contextlib.nullcontext()) as led:
            plan = plan_batch(df, kind, columns=columns, defaults=defaults, cost_table=cost_table,
                              durations=durations, dedupe=not args.allow_duplicates,
                              max_cell_chars=args.max_cell_chars, ledger=led)
        _print_plan(plan, out)
        if plan.valid_count == 0:
            print("error: no valid rows to submit", file=sys.stderr)
            return EXIT_BAD_INPUT
        if args.dry_run:
            with contextlib.suppress(AkoolError, OSError, ValueError, AttributeError):
                balance = asyncio.run(_balance(client))
                print(f"Account balance: {balance:,.2f} credits", file=out)
            print("Dry run: nothing was sent.", file=out)
            return 0
        poll = args.poll_interval if args.poll_interval is not None else (0.5 if args.sandbox else 5.0)
        cancel = threading.Event()
        printer = None if args.quiet else ProgressPrinter(sys.stderr)
        options = BatchOptions(
            concurrency=args.concurrency, max_requests_per_second=args.rps, poll_interval=poll,
            job_timeout=args.job_timeout, budget_credits=args.budget_credits,
            max_credits_per_row=args.max_credits_per_row, resubmit_uncertain=args.resubmit_uncertain,
            events=store, webhook_url=args.webhook_url, download_dir=args.download, results_path=args.out,
            progress=printer, cancel=cancel, strict=args.strict, lease_ttl=args.lease_ttl).checked()
        with _graceful_interrupt(cancel):
            result = asyncio.run(_closing(client, arun_batch(plan, client=client, batch_id=args.batch_id,
                                                             ledger=args.ledger, options=options)))
        _print_results(result, args, out)
        _print_summary(result, out)
        if cancel.is_set():
            if args.sandbox:
                print("Interrupted. (The embedded sandbox stops with this command, so a rerun starts a new "
                      "sandbox batch; against the real API a rerun resumes this one.)", file=out)
            else:
                print("Interrupted: rerun the same command to resume (finished rows are kept, running jobs are "
                      "collected, nothing is paid twice).", file=out)
            return EXIT_INTERRUPTED
        return result.exit_status


async def _closing(client: Any, coro: Any) -> Any:
    # The client's HTTP session lives in this event loop: close it here, not after.
    try:
        return await coro
    finally:
        await client.aclose()


async def _balance(client: Any) -> float:
    try:
        return await client.credit_info()
    finally:
        await client.aclose()


@contextlib.contextmanager
def _graceful_interrupt(cancel: threading.Event) -> Iterator[None]:
    """First Ctrl-C: stop submitting and write the results; a second one aborts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if cancel.is_set():
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        cancel.set()
        print("\nStopping: no new jobs; writing results (Ctrl-C again to abort)...", file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# --- output ----------------------------------------------------------------------------------------

def _cells(text: str) -> int:
    """Terminal columns `text` takes: East Asian wide and full-width characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _clip(value: Any, width: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    text = " ".join(str(value).split())
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
    cells = [[_clip(v, w) for v, w in zip(r, widths)] for r in rows]
    cols = [max([_cells(h)] + [_cells(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(_pad(h, c) for h, c in zip(headers, cols)).rstrip()
    rule = "  ".join("-" * c for c in cols)
    body = ["  ".join(_pad(v, c) for v, c in zip(r, cols)).rstrip() for r in cells]
    return "\n".join([line, rule, *body])


def _print_plan(plan: Any, out: Any) -> None:
    dupes = (f", {plan.duplicate_count} identical to an earlier row (sent once, sharing its result)"
             if plan.duplicate_count else "")
    print(f"{plan.kind.title}: {len(plan)} rows, {plan.valid_count} valid, {plan.rejected_count} rejected{dupes}",
          file=out)
    for rej in plan.rejections(limit=5):
        rows = ", ".join(map(str, rej["first_rows"])) + (", ..." if rej["count"] > len(rej["first_rows"]) else "")
        print(f"  rejected {rej['count']} x  {_clip(rej['error'], 110)}  (rows {rows})", file=out)
    print(f"Estimated cost: {plan.estimate.describe()}", file=out)


def _print_results(result: Any, args: argparse.Namespace, out: Any) -> None:
    if args.show <= 0:
        return
    df = result.results
    kind = result.summary["kind"]
    shown = df.head(args.show)
    if kind == "moderation":
        text_col = getattr(args, "column", None)
        text_col = text_col if text_col in df.columns else (f"input_{text_col}" if text_col else None)
        headers = ["row", "content", "outcome", "conclusion / error"]
        rows = [[r["input_index"], r.get(text_col) if text_col else None, r["outcome"],
                 r["conclusion"] if r["outcome"] == "completed" else r["error_message"]]
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
    if len(df) > len(shown):
        print(f"... {len(df) - len(shown)} more row(s) in {args.out}", file=out)


def _print_summary(result: Any, out: Any) -> None:
    s = result.summary
    counts = s["counts"]
    rows = [[name.replace("_", " "), counts.get(name, 0)] for name in
            ("completed", "failed", "rejected", "uncertain", "timed_out", "cancelled", "submitted")
            if counts.get(name, 0)]
    print("", file=out)
    print(format_table(["outcome", "rows"], rows, [12, 10]), file=out)
    if s["kind"] == "moderation" and counts.get("completed"):
        verdicts = result.results.loc[result.results["outcome"] == "completed", "conclusion"].value_counts()
        print("Verdicts: " + ", ".join(f"{name} {n}" for name, n in verdicts.items()), file=out)
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
    print(f"Wall time {s['wall_seconds']:,.1f}s, {s['api_calls']} API calls, batch {s['batch_id']}, "
          f"ledger {s['ledger']}" + (f", results {s['results_path']}" if s.get("results_path") else ""), file=out)
    if s["stopped_by"] == "budget":
        print(f"Stopped by the budget ({s['budget_credits']} credits): the remaining rows are 'cancelled'; "
              "rerun with a larger --budget-credits to continue.", file=out)
    elif s["stopped_by"] == "quota":
        print("Stopped: the account is out of credits. Top it up and rerun the same command.", file=out)
    elif s["stopped_by"] == "auth":
        print("Stopped: Akool refused the credentials (check AKOOL_API_TOKEN / AKOOL_API_KEY / "
              "AKOOL_CLIENT_ID+AKOOL_CLIENT_SECRET).", file=out)
    elif s["stopped_by"] == "lease":
        print(f"Stopped: {s['stop_message']}. Nothing more was sent by this run.", file=sys.stderr)
    elif s["stopped_by"] == "error":
        print(f"Stopped: {s['stop_message']}. Fix the cause (disk space, permissions) and rerun the same "
              "command: finished rows are kept and running jobs are collected.", file=sys.stderr)
    for item in s.get("unsaved_job_ids") or []:
        print(f"KEEP THIS: job {item['job_id']} (row {item['row_key']}) was created but could not be written to "
              "the ledger; it is in the results file if that could be written.", file=sys.stderr)
    if s.get("results_error"):
        print(f"error: {s['results_error']}", file=sys.stderr)
    if counts.get("uncertain"):
        print(f"{counts['uncertain']} row(s) are uncertain: their create call was sent but its answer was lost, "
              "so Akool may or may not have created (and charged) the job. See attempt_at in the results; "
              "rerun with --resubmit-uncertain to submit them again (this may pay twice).", file=out)


# --- commands --------------------------------------------------------------------------------------

def _guard(fn: Any) -> Any:
    """Turn every expected failure into one clear line on stderr and exit 2 (never a traceback)."""

    def wrapper(args: argparse.Namespace) -> int:
        from akool_flows.api.errors import AkoolError
        from akool_flows.batch import LedgerError

        try:
            return fn(args)
        except InputFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except LedgerError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except AkoolError as exc:
            print(f"error: {exc}", file=sys.stderr)
        except OSError as exc:
            print(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        except KeyboardInterrupt:
            print("\naborted; rerun the same command to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        return 2

    return wrapper


@_guard
def run_moderate(args: argparse.Namespace) -> int:
    df = read_table(args.input, args.encoding)
    _check_column(df, args.column, "--column")
    if args.duration_column:
        _check_column(df, args.duration_column, "--duration-column")
    defaults: dict[str, Any] = {"type": _TYPES[args.type]}
    if args.language:
        defaults["language"] = args.language
    if args.rules:
        defaults["input"] = args.rules
    return _execute(args, "moderation", df, columns={"content": args.column}, defaults=defaults,
                    durations=args.duration_column)


@_guard
def run_translate(args: argparse.Namespace) -> int:
    from akool_flows.batch import translate_catalog

    df = read_table(args.input, args.encoding)
    _check_column(df, args.url_column, "--url-column")

    def prepare(client: Any) -> Any:
        languages = None
        if client is not None:
            sync = _sync_client_for_languages(args, client)
            try:
                languages = sync.languages()
            finally:
                sync.close()
        out = translate_catalog(df, args.url_column, args.source, args.to, args.lipsync, languages=languages)
        out.index = out.index + 1
        out.index.name = "row"
        return out

    return _execute(args, "video_translation", df, columns=None, prepare=prepare)


@_guard
def run_generic(args: argparse.Namespace) -> int:
    from akool_flows.api.kinds import get_kind

    kind = get_kind(args.kind)
    df = read_table(args.input, args.encoding)
    mapping = _parse_assignments(args.map, "--map", json_values=False)
    for column in mapping.values():
        _check_column(df, column, "--map")
    defaults = _parse_assignments(args.set, "--set", json_values=True)
    columns = None
    if mapping:
        columns = {**{c: c for c in df.columns if c in kind.field_names}, **mapping}
    return _execute(args, kind.name, df, columns=columns, defaults=defaults)
