"""`akool-flows demo` (what `make demo` runs): the main job, offline and free.

It is exactly

    akool-flows moderate examples/comments.csv --column text --type text --language en \
        --sandbox --ledger results/demo-ledger.sqlite --out results/moderation.csv

so the demo shows the real batch engine: every row validated before anything is sent, the cost
estimated up front, jobs run concurrently on the embedded sandbox, every row accounted for in a
results table, a cost summary and a spreadsheet-safe CSV.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

DEFAULT_INPUT = Path("examples/comments.csv")
DEFAULT_OUTPUT = Path("results/moderation.csv")


def demo_argv(input_path: Path, output: Path, *, job_seconds: float | None = None) -> list[str]:
    """The `moderate` command line the demo runs."""
    argv = ["moderate", str(input_path), "--column", "text", "--type", "text", "--language", "en",
            "--sandbox", "--ledger", str(output.parent / "demo-ledger.sqlite"), "--out", str(output)]
    if job_seconds is not None:
        argv += ["--sandbox-job-seconds", str(job_seconds)]
    return argv


def register(sub: Any) -> None:
    p = sub.add_parser(
        "demo", help="moderate examples/comments.csv against the embedded sandbox (offline, free)",
        description="Bulk-moderate a CSV of user comments with Jarvis on the embedded Akool sandbox. "
                    "Same as: " + " ".join(["akool-flows", *demo_argv(DEFAULT_INPUT, DEFAULT_OUTPUT)]))
    p.add_argument("--input", type=Path, default=DEFAULT_INPUT, help=f"comments CSV (default {DEFAULT_INPUT})")
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"results CSV (default {DEFAULT_OUTPUT})")
    p.add_argument("--job-seconds", type=float, default=None, help="how long a sandbox job takes")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from akool_flows.cli import main

    # The embedded sandbox is new on every run, so a ledger from an earlier demo names jobs it
    # never saw: start the demo's ledger afresh (real batches keep theirs to resume).
    (args.output.parent / "demo-ledger.sqlite").unlink(missing_ok=True)
    return main(demo_argv(args.input, args.output, job_seconds=args.job_seconds))
