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
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from akool_flows.cli.batch_input import (
    InputFileError,
    TableChunks,
    check_column,
    check_output_paths,
    parse_assignments,
    read_table,
    runs_in_chunks,
)
from akool_flows.cli.batch_output import (
    print_plan,
    print_results,
    print_summary,
    visible,
)

EXIT_INTERRUPTED = 130
_TYPES = {"image": 1, "video": 2, "audio": 3, "text": 4}


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
    g.add_argument("--cost-log", metavar="PATH", help="also write the per-row cost log (.csv or .parquet)")
    g.add_argument("--ledger", metavar="PATH",
                   help="SQLite ledger; rerunning the same command with it resumes (default: one per input file "
                        "in the user's state directory, $AKOOL_FLOWS_STATE_DIR or ~/.local/state/akool-flows)")
    g.add_argument("--batch-id", metavar="ID", help="ledger key of the batch (default: a hash of the input)")
    g.add_argument("--resubmit-uncertain", action="store_true",
                   help="resubmit rows whose earlier create call may or may not have reached Akool "
                        "(this can pay twice for them)")
    g.add_argument("--download", metavar="DIR", help="download result files to DIR (or an fsspec URL), "
                                                     "with sha256 checksums in the results")
    g.add_argument("--download-follow-redirects", action="store_true",
                   help="follow redirects of result URLs to other hosts (e.g. a CDN); default: same host only")
    g.add_argument("--download-deadline", type=float, default=300.0, metavar="SECONDS",
                   help="give up on a result file after this long (default 300); the row keeps its URL")
    g.add_argument("--stage", metavar="URL",
                   help="upload files named in URL fields (local paths, s3://... URIs) to this fsspec location "
                        "(e.g. s3://bucket/prefix; credentials as the filesystem reads them, e.g. AWS_* variables) "
                        "just before their job and send a signed URL; 'sandbox:' (the default with --sandbox) "
                        "stages to the embedded sandbox")
    g.add_argument("--stage-expiry", type=float, default=24 * 3600.0, metavar="SECONDS",
                   help="how long a staged file's signed URL stays valid (default 86400)")
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
    g.add_argument("--strict-fields", action="store_true",
                   help="refuse request fields the docs do not list (default: send them as given, with a warning)")
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
    t.add_argument("--one-create-per-video", action="store_true",
                   help="one create call per video for all its target languages (Akool answers one job per "
                        "language); results still have one row per video and language")
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
    from akool_flows.batch import (
        BatchOptions,
        Ledger,
        ProgressPrinter,
        arun_batch,
        plan_batch,
        write_table,
    )
    from akool_flows.batch.artifacts import download_policy
    from akool_flows.batch.chunked import arun_chunks
    from akool_flows.batch.plan_stream import summarize_plan
    from akool_flows.batch.results import EXIT_BAD_INPUT
    from akool_flows.batch.state_dir import default_ledger_path

    if not args.download_deadline > 0:
        raise InputFileError(f"--download-deadline {args.download_deadline}: must be > 0 seconds")

    if not args.dry_run and not args.out:
        raise InputFileError("--out PATH is required (where the results go), or use --dry-run")
    for option, value in (("--out", args.out), ("--cost-log", args.cost_log)):
        if value and Path(value).suffix.lower() not in (".csv", ".parquet", ".pq"):
            raise InputFileError(f"{option} {value!r}: use a .csv or .parquet file name")
    try:
        ledger_path = Path(args.ledger) if args.ledger else default_ledger_path(args.input, create=not args.dry_run)
    except ValueError as exc:  # AKOOL_FLOWS_STATE_DIR is not usable
        raise InputFileError(str(exc)) from None
    check_output_paths(args.input, [("--out", args.out), ("--cost-log", args.cost_log),
                                    ("--ledger", ledger_path)])
    cost_table = {kind: args.cost} if args.cost is not None else None
    # The embedded sandbox holds staged files itself: local paths just work with --sandbox.
    stage = args.stage or ("sandbox:" if args.sandbox else None)
    out = sys.stdout
    with _environment(args) as (client, store):
        if prepare is not None:
            df = prepare(client)
        with (Ledger(ledger_path) if not args.dry_run or ledger_path.exists() else contextlib.nullcontext()) as led:
            plan_kwargs = dict(columns=columns, defaults=defaults, cost_table=cost_table, durations=durations,
                               dedupe=not args.allow_duplicates, max_cell_chars=args.max_cell_chars, stage=stage,
                               strict_fields=args.strict_fields)
            chunked = isinstance(df, TableChunks) and (args.dry_run or runs_in_chunks(args, kind, df))
            if chunked:  # the figures, the input a chunk at a time
                plan = summarize_plan(df, kind, ledger=str(ledger_path) if led is not None else None, workers=0,
                                      **plan_kwargs)
            else:
                if isinstance(df, TableChunks):
                    df = df.read_all()
                plan = plan_batch(df, kind, ledger=led, **plan_kwargs)
        print_plan(plan, out)
        print(visible(f"Ledger: {ledger_path}") + ("" if args.ledger else
              " (this input's own; the same command from any directory resumes from it)"), file=out)
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
            progress=printer, cancel=cancel, strict=args.strict, lease_ttl=args.lease_ttl, stage=stage,
            stage_expiry=args.stage_expiry).checked()
        # The engine builds the downloader inside the run; the policy reaches it through the context.
        if chunked:
            run = arun_chunks(df, kind, results_path=args.out, ledger=str(ledger_path), client=client, options=options,
                              cost_log_path=args.cost_log, estimate=plan.estimate, **plan_kwargs)
        else:
            run = arun_batch(plan, client=client, batch_id=args.batch_id, ledger=str(ledger_path), options=options)
        with _graceful_interrupt(cancel), download_policy(allow_cross_host_redirects=args.download_follow_redirects,
                                                          deadline=args.download_deadline, cancel=cancel):
            result = asyncio.run(_closing(client, run))
        if args.cost_log and not chunked:
            write_table(result.cost_log, args.cost_log)
        print_results(result, args, out)
        print_summary(result, out, cost_log=args.cost_log)
        staged = result.summary.get("staged_files")
        if staged and any(staged[k] for k in ("uploaded", "signed", "reused")):
            print(visible(f"Staged files ({staged['target']}): {staged['uploaded']} uploaded, {staged['signed']} "
                          f"signed again, {staged['reused']} reused"), file=out)
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


