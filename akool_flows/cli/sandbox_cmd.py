"""`akool-flows sandbox`: run the Akool-compatible sandbox server until Ctrl-C.

Credentials are the sandbox's own (they open nothing but this local server). They are
random per start unless AKOOL_SANDBOX_CLIENT_ID / AKOOL_SANDBOX_CLIENT_SECRET /
AKOOL_SANDBOX_TOKEN / AKOOL_SANDBOX_API_KEY fix them (e.g. for an Airflow connection that
must survive restarts); secrets are never taken from the command line, where `ps` shows
them. They are printed once, at start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

_ENV_CREDENTIALS = {
    "client_id": "AKOOL_SANDBOX_CLIENT_ID",
    "client_secret": "AKOOL_SANDBOX_CLIENT_SECRET",
    "token": "AKOOL_SANDBOX_TOKEN",
    "api_key": "AKOOL_SANDBOX_API_KEY",
}
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub: argparse._SubParsersAction) -> None:
    """Add `sandbox` to the `akool-flows` parser."""
    p = sub.add_parser(
        "sandbox",
        help="run a local Akool-compatible API server (no credits, no network)",
        description=(
            "Run the Akool sandbox: every documented endpoint, jobs that complete on a clock, "
            "credits, encrypted webhooks, fault injection (/_sandbox/faults) and counters "
            "(/_sandbox/stats). Prints the AKOOL_* variables to point a client at it."
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 = any free port)")
    p.add_argument("--queue-seconds", type=float, default=None, help="time a job stays queued (default 0.2)")
    p.add_argument("--job-seconds", type=float, default=None,
                   help="time from creation to completion (default 1.0)")
    p.add_argument("--latency", type=float, default=None, help="added delay per request, seconds (default 0)")
    p.add_argument("--credits", type=float, default=None, help="starting account balance (default 1000000)")
    p.add_argument("--rate-limit", type=float, default=None, metavar="RPS",
                   help="requests per second per credential before code 1005 (default unlimited)")
    p.add_argument("--seed", type=int, default=None, help="seed of probabilistic fault injection (default 0)")
    p.add_argument("--result-ttl", type=float, default=None, metavar="SECONDS",
                   help="result files answer 403 this long after creation (default never)")
    p.add_argument("--session-time-scale", type=float, default=None,
                   help="live sessions last duration x this factor (default 1.0)")
    p.add_argument("--no-processing-webhooks", action="store_true",
                   help="send webhooks only for final statuses (3/4), not when processing starts")
    p.add_argument("--write-env", metavar="PATH", default=None,
                   help="also write the AKOOL_* variables to PATH (mode 0600) for other processes")
    p.set_defaults(func=run)


def _config_from_args(args: argparse.Namespace) -> Any:
    from akool_flows.sandbox import SandboxConfig

    fields: dict[str, Any] = {"host": args.host, "port": args.port}
    for option, name in (
        ("queue_seconds", "queue_seconds"),
        ("job_seconds", "job_seconds"),
        ("latency", "latency"),
        ("credits", "credits"),
        ("rate_limit", "rate_limit_per_second"),
        ("seed", "seed"),
        ("result_ttl", "result_ttl_seconds"),
        ("session_time_scale", "session_time_scale"),
    ):
        value = getattr(args, option)
        if value is not None:
            fields[name] = value
    if args.no_processing_webhooks:
        fields["webhook_on_processing"] = False
    for name, env_name in _ENV_CREDENTIALS.items():
        if os.environ.get(env_name):
            fields[name] = os.environ[env_name]
    # A job_seconds below the default queue time would be rejected; follow it down instead.
    if "job_seconds" in fields and "queue_seconds" not in fields:
        fields["queue_seconds"] = min(0.2, fields["job_seconds"])
    return SandboxConfig(**fields)


def _env_lines(sb: Any) -> list[str]:
    env = sb.env("token")
    env["AKOOL_API_KEY"] = sb.api_key
    env["AKOOL_CLIENT_ID"] = sb.client_id
    env["AKOOL_CLIENT_SECRET"] = sb.client_secret
    return [f"export {k}={v}" for k, v in env.items()]


def run(args: argparse.Namespace) -> int:
    """Start the sandbox, print how to reach it, serve until interrupted."""
    try:
        config = _config_from_args(args)
    except ValueError as exc:
        print(f"akool-flows sandbox: {exc}", file=sys.stderr)
        return 2
    if config.host not in _LOOPBACK:
        print(f"warning: binding {config.host}: the sandbox and its /_sandbox admin API have no protection "
              "beyond its own tokens; keep it on 127.0.0.1 unless you know why not", file=sys.stderr)
    try:
        asyncio.run(_serve(config, args.write_env))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        print(f"akool-flows sandbox: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    return 0


async def _serve(config: Any, write_env: str | None) -> None:
    from akool_flows.sandbox import Sandbox

    sb = Sandbox(config)
    await sb.astart()
    try:
        lines = _env_lines(sb)
        if write_env:
            fd = os.open(write_env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write("\n".join(lines) + "\n")
        print(f"Akool sandbox listening on {sb.base_url}  (face detect: {sb.detect_url})")
        print(f"  jobs: queued {config.queue_seconds:g} s, done {config.job_seconds:g} s after creation; "
              f"latency {config.latency * 1000:g} ms; credits {config.credits:,.10g}")
        print(f"  admin: {sb.base_url}/_sandbox/stats | /_sandbox/faults | /_sandbox/config | /_sandbox/reset")
        print("  point a client at it (sandbox-only credentials, shown once):")
        for line in lines:
            print(f"    {line}")
        if write_env:
            print(f"  (also written to {write_env})")
        print("Press Ctrl-C to stop.", flush=True)
        await asyncio.Event().wait()
    finally:
        await sb.astop()
