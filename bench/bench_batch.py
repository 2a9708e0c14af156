"""Benchmark of the batch engine against the sandbox (a separate process) with fixed latency.

Prints, in one run:

* wall time and rows/s for N moderation rows at concurrency C, against the ideal bounds
  (webhooks: N x latency / C + job duration; polling only: 2N x latency / C + job duration);
* the same rows through a naive sequential submit-then-poll loop like the docs' examples
  (measured on a few rows and extrapolated - it would take hours otherwise);
* API calls per completed job: polling, batched polling (face swap `listbyids`), webhooks;
* peak traced memory per in-flight job with 10,000 jobs in flight (tracemalloc);
* the engine process's CPU per job, and a profile of where it goes.

    .venv/bin/python bench/bench_batch.py                  # everything, ~2 minutes
    .venv/bin/python bench/bench_batch.py --only polling,webhooks --rows 500
    .venv/bin/python bench/bench_batch.py --json bench/batch-results.json

Every server binds 127.0.0.1; every scenario has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import contextlib
import json
import os
import pstats
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from akool_flows.api import AkoolClient, AsyncAkoolClient  # noqa: E402 - after the sys.path line
from akool_flows.batch import arun_batch, plan_batch  # noqa: E402

CLI = str(Path(sys.executable).with_name("akool-flows"))
FACE = {"path": "https://example.com/face.png", "opts": "262,175:363,175:313,215:272,279"}
SCENARIO_LIMIT = 300.0  # seconds: no scenario may run longer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        key, _, value = line.removeprefix("export ").partition("=")
        env[key] = value
    return env


@contextlib.contextmanager
def process(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class SandboxProcess:
    """`akool-flows sandbox` in its own process, driven through its admin API."""

    def __init__(self, latency: float, job_seconds: float) -> None:
        self.latency, self.job_seconds = latency, job_seconds
        self.tmp = Path(tempfile.mkdtemp(prefix="akool-bench-"))
        self.port = free_port()

    def __enter__(self) -> SandboxProcess:
        env_file = self.tmp / "sandbox.env"
        self._cm = process([CLI, "sandbox", "--port", str(self.port), "--latency", str(self.latency),
                            "--job-seconds", str(self.job_seconds), "--write-env", str(env_file)])
        proc = self._cm.__enter__()
        deadline = time.monotonic() + 30
        while not env_file.exists() or not env_file.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sandbox did not start: {proc.stderr.read().decode() if proc.stderr else ''}")
            time.sleep(0.05)
        self.env = _read_env(env_file)
        self.base_url = self.env["AKOOL_BASE_URL"]
        return self

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)

    def admin(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.base_url}/_sandbox/{path}", data=data, method="POST" if data else "GET",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.load(resp)

    def reset(self, **config: Any) -> None:
        self.admin("reset", {})
        merged = {"latency": self.latency, "job_seconds": self.job_seconds, **config}
        merged.setdefault("queue_seconds", min(0.2, merged["job_seconds"]))
        self.admin("config", merged)

    def client(self, **kw: Any) -> AsyncAkoolClient:
        return AsyncAkoolClient(base_url=self.base_url, token=self.env["AKOOL_API_TOKEN"], **kw)


@contextlib.contextmanager
def receiver(sb: SandboxProcess) -> Iterator[tuple[Any, str]]:
    """`akool-flows webhook serve` in its own process, writing to a SQLite store this process reads."""
    from akool_flows.webhook import WebhookEventStore

    port = free_port()
    store_url = f"sqlite:///{sb.tmp / f'events-{port}.sqlite'}"
    store = WebhookEventStore(store_url)  # creates the tables before the receiver starts
    env = {**os.environ, "AKOOL_CLIENT_ID": sb.env["AKOOL_CLIENT_ID"],
           "AKOOL_CLIENT_SECRET": sb.env["AKOOL_CLIENT_SECRET"]}
    with process([CLI, "webhook", "serve", "--port", str(port), "--store", store_url, "--log-level", "warning"],
                 env=env):
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("webhook receiver did not start")
            time.sleep(0.05)
        try:
            yield store, f"http://127.0.0.1:{port}/webhook"
        finally:
            store.close()


def moderation_rows(n: int, tag: str) -> pd.DataFrame:
    return pd.DataFrame({"content": [f"{tag} comment {i}: have a lovely day" for i in range(n)], "type": 4,
                         "language": "en"})


def faceswap_rows(n: int, tag: str) -> pd.DataFrame:
    return pd.DataFrame({"modifyImage": [f"https://example.com/{tag}/{i}.jpg" for i in range(n)]})


async def timed_run(sb: SandboxProcess, df: pd.DataFrame, kind: str, concurrency: int, **kw: Any) -> dict[str, Any]:
    defaults = {"sourceImage": [FACE], "targetImage": [FACE]} if kind == "faceswap_image" else None
    plan = plan_batch(df, kind, defaults=defaults)
    ledger = sb.tmp / f"ledger-{time.monotonic_ns()}.sqlite"
    async with sb.client(max_connections=concurrency + 8) as client:
        cpu0, t0 = time.process_time(), time.perf_counter()
        result = await asyncio.wait_for(arun_batch(plan, client=client, ledger=ledger, concurrency=concurrency, **kw),
                                        SCENARIO_LIMIT)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    stats = sb.admin("stats")
    done = result.summary["counts"]["completed"]
    if done != len(df):
        raise RuntimeError(f"{kind}: only {done}/{len(df)} completed: {result.summary['counts']}")
    if stats["duplicate_creates"]:
        raise RuntimeError("duplicate creates in a benchmark run")
    out = {"rows": len(df), "wall_s": wall, "rows_per_s": len(df) / wall, "engine_cpu_s": cpu,
           "cpu_us_per_job": 1e6 * cpu / len(df), "api_calls": result.summary["api_calls"],
           "calls_per_job": result.summary["api_calls"] / done, "server_creates": stats["creates"],
           "server_polls": stats["polls"], "webhooks_delivered": stats.get("webhooks_delivered")}
    if kw.get("events") is not None and hasattr(kw["events"], "url"):
        out.update(webhook_lags(result.results, kw["events"], sb.job_seconds))
    return out


def webhook_lags(results: pd.DataFrame, store: Any, job_seconds: float) -> dict[str, float]:
    """Where the time goes with webhooks: job done -> event stored (sandbox + receiver), and
    event stored -> row finished (this engine)."""
    import datetime as dt
    import sqlite3

    db = store.url.removeprefix("sqlite:///")
    con = sqlite3.connect(db)
    try:
        received = dict(con.execute("SELECT job_id, MIN(received_at) FROM akool_webhook_events "
                                    "WHERE status IN (3, 4) GROUP BY job_id").fetchall())
    finally:
        con.close()

    def ts(text: str) -> float:
        return dt.datetime.fromisoformat(text).timestamp()

    delivery, engine = [], []
    for job_id, submitted, finished in zip(results["job_id"], results["submitted_at"], results["finished_at"]):
        if job_id in received:
            delivery.append(received[job_id] - (ts(submitted) + job_seconds))
            engine.append(ts(finished) - received[job_id])
    series_d, series_e = pd.Series(delivery), pd.Series(engine)
    return {"event_delivery_lag_median_s": float(series_d.median()), "event_delivery_lag_p90_s":
            float(series_d.quantile(0.9)), "engine_lag_after_event_median_s": float(series_e.median()),
            "engine_lag_after_event_p90_s": float(series_e.quantile(0.9))}


class OracleEvents:
    """A stand-in event store that knows when each job finishes (its registration time + the job
    duration): webhook delivery at zero cost, to measure the engine's part of webhook mode alone."""

    def __init__(self, job_seconds: float) -> None:
        self.job_seconds = job_seconds
        self.born: dict[str, float] = {}

    def register_submitted_many(self, ids: list[str], kind: str | None = None) -> int:
        now = time.time()
        for job_id in ids:
            self.born.setdefault(job_id, now)
        return len(ids)

    def latest_many(self, ids: list[str], terminal_only: bool = False) -> dict[str, Any]:
        from akool_flows.webhook import WebhookEvent

        now = time.time()
        out = {}
        for job_id in ids:
            born = self.born.get(job_id)
            if born is not None and now - born >= self.job_seconds:
                out[job_id] = WebhookEvent(job_id=job_id, status=3, type="talking photo",
                                           url=f"https://example.com/{job_id}.mp4")
        return out


