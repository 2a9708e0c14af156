"""Rows at scale: a moderation batch of N rows planned (``--dry-run``) and run, wall time and
peak RSS of the whole process, each in a fresh `akool-flows` process.

    .venv/bin/python bench/bench_scale.py --rows 10000,100000,1000000            # dry runs
    .venv/bin/python bench/bench_scale.py --rows 100000 --full                   # also a full run
    .venv/bin/python bench/bench_scale.py --rows 1000000 --format parquet

The input has distinct texts (nothing deduplicated). The full run goes against a sandbox in its
own process (``akool-flows sandbox``, jobs done at once), so the figures are the batch's own; the
sandbox's create counter is checked against the row count (nothing sent twice, nothing left out).
Peak RSS is the largest process of the run (the CLI or one of its plan workers). Prints one JSON
line per run, with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

CLI = str(Path(sys.executable).with_name("akool-flows"))


def make_input(n: int, fmt: str, folder: Path) -> Path:
    path = folder / f"rows-{n}.{fmt}"
    if not path.exists():
        df = pd.DataFrame({"text": [f"comment number {i}, have a nice day" for i in range(n)]})
        df.to_csv(path, index=False) if fmt == "csv" else df.to_parquet(path, index=False)
    return path


def run(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Wall time and the child's peak RSS (a fresh process per run, so ru_maxrss is its own)."""
    t0 = time.monotonic()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 4):
        raise RuntimeError(f"{cmd} failed ({proc.returncode}): {proc.stderr[-2000:]}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # max over children so far
    # CPU seconds of the process and its plan workers: the figure a busy machine does not bend.
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_rss_mb_max_so_far": round(peak_kb / 1024, 1)}


def start_sandbox(folder: Path) -> tuple[subprocess.Popen, dict[str, str]]:
    """The sandbox in its own process (its memory is not the batch's); its AKOOL_* variables."""
    env_file = folder / f"sandbox-{time.time_ns()}.env"
    proc = subprocess.Popen([CLI, "sandbox", "--port", "0", "--queue-seconds", "0", "--job-seconds", "0",
                             "--write-env", str(env_file)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not env_file.exists() or not env_file.read_text().strip():
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("the sandbox did not start")
        time.sleep(0.2)
    time.sleep(0.2)
    pairs = (line.removeprefix("export ").split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    env = {k.strip(): v.strip().strip("'\"") for k, v in pairs}
    # One credential (the token), as a user's environment would hold.
    return proc, {k: v for k, v in env.items() if k not in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET")}


def creates(base_url: str) -> int:
    import httpx

    stats = httpx.get(base_url.rstrip("/") + "/_sandbox/stats", timeout=30).json()
    return int(stats["creates"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="10000,100000,1000000")
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv")
    ap.add_argument("--full", action="store_true", help="also run the batch against the embedded sandbox")
    args = ap.parse_args()
    folder = Path(tempfile.gettempdir()) / "akool-bench-scale"
    folder.mkdir(exist_ok=True)
    env = {**os.environ, "AKOOL_FLOWS_STATE_DIR": str(folder / "state")}
    # Runs go smallest first, so "max so far" is each run's own peak (the biggest one yet).
    for n in sorted(int(x) for x in args.rows.split(",")):
        src = make_input(n, args.format, folder)
        modes = ["dry"] + (["full"] if args.full else [])
        for mode in modes:
            base = [CLI, "batch", "moderation", str(src), "--set", "type=4", "--map", "content=text", "--quiet",
                    "--ledger", str(folder / f"ledger-{n}-{time.time_ns()}.sqlite")]
            if mode == "dry":
                figures = run(base + ["--dry-run"], env)
            else:
                sandbox, sandbox_env = start_sandbox(folder)
                try:
                    figures = run(base + ["--out", str(folder / f"out-{n}.csv"), "--concurrency", "64",
                                          "--poll-interval", "0.5"], {**env, **sandbox_env})
                    figures["sandbox_creates"] = creates(sandbox_env["AKOOL_BASE_URL"])
                finally:
                    sandbox.terminate()
                    sandbox.wait(30)
            load = os.getloadavg()[0]
            print(json.dumps({"rows": n, "mode": mode, "format": args.format, **figures,
                              "rows_per_s": round(n / figures["wall_s"]), "load1": round(load, 2)}), flush=True)


if __name__ == "__main__":
    main()
