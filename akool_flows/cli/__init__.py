"""`akool-flows` command line.

Each area owns one module that adds its sub-commands (`register(subparsers)`), so the
sandbox, webhook, registry and batch commands can evolve without touching each other.
Modules are imported lazily inside `register` bodies where they pull heavy dependencies.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from akool_flows import __version__

# Order is the order of `akool-flows --help`.
_COMMAND_MODULES = (
    "akool_flows.cli.demo_cmd",
    "akool_flows.cli.kinds_cmd",
    "akool_flows.cli.batch_cmd",
    "akool_flows.cli.sandbox_cmd",
    "akool_flows.cli.webhook_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="akool-flows",
        description="Run Akool AI media jobs at scale (batches, sandbox, webhooks).",
    )
    parser.add_argument("--version", action="version", version=f"akool-flows {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
