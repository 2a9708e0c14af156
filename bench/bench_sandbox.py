"""How many requests per second the sandbox itself serves (so it is never a benchmark's bottleneck).

The sandbox runs in this process (its own thread and event loop, uvloop when installed);
the load comes from a *separate* process: N concurrent aiohttp connections polling a
status endpoint for a bounded time. Prints one line of results (and JSON with --json).

    .venv/bin/python bench/bench_sandbox.py                  # 32 connections, 5 s, video status
    .venv/bin/python bench/bench_sandbox.py --endpoint listbyids --ids 50
    .venv/bin/python bench/bench_sandbox.py --latency 0.02   # with the 20 ms benchmark latency
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

MAX_SECONDS = 30.0  # hard bound on any load loop


async def _load(url: str, headers: dict[str, str], connections: int, seconds: float) -> dict[str, float]:
    import aiohttp

    done = 0
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=connections)

    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal done, errors
            while time.perf_counter() < deadline:
                try:
                    async with session.get(url) as resp:
                        body = await resp.read()
                        if resp.status != 200 or b'"code":1000' not in body:
                            errors += 1
                        else:
                            done += 1
                except aiohttp.ClientError:
                    errors += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - start
    return {"requests": done, "errors": errors, "seconds": elapsed, "rps": done / elapsed}


def _client_main(argv: list[str]) -> None:
    url, token, connections, seconds = argv[0], argv[1], int(argv[2]), float(argv[3])
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(_load(url, {"Authorization": f"Bearer {token}"}, connections, seconds))
    print(json.dumps(result))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--latency", type=float, default=0.0, help="sandbox per-request latency (s)")
    parser.add_argument("--endpoint", choices=("status", "listbyids"), default="status")
    parser.add_argument("--ids", type=int, default=20, help="ids per listbyids call")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()
    if not 0 < args.seconds <= MAX_SECONDS:
        parser.error(f"--seconds must be in (0, {MAX_SECONDS}]")

    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    import httpx

    from akool_flows.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(latency=args.latency, queue_seconds=0.0, job_seconds=0.0)) as sb:
        headers = {"Authorization": f"Bearer {sb.token}"}
        with httpx.Client(base_url=sb.base_url, headers=headers) as client:
            if args.endpoint == "status":
                created = client.post(
                    "/api/open/v3/content/video/createbytalkingphoto",
                    json={"talking_photo_url": "https://example.com/p.png", "audio_url": "https://example.com/a.mp3"},
                ).json()
                url = f"{sb.base_url}/api/open/v3/content/video/infobymodelid?video_model_id={created['data']['_id']}"
            else:
                face = [{"path": "https://example.com/f.png", "opts": "1,2:3,4:5,6:7,8"}]
                ids = [
                    client.post(
                        "/api/open/v3/faceswap/highquality/specifyimage",
                        json={"targetImage": face, "sourceImage": face, "modifyImage": f"https://example.com/{i}.png"},
                    ).json()["data"]["_id"]
                    for i in range(args.ids)
                ]
                url = f"{sb.base_url}/api/open/v3/faceswap/result/listbyids?_ids={','.join(ids)}"
        proc = subprocess.run(
            [sys.executable, __file__, "--client", url, sb.token, str(args.connections), str(args.seconds)],
            capture_output=True,
            text=True,
            timeout=args.seconds + 60,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        result = json.loads(proc.stdout)
        served = sb.stats()["requests"]
    result.update(endpoint=args.endpoint, connections=args.connections, latency=args.latency, served=served)
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"sandbox {args.endpoint}: {result['rps']:,.0f} req/s at {args.connections} connections "
            f"(latency {args.latency * 1000:g} ms; {result['requests']:,} ok, {result['errors']} errors "
            f"in {result['seconds']:.1f} s)"
        )
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        _client_main(sys.argv[2:])
    else:
        sys.exit(main())