async def receiver_rate(sb: SandboxProcess, events: int, concurrency: int = 64) -> dict[str, Any]:
    """The webhook receiver alone: signed, encrypted completion events POSTed as fast as it takes them."""
    import aiohttp

    from akool_flows.webhook import build_webhook_body

    cid, secret = sb.env["AKOOL_CLIENT_ID"], sb.env["AKOOL_CLIENT_SECRET"]
    ids = [f"{i:024x}" for i in range(events)]
    bodies = [build_webhook_body({"_id": j, "status": 3, "type": "talking photo", "url": "http://x/y.mp4"}, cid,
                                 secret) for j in ids]
    with receiver(sb) as (store, url):
        store.register_submitted_many(ids, kind="talking_photo")
        sem = asyncio.Semaphore(concurrency)
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
            async def post(body: dict[str, Any]) -> int:
                async with sem, session.post(url, json=body) as resp:
                    await resp.read()
                    return resp.status

            t0 = time.perf_counter()
            codes = await asyncio.gather(*(post(b) for b in bodies))
            wall = time.perf_counter() - t0
    if set(codes) != {200}:
        raise RuntimeError(f"receiver answered {sorted(set(codes))}")
    return {"events": events, "wall_s": wall, "events_per_s": events / wall}


def naive_loop(sb: SandboxProcess, rows: int, poll_interval: float) -> dict[str, Any]:
    """The docs' pattern, one row at a time: create, then poll until done."""
    df = moderation_rows(rows, "naive")
    client = AkoolClient(base_url=sb.base_url, token=sb.env["AKOOL_API_TOKEN"])
    t0 = time.perf_counter()
    calls = 0
    try:
        for content in df["content"]:
            job = client.submit("moderation", content=content, type=4, language="en")
            calls += 1
            while True:
                time.sleep(poll_interval)
                calls += 1
                if client.status("moderation", job.job_id).done:
                    break
    finally:
        client.close()
    wall = time.perf_counter() - t0
    return {"rows": rows, "wall_s": wall, "s_per_row": wall / rows, "calls_per_job": calls / rows,
            "poll_interval": poll_interval}