# --- commands --------------------------------------------------------------------------------------

def _guard(fn: Any) -> Any:
    """Turn every expected failure into one clear line on stderr and exit 2 (never a traceback)."""

    def wrapper(args: argparse.Namespace) -> int:
        from akool_flows.api.errors import AkoolError
        from akool_flows.batch import LedgerError

        try:
            return fn(args)
        # Messages quote the input (column names, cells) and Akool: never raw control characters.
        except (InputFileError, LedgerError, AkoolError) as exc:
            print(visible(f"error: {exc}", keep_lines=True), file=sys.stderr)
        except OSError as exc:
            print(visible(f"error: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")), file=sys.stderr)
        except KeyboardInterrupt:
            print("\naborted; rerun the same command to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        return 2

    return wrapper


@_guard
def run_moderate(args: argparse.Namespace) -> int:
    df = TableChunks(args.input, args.encoding)
    check_column(df, args.column, "--column")
    if args.duration_column:
        check_column(df, args.duration_column, "--duration-column")
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
    check_column(df, args.url_column, "--url-column")

    def prepare(client: Any) -> Any:
        languages = None
        if client is not None:
            sync = _sync_client_for_languages(args, client)
            try:
                languages = sync.languages()
            finally:
                sync.close()
        out = translate_catalog(df, args.url_column, args.source, args.to, args.lipsync, languages=languages,
                                one_create_per_video=args.one_create_per_video)
        out.index = out.index + 1
        out.index.name = "row"
        return out

    return _execute(args, "video_translation", df, columns=None, prepare=prepare)


@_guard
def run_generic(args: argparse.Namespace) -> int:
    from akool_flows.api.kinds import get_kind

    kind = get_kind(args.kind)
    df = TableChunks(args.input, args.encoding)
    mapping = parse_assignments(args.map, "--map", json_values=False)
    for column in mapping.values():
        check_column(df, column, "--map")
    defaults = parse_assignments(args.set, "--set", json_values=True)
    columns = None
    if mapping:
        columns = {**{c: c for c in df.columns if c in kind.field_names}, **mapping}
    return _execute(args, kind.name, df, columns=columns, defaults=defaults)
