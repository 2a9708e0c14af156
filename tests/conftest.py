"""Fixtures shared by every test area."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve_asgi() -> Iterator[Callable[..., str]]:
    """Start an ASGI app under real uvicorn on 127.0.0.1 in a thread; returns its base URL.

    Servers stop when the test ends."""
    uvicorn = pytest.importorskip("uvicorn")
    running: list[tuple[Any, threading.Thread]] = []

    def start(app: Any, port: int | None = None) -> str:
        port = port or _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started, "uvicorn did not start"
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(5)
