"""Transport benchmark: status polls per second at 32 connections, ours beside plain httpx's.

    .venv/bin/python bench/bench_transport.py            # ~5 s per contender
    .venv/bin/python bench/bench_transport.py --seconds 2 --connections 64 --check
    .venv/bin/python bench/bench_transport.py --only akool_flows --profile

A minimal aiohttp server answering Akool's envelope for a moderation status call runs in a
separate process on 127.0.0.1 (so it does not share the event loop or the GIL with the client
being measured). Each contender then runs N concurrent workers in a closed loop for a bounded
time and we count completed requests:

  httpx        plain `httpx.AsyncClient`, the baseline the foundation issue quotes
  akool_flows  `AsyncAkoolClient.status("moderation", id)`: auth header, envelope check and
               `JobStatus` parsing included (the default aiohttp sender)
  aiohttp      a bare `aiohttp.ClientSession.get` + `json.loads`, the ceiling

`--check` exits 1 when akool_flows is below the 2,500 req/s the issue requires.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import sys
import time
from collections.abc import Awaitable, Callable

STATUS_PATH = "/api/open/v3/content/analysis/infobyid"
TARGET_RPS = 2500
#: A completed moderation status, as the docs show it.
STATUS_BODY = json.dumps({
    "code": 1000, "msg": "OK",
    "data": {"_id": "662e20b93baa7aa53169a325", "uid": 100002, "status": 3, "deduction_credit": 0.1,
             "result": "- violence: none found.\nResult: Compliant", "final_conclusion": "Compliant"},
}).encode()


def _serve(port: int, ready: mp.synchronize.Event) -> None:  # type: ignore[name-defined]
    """The fast server: aiohttp's low-level server, one canned answer, no routing overhead."""
    from aiohttp import web

    async def handler(request: web.BaseRequest) -> web.Response:
        if request.path != STATUS_PATH:
            return web.Response(status=404)
        return web.Response(body=STATUS_BODY, content_type="application/json")

    async def main() -> None:
        server = web.Server(handler, access_log=None)
        runner = web.ServerRunner(server)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
        await site.start()
        ready.set()
        await asyncio.Event().wait()

    try:
        import uvloop  # the server must not be the bottleneck
        uvloop.run(main())
    except ImportError:  # pragma: no cover
        asyncio.run(main())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _closed_loop(one: Callable[[], Awaitable[object]], workers: int, seconds: float,
                       warmup: float = 0.5) -> float:
    """Run `workers` coroutines calling `one()` back to back; requests/s after a warm-up."""
    count = 0
    counting = False
    stop = False

    async def worker() -> None:
        nonlocal count
        while not stop:
            await one()
            if counting:
                count += 1

    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    await asyncio.sleep(warmup)
    counting = True
    start = time.perf_counter()
    await asyncio.sleep(seconds)
    done = count
    elapsed = time.perf_counter() - start
    stop = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return done / elapsed


async def bench_httpx(base: str, workers: int, seconds: float) -> float:
    import httpx

    limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
    async with httpx.AsyncClient(base_url=base, limits=limits,
                                 headers={"Authorization": "Bearer bench-token"}) as client:
        async def one() -> object:
            resp = await client.get(STATUS_PATH, params={"_id": "662e20b93baa7aa53169a325"})
            return json.loads(resp.content)["data"]["status"]

        return await _closed_loop(one, workers, seconds)


async def bench_akool(base: str, workers: int, seconds: float) -> float:
    from akool_flows.api import AsyncAkoolClient

    async with AsyncAkoolClient(base_url=base, token="bench-token", max_connections=workers) as client:
        # This measures the request machinery, not how fast a fresh process finds an account's
        # pace (the rate controller's slow start from 50 req/s, bench_ratelimit.py): start at the
        # ceiling, as a remembered pace would. Clients from before the controller have none.
        pace = getattr(client, "rate_control", None)
        if pace is not None:
            pace.rate = pace.ceiling

        async def one() -> object:
            st = await client.status("moderation", "662e20b93baa7aa53169a325")
            assert st.conclusion == "Compliant"
            return st

        return await _closed_loop(one, workers, seconds)


async def bench_aiohttp(base: str, workers: int, seconds: float) -> float:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(base, connector=connector,
                                     headers={"Authorization": "Bearer bench-token"}) as session:
        async def one() -> object:
            async with session.get(STATUS_PATH, params={"_id": "662e20b93baa7aa53169a325"}) as resp:
                return json.loads(await resp.read())["data"]["status"]

        return await _closed_loop(one, workers, seconds)


CONTENDERS = {"httpx": bench_httpx, "akool_flows": bench_akool, "aiohttp": bench_aiohttp}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per contender (<= 60)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent workers = connections")
    parser.add_argument("--only", choices=sorted(CONTENDERS), action="append",
                        help="run only these contenders (repeatable)")
    parser.add_argument("--check", action="store_true", help=f"exit 1 if akool_flows < {TARGET_RPS} req/s")
    parser.add_argument("--profile", action="store_true",
                        help="run the akool_flows contender under cProfile and print where the time goes")
    args = parser.parse_args(argv)
    if not 0 < args.seconds <= 60:
        parser.error("--seconds must be in (0, 60]")
    if not 1 <= args.connections <= 1024:
        parser.error("--connections must be in [1, 1024]")

    port = _free_port()
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(20):
            print("benchmark server did not start", file=sys.stderr)
            return 2
        base = f"http://127.0.0.1:{port}"
        print(f"status polls against {base}{STATUS_PATH}, {args.connections} connections, "
              f"{args.seconds:g} s each, python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        results: dict[str, float] = {}
        for name in args.only or list(CONTENDERS):
            if args.profile and name == "akool_flows":
                import cProfile
                import pstats

                profiler = cProfile.Profile()
                rps = profiler.runcall(asyncio.run, CONTENDERS[name](base, args.connections, args.seconds))
                pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
            else:
                rps = asyncio.run(CONTENDERS[name](base, args.connections, args.seconds))
            results[name] = rps
            print(f"  {name:<12} {rps:>8,.0f} req/s", flush=True)
        if "httpx" in results and "akool_flows" in results and results["httpx"]:
            print(f"  akool_flows / httpx = {results['akool_flows'] / results['httpx']:.1f}x")
        if "akool_flows" in results:
            ok = results["akool_flows"] >= TARGET_RPS
            print(f"  target >= {TARGET_RPS:,} req/s for akool_flows: {'met' if ok else 'NOT met'}")
            if args.check and not ok:
                return 1
        return 0
    finally:
        server.terminate()
        server.join(5)


if __name__ == "__main__":
    sys.exit(main())