async def memory_at_inflight(sb: SandboxProcess, jobs: int, concurrency: int) -> dict[str, Any]:
    """Traced memory growth while `jobs` moderation jobs are in flight (jobs outlast the run)."""
    plan = plan_batch(moderation_rows(jobs, "mem"), "moderation")
    ledger = sb.tmp / "ledger-mem.sqlite"
    cancel = asyncio.Event()
    seen: dict[str, Any] = {}

    def progress(p: Any) -> None:
        if p.in_flight >= jobs and "peak" not in seen:
            current, peak = tracemalloc.get_traced_memory()
            seen.update(current=current, peak=peak, in_flight=p.in_flight, at=p.elapsed)
            cancel.set()

    async with sb.client(max_connections=concurrency + 8) as client:
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = await asyncio.wait_for(arun_batch(plan, client=client, ledger=ledger, concurrency=concurrency,
                                                   poll_interval=600, progress=progress, cancel=cancel),
                                        SCENARIO_LIMIT)
        tracemalloc.stop()
    if "peak" not in seen:
        raise RuntimeError(f"never reached {jobs} in flight: {result.summary['counts']}")
    return {"in_flight": seen["in_flight"], "current_bytes": seen["current"] - base, "peak_bytes": seen["peak"] - base,
            "bytes_per_job_current": (seen["current"] - base) / seen["in_flight"],
            "bytes_per_job_peak": (seen["peak"] - base) / seen["in_flight"], "seconds_to_submit": seen["at"]}


