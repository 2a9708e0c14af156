"""The client's CPU per status call: process CPU time / calls, with bench_transport's server in
another process. Less sensitive to a shared machine's load than requests/s (which also counts
the server's share of the CPUs), so it compares two versions of the client more steadily.

    .venv/bin/python bench/bench_client_cpu.py                 # 8,000 calls after a warm-up pass
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/bench_client_cpu.py 8000
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import sys
import time

from bench_transport import _free_port, _serve


async def cpu_per_call(base: str, calls: int, workers: int = 32) -> float:
    from akool_flows.api import AsyncAkoolClient

    async with AsyncAkoolClient(base_url=base, token="bench-token", max_connections=workers) as client:
        pace = getattr(client, "rate_control", None)  # the pace's slow start is not measured here
        if pace is not None:
            pace.rate = pace.ceiling
        left = 0

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await client.status("moderation", "662e20b93baa7aa53169a325")

        for _ in range(2):  # the first pass only warms up (connections, imports, caches)
            left = calls
            t0 = time.process_time()
            await asyncio.gather(*(worker() for _ in range(workers)))
        return (time.process_time() - t0) / calls * 1e6


def main() -> None:
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    port, ready = _free_port(), mp.Event()
    server = mp.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        if not ready.wait(20):
            raise SystemExit("benchmark server did not start")
        us = asyncio.run(cpu_per_call(f"http://127.0.0.1:{port}", calls))
        print(f"client CPU {us:.0f} us per status call ({calls} calls, 32 at once)")
    finally:
        server.terminate()


if __name__ == "__main__":
    main()
