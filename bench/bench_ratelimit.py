"""The engine against an account limit it is not told (issue 14).

`akool-flows sandbox` in its own process enforces ``--rate-limit`` requests/s per credential
(token bucket, one second of burst, 1005 when exceeded; 20 ms latency, jobs done 1 s after
creation). The batch (moderation, concurrency 64 as a maximum) runs in a separate process:

    .venv/bin/python bench/bench_ratelimit.py                          # 2,000 rows at 50, 100, 300/s
    .venv/bin/python bench/bench_ratelimit.py --rows 20000 --limits 300
    .venv/bin/python bench/bench_ratelimit.py --processes 2 --limits 100  # two processes, one account
    .venv/bin/python bench/bench_ratelimit.py --processes 2 --stagger 10 --limits 100  # the second 10 s late
    .venv/bin/python bench/bench_ratelimit.py --warm                   # start from the remembered pace

Per run: wall time, calls accepted per second vs the limit (during the run), share of calls
answered 1005, creates vs rows (nothing submitted twice), every row's outcome, and `uptime`.
The workers start their batches together (after Python start-up, which takes seconds under
load) or ``--stagger`` seconds apart; each samples its controller's accepted calls, so the
shares are those of the time both ran (``overlap_s``), not of the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_batch import SandboxProcess  # noqa: E402

from akool_flows.api import AsyncAkoolClient  # noqa: E402
from akool_flows.batch import arun_batch  # noqa: E402


async def one_batch(base_url: str, token: str, rows: int, tag: str, ledger: str, start_at: float) -> dict:
    """One batch in this process, started at ``start_at`` (unix time): what it sent and what came back."""
    df = pd.DataFrame({"text": [f"{tag} comment {i}, have a nice day" for i in range(rows)]})
    async with AsyncAkoolClient(base_url=base_url, token=token, max_connections=72) as client:
        ctl = client.rate_control
        await asyncio.sleep(max(0.0, start_at - time.time()))
        samples: list[tuple[float, int]] = []

        async def sample() -> None:  # (unix time, calls accepted so far): shares over any window
            while True:
                samples.append((time.time(), ctl.accepted))
                await asyncio.sleep(0.25)

        sampler = asyncio.create_task(sample())
        t0 = time.monotonic()
        r = await arun_batch(df, "moderation", client=client, ledger=ledger, concurrency=64, poll_interval=1.0,
                             columns={"content": "text"}, defaults={"type": 4})
        wall = time.monotonic() - t0
        sampler.cancel()
        samples.append((time.time(), ctl.accepted))
        return {"wall_s": round(wall, 2), "calls": client.request_count, "refused": ctl.refused,
                "accepted": ctl.accepted, "final_rate": round(ctl.rate, 1), "counts": r.summary["counts"],
                "samples": samples}


def accepted_between(samples: list[list[float]], lo: float, hi: float) -> float:
    """Calls accepted in [lo, hi] (linear between samples)."""
    def at(t: float) -> float:
        if t <= samples[0][0]:
            return samples[0][1]
        for (t0, a0), (t1, a1) in zip(samples, samples[1:]):
            if t <= t1:
                return a0 + (a1 - a0) * (t - t0) / max(t1 - t0, 1e-9)
        return samples[-1][1]
    return at(hi) - at(lo)


def worker(args: argparse.Namespace) -> None:
    go = Path(args.go)
    Path(f"{args.go}.ready-{args.tag}").touch()
    while not go.exists() or not go.read_text().strip():
        time.sleep(0.05)
    start_at = float(go.read_text()) + args.delay
    out = asyncio.run(one_batch(args.base_url, os.environ["BENCH_TOKEN"], args.rows, args.tag, args.ledger, start_at))
    print(json.dumps(out), flush=True)


def scenario(sb: SandboxProcess, limit: float, rows: int, processes: int, state: Path, stagger: float) -> dict:
    sb.reset(rate_limit_per_second=limit)
    env = {**os.environ, "BENCH_TOKEN": sb.env["AKOOL_API_TOKEN"], "AKOOL_FLOWS_STATE_DIR": str(state)}
    go = sb.tmp / f"go-{time.time_ns()}"
    tags = [f"p{n}-{time.time_ns()}" for n in range(processes)]
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", "--base-url", sb.base_url, "--rows",
                               str(rows), "--tag", tags[n], "--go", str(go), "--delay", str(n * stagger),
                               "--ledger", str(sb.tmp / f"ledger-{n}-{time.time_ns()}.sqlite")],
                              env=env, stdout=subprocess.PIPE, text=True) for n in range(processes)]
    while not all(Path(f"{go}.ready-{tag}").exists() for tag in tags):  # Python start-up done everywhere
        time.sleep(0.1)
    go.write_text(str(time.time() + 1.0))
    t0 = time.monotonic()
    outs = [json.loads(p.communicate(timeout=3600)[0].strip().splitlines()[-1]) for p in procs]
    wall = time.monotonic() - t0
    stats = sb.admin("stats")
    refused = stats["rejected_by_code"].get("1005", 0)
    accepted = stats["requests"] - refused
    # Shares while every process ran: from the last one's start to the first one's end.
    lo = max(o["samples"][0][0] for o in outs)
    hi = min(o["samples"][-1][0] for o in outs)
    shares = [accepted_between(o["samples"], lo, hi) for o in outs]
    fair = sum(shares) / len(shares) or 1.0
    batch_wall = max(o["samples"][-1][0] for o in outs) - min(o["samples"][0][0] for o in outs)
    return {
        "limit": limit, "rows": rows * processes, "processes": processes, "process_wall_s": round(wall, 2),
        "batch_wall_s": round(batch_wall, 2), "overlap_s": round(hi - lo, 1), "accepted_per_s": round(accepted / batch_wall, 1),
        "vs_limit": round(accepted / batch_wall / limit, 3),
        "limit_bound_s": round(accepted / limit, 2),
        "refused_share": round(refused / stats["requests"], 4), "calls": stats["requests"],
        "creates": stats["creates"], "duplicate_creates": len(stats["duplicate_creates"]),
        "completed": sum(o["counts"]["completed"] for o in outs),
        "share_vs_fair": [round(s / fair, 2) for s in shares], "accepted_each": [o["accepted"] for o in outs], "final_rates": [o["final_rate"] for o in outs],
        "uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=2000, help="rows per process")
    ap.add_argument("--limits", default="50,100,300")
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--stagger", type=float, default=0.0, help="seconds between the processes' starts")
    ap.add_argument("--warm", action="store_true", help="keep the remembered pace between scenarios")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--base-url", help=argparse.SUPPRESS)
    ap.add_argument("--tag", default="x", help=argparse.SUPPRESS)
    ap.add_argument("--ledger", help=argparse.SUPPRESS)
    ap.add_argument("--go", help=argparse.SUPPRESS)
    ap.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    with SandboxProcess(latency=0.02, job_seconds=1.0) as sb:
        for limit in (float(x) for x in args.limits.split(",")):
            state = Path(tempfile.mkdtemp(prefix="akool-rates-"))
            if args.warm:  # a first run finds the pace; the measured one starts from it
                scenario(sb, limit, args.rows, args.processes, state, args.stagger)
            print(json.dumps(scenario(sb, limit, args.rows, args.processes, state, args.stagger)), flush=True)


if __name__ == "__main__":
    main()