async def profile_run(sb: SandboxProcess, rows: int, concurrency: int) -> dict[str, Any]:
    """cProfile of one polling run; own time grouped by where the code lives."""
    prof = cProfile.Profile()
    df = moderation_rows(rows, "prof")
    plan = plan_batch(df, "moderation")
    async with sb.client(max_connections=concurrency + 8) as client:
        prof.enable()
        await arun_batch(plan, client=client, ledger=sb.tmp / "ledger-prof.sqlite", concurrency=concurrency,
                         poll_interval=0.5)
        prof.disable()
    stats = pstats.Stats(prof)
    groups: dict[str, float] = {}
    top: list[tuple[float, str]] = []
    others: list[tuple[float, str]] = []
    total = 0.0
    for (filename, line, func), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        total += tottime
        if "akool_flows/batch" in filename:
            group = "engine (akool_flows/batch)"
        elif "akool_flows/api" in filename:
            group = "client (akool_flows/api)"
        elif "aiohttp" in filename or "yarl" in filename or "multidict" in filename:
            group = "aiohttp"
        elif "sqlite3" in filename or func.startswith("<method 'execute"):
            group = "sqlite (ledger)"
        elif "pydantic" in filename:
            group = "pydantic"
        elif "asyncio" in filename or "selectors" in filename or "select" in func:
            group = "asyncio / selectors"
        elif "pandas" in filename or "numpy" in filename or "pyarrow" in filename:
            group = "pandas (results at the end)"
        elif "socket" in func or "ssl" in func:
            group = "socket I/O (syscalls)"
        elif "json" in filename or "json" in func:
            group = "json"
        else:
            group = "other (json, stdlib, ...)"
        groups[group] = groups.get(group, 0.0) + tottime
        if group.startswith("other"):
            others.append((tottime, f"{Path(filename).name}:{line} {func}"))
        if "akool_flows/batch" in filename:
            top.append((tottime, f"{Path(filename).name}:{line} {func}"))
    top.sort(reverse=True)
    others.sort(reverse=True)
    return {"rows": rows, "total_s": total, "us_per_job": 1e6 * total / rows,
            "groups": {k: round(100 * v / total, 1) for k, v in sorted(groups.items(), key=lambda kv: -kv[1])},
            "engine_top": [(round(1e6 * t / rows, 1), name) for t, name in top[:8]],
            "other_top": [(round(1e6 * t / rows, 1), name) for t, name in others[:6]]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--latency", type=float, default=0.02, help="sandbox latency per request, seconds")
    ap.add_argument("--job-seconds", type=float, default=3.0)
    ap.add_argument("--poll-interval", type=float, default=1.0, help="polling scenario's poll interval")
    ap.add_argument("--naive-rows", type=int, default=5)
    ap.add_argument("--memory-jobs", type=int, default=10_000)
    ap.add_argument("--only", default="polling,batched,webhooks,naive,memory,profile")
    ap.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = ap.parse_args(argv)
    only = set(args.only.split(","))
    n, c, lat, dur = args.rows, args.concurrency, args.latency, args.job_seconds
    ideal_webhook = n * lat / c + dur
    ideal_polling = 2 * n * lat / c + dur
    out: dict[str, Any] = {"rows": n, "concurrency": c, "latency_s": lat, "job_seconds": dur,
                           "ideal_webhooks_s": ideal_webhook, "ideal_polling_s": ideal_polling,
                           "python": sys.version.split()[0], "cpus": os.cpu_count()}
    print(f"batch benchmark: {n} rows, concurrency {c}, {lat * 1000:g} ms per request, jobs done {dur:g} s after "
          f"creation\nideal bounds: webhooks {ideal_webhook:.2f} s, polling {ideal_polling:.2f} s\n", flush=True)
    with SandboxProcess(lat, dur) as sb:
        # Warm-up: the first batch in a process pays one-time imports (aiohttp, attrs, pandas parts).
        sb.reset(job_seconds=0.1)
        asyncio.run(timed_run(sb, moderation_rows(20, "warm"), "moderation", c, poll_interval=0.1))
        if "polling" in only:
            sb.reset()
            r = asyncio.run(timed_run(sb, moderation_rows(n, "poll"), "moderation", c,
                                      poll_interval=args.poll_interval))
            r["vs_ideal"] = r["wall_s"] / ideal_polling
            out["polling"] = r
            print(f"polling (moderation, poll_interval {args.poll_interval:g} s): {r['wall_s']:.2f} s, "
                  f"{r['rows_per_s']:.0f} rows/s, {r['vs_ideal']:.2f}x ideal, {r['calls_per_job']:.2f} calls/job, "
                  f"engine CPU {r['cpu_us_per_job']:.0f} us/job", flush=True)
        if "batched" in only:
            sb.reset()
            r = asyncio.run(timed_run(sb, faceswap_rows(n, "fs"), "faceswap_image", c,
                                      poll_interval=args.poll_interval))
            r["vs_ideal_webhooks"] = r["wall_s"] / ideal_webhook
            out["batched_polling"] = r
            print(f"batched polling (faceswap_image, listbyids): {r['wall_s']:.2f} s, {r['rows_per_s']:.0f} rows/s, "
                  f"{r['vs_ideal_webhooks']:.2f}x the webhook bound, {r['calls_per_job']:.3f} calls/job", flush=True)
        if "webhooks" in only:
            for kind, rows in (("moderation", moderation_rows(n, "wh")),
                               ("talking_photo", pd.DataFrame({"talking_photo_url": [
                                   f"https://example.com/p{i}.jpg" for i in range(n)],
                                   "audio_url": "https://example.com/a.mp3"}))):
                sb.reset()
                with receiver(sb) as (store, url):
                    r = asyncio.run(timed_run(sb, rows, kind, c, poll_interval=10.0, events=store, webhook_url=url))
                r["vs_ideal"] = r["wall_s"] / ideal_webhook
                out[f"webhooks_{kind}"] = r
                extra = " (+1 status call each: moderation webhooks carry no verdict)" if kind == "moderation" else ""
                print(f"webhooks ({kind}): {r['wall_s']:.2f} s, {r['rows_per_s']:.0f} rows/s, {r['vs_ideal']:.2f}x "
                      f"ideal, {r['calls_per_job']:.2f} calls/job{extra}\n"
                      "  job done -> event stored (sandbox + receiver): median "
                      f"{r['event_delivery_lag_median_s']:.2f} s"
                      f", p90 {r['event_delivery_lag_p90_s']:.2f} s; event stored -> row finished (engine): median "
                      f"{r['engine_lag_after_event_median_s']:.2f} s, p90 {r['engine_lag_after_event_p90_s']:.2f} s; "
                      f"{r['webhooks_delivered']} webhooks delivered", flush=True)
            sb.reset()
            rows = pd.DataFrame({"talking_photo_url": [f"https://example.com/o{i}.jpg" for i in range(n)],
                                 "audio_url": "https://example.com/a.mp3"})
            r = asyncio.run(timed_run(sb, rows, "talking_photo", c, poll_interval=10.0, events=OracleEvents(dur)))
            r["vs_ideal"] = r["wall_s"] / ideal_webhook
            out["webhooks_free_delivery"] = r
            print(f"webhooks with free delivery (an oracle store, no receiver): {r['wall_s']:.2f} s, "
                  f"{r['rows_per_s']:.0f} rows/s, {r['vs_ideal']:.2f}x ideal, {r['calls_per_job']:.2f} calls/job",
                  flush=True)
            rr = asyncio.run(receiver_rate(sb, n))
            out["receiver_alone"] = rr
            print(f"  the receiver alone (`akool-flows webhook serve`): {rr['events']} events in "
                  f"{rr['wall_s']:.2f} s = {rr['events_per_s']:.0f} events/s", flush=True)
        if "naive" in only:
            sb.reset()
            r = naive_loop(sb, args.naive_rows, poll_interval=1.0)
            r["extrapolated_s"] = r["s_per_row"] * n
            best = min((out[k]["wall_s"] for k in ("polling", "webhooks_moderation") if k in out), default=None)
            if best:
                r["speedup"] = r["extrapolated_s"] / best
            out["naive"] = r
            print(f"naive sequential loop (poll every 1 s): {r['s_per_row']:.2f} s/row measured on {r['rows']} rows "
                  f"-> {r['extrapolated_s'] / 60:.0f} min for {n} rows"
                  + (f"; the engine is {r['speedup']:.0f}x faster" if best else ""), flush=True)
        if "memory" in only:
            sb.reset(job_seconds=600.0, latency=0.0)
            r = asyncio.run(memory_at_inflight(sb, args.memory_jobs, concurrency=64))
            out["memory"] = r
            print(f"memory: {r['in_flight']} jobs in flight: {r['current_bytes'] / 1e6:.1f} MB traced now "
                  f"({r['bytes_per_job_current']:.0f} B/job), peak {r['peak_bytes'] / 1e6:.1f} MB "
                  f"({r['bytes_per_job_peak']:.0f} B/job)", flush=True)
        if "profile" in only:
            sb.reset(job_seconds=0.5, latency=0.0)
            fast = asyncio.run(timed_run(sb, moderation_rows(n, "fast"), "moderation", c, poll_interval=0.25))
            out["zero_latency"] = fast
            print(f"zero latency, 0.5 s jobs (polling): {fast['wall_s']:.2f} s, {fast['rows_per_s']:.0f} rows/s, "
                  f"engine process CPU {fast['cpu_us_per_job']:.0f} us/job ({fast['calls_per_job']:.2f} calls/job)",
                  flush=True)
            sb.reset(job_seconds=0.5, latency=0.0)
            r = asyncio.run(profile_run(sb, n, c))
            out["profile"] = r
            print(f"profile ({n} jobs, no latency, cProfile on): {r['us_per_job']:.0f} us of CPU per job under the "
                  "profiler; own time by area:")
            for group, pct in r["groups"].items():
                print(f"  {pct:5.1f}%  {group}")
            print("  largest 'other' items (us/job): " + "; ".join(f"{name} {us}" for us, name in r["other_top"]))
            print("  engine's own top functions (us/job): "
                  + "; ".join(f"{name} {us}" for us, name in r["engine_top"][:5]))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    threading.current_thread().name = "bench"
    sys.exit(main())
