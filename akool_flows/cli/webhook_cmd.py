"""`akool-flows webhook ...`: run the webhook receiver.

The key pair comes from AKOOL_CLIENT_ID / AKOOL_CLIENT_SECRET only: command-line arguments
are visible to every user through `ps`, so the secret is never accepted there.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

_ENV_ID = "AKOOL_CLIENT_ID"
_ENV_SECRET = "AKOOL_CLIENT_SECRET"
_ENV_PATH_TOKEN = "AKOOL_WEBHOOK_PATH_TOKEN"


def register(sub: argparse._SubParsersAction) -> None:
    """Add `webhook serve` to the `akool-flows` parser."""
    webhook = sub.add_parser(
        "webhook",
        help="receive Akool job callbacks",
        description="Receive Akool job callbacks (encrypted webhooks) into an event store.",
    )
    actions = webhook.add_subparsers(dest="webhook_command", metavar="ACTION")
    serve = actions.add_parser(
        "serve",
        help="run the webhook receiver (ASGI, uvicorn)",
        description=(
            "Verify, decrypt, dedupe and store Akool callbacks. Reads the key pair from "
            f"{_ENV_ID} and {_ENV_SECRET} (never from the command line). Point a job's "
            "webhookUrl at http://HOST:PORT/webhook (or /webhook/<path-token>)."
        ),
    )
    serve.add_argument("--port", type=int, required=True, help="TCP port to listen on")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; put a TLS reverse proxy in front for Akool)",
    )
    serve.add_argument(
        "--store",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the event store (default sqlite:///akool-webhooks.sqlite)",
    )
    serve.add_argument(
        "--path-token",
        default=None,
        metavar="T",
        help=(
            "serve only POST /webhook/T (16-128 URL-safe characters); also read from "
            f"{_ENV_PATH_TOKEN}"
        ),
    )
    serve.add_argument(
        "--max-age-ms",
        type=int,
        default=15 * 60 * 1000,
        metavar="N",
        help="reject bodies stamped more than N ms from now; 0 disables (default 900000)",
    )
    serve.add_argument(
        "--max-body-bytes",
        type=int,
        default=64 * 1024,
        metavar="N",
        help="answer 413 to larger bodies (default 65536)",
    )
    serve.add_argument(
        "--accept-unsubmitted",
        action="store_true",
        help="also accept events for job ids not registered as submitted (weakens security)",
    )
    serve.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="log level of the receiver and uvicorn (default info)",
    )
    serve.set_defaults(func=_serve)
    webhook.set_defaults(func=lambda _args: (webhook.print_help(), 2)[1])


def _serve(args: argparse.Namespace) -> int:
    client_id = os.environ.get(_ENV_ID, "")
    client_secret = os.environ.get(_ENV_SECRET, "")
    if not client_id or not client_secret:
        print(
            f"akool-flows webhook serve: set {_ENV_ID} and {_ENV_SECRET} in the environment "
            "(they are not accepted as arguments, which other users can read with `ps`)",
            file=sys.stderr,
        )
        return 2
    if not 0 < args.port < 65536:
        print("akool-flows webhook serve: --port must be 1-65535", file=sys.stderr)
        return 2
    if args.max_age_ms < 0:
        print("akool-flows webhook serve: --max-age-ms must be >= 0", file=sys.stderr)
        return 2

    try:
        import uvicorn

        from akool_flows.api.redact import redact_url
        from akool_flows.webhook import WebhookEventStore, check_credentials, create_webhook_app
        from akool_flows.webhook.store import DEFAULT_STORE_URL
    except ImportError as exc:  # pragma: no cover - depends on the install
        print(
            f"akool-flows webhook serve needs the webhook extra ({exc.name} is missing): "
            "pip install 'akool-flows[webhook]'",
            file=sys.stderr,
        )
        return 2

    path_token = args.path_token or os.environ.get(_ENV_PATH_TOKEN) or None
    try:
        # Before opening the store, so a typo does not leave an empty database behind.
        check_credentials(client_id, client_secret)
    except ValueError as exc:
        print(f"akool-flows webhook serve: {exc}", file=sys.stderr)
        return 2
    store = WebhookEventStore(args.store or DEFAULT_STORE_URL)
    try:
        app = create_webhook_app(
            store,
            client_id,
            client_secret,
            path_token=path_token,
            max_body_bytes=args.max_body_bytes,
            max_age_ms=args.max_age_ms or None,
            require_submitted=not args.accept_unsubmitted,
        )
    except ValueError as exc:  # messages name the field and never echo a secret
        print(f"akool-flows webhook serve: {exc}", file=sys.stderr)
        store.close()
        return 2
    # Our receiver's lines (stored / duplicate / rejected: reason) next to uvicorn's.
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    route = "/webhook/<path-token>" if path_token else "/webhook"
    print(
        f"akool-flows webhook: POST http://{args.host}:{args.port}{route} -> {redact_url(store.url)}",
        file=sys.stderr,
        flush=True,
    )
    try:
        uvicorn.run(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            access_log=False,  # access lines would print the path token
        )
    finally:
        store.close()
    return 0
