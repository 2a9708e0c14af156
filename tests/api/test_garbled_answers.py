"""A create whose answer cannot be read may have created a paid job: it is raised, never retried.

Only failures that prove the request never left (refused, TLS handshake failed) allow a retry.
Each garbled answer is written byte for byte by the scripted server through all three senders;
aiohttp, h11 and httpx's decoders each reject them with a different exception class.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from akool_flows.api import RetryPolicy
from akool_flows.api import errors as E
from akool_flows.api.errors import create_may_have_happened

from .helpers import DRIVERS, make_client, refused_url, scripted_server

CREATE_PATH = "/api/open/v3/content/analysis/sentiment"
OK_BODY = b'{"code":1000,"msg":"OK","data":{"_id":"65f8017f56559aa67f0ecde7","status":1}}'
# Five tries allowed: a retried create would show up as five requests at the server.
RETRY5 = RetryPolicy(max_attempts=5, initial_backoff=0.001, max_backoff=0.002)


def _head(*lines: str) -> bytes:
    return ("HTTP/1.1 200 OK\r\n" + "".join(f"{line}\r\n" for line in lines) + "\r\n").encode()


# Each one is an answer to a create Akool may well have processed (the body even says so).
GARBLED = {
    "two-content-lengths": _head("Content-Type: application/json", f"Content-Length: {len(OK_BODY)}",
                                 f"Content-Length: {len(OK_BODY) + 1}") + OK_BODY,
    "non-numeric-content-length": _head("Content-Type: application/json", "Content-Length: 7a") + OK_BODY,
    "space-in-header-name": _head("Content-Type: application/json", "X Trace: 1",
                                  f"Content-Length: {len(OK_BODY)}") + OK_BODY,
    "gzip-that-is-not-gzip": _head("Content-Type: application/json", "Content-Encoding: gzip",
                                   f"Content-Length: {len(OK_BODY)}") + OK_BODY,
    "bad-status-line": b"HTTP/1.1 2OO OK\r\nContent-Length: 2\r\n\r\n{}",
    "bad-chunk-size": _head("Content-Type: application/json", "Transfer-Encoding: chunked") + b"zz\r\n{}\r\n0\r\n\r\n",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
}


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("garble", sorted(GARBLED))
async def test_garbled_answer_to_a_create_may_have_created_and_is_sent_once(driver, garble):
    with scripted_server(lambda req: ("wire", GARBLED[garble])) as srv:
        drv = make_client(driver, srv.url, retry=RETRY5)
        try:
            with pytest.raises(E.TransportError) as info:
                await drv("submit", "moderation", content="hello", type=4)
        finally:
            await drv.close()
    exc = info.value
    assert srv.count(CREATE_PATH) == 1 and drv.client.request_count == 1
    assert exc.may_have_created is True and create_may_have_happened(exc) is True
    assert exc.endpoint == CREATE_PATH


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("garble", ["two-content-lengths", "gzip-that-is-not-gzip"])
async def test_garbled_answer_to_a_status_call_is_retried(driver, garble):
    with scripted_server(lambda req: ("wire", GARBLED[garble])) as srv:
        drv = make_client(driver, srv.url)  # 3 attempts
        try:
            with pytest.raises(E.TransportError) as info:
                await drv("status", "moderation", "65f8180c24d9989e93dde3b6")
        finally:
            await drv.close()
    assert info.value.retryable and drv.client.request_count == 3


@pytest.mark.parametrize("driver", DRIVERS)
async def test_refused_connection_still_retries_a_create(driver):
    drv = make_client(driver, refused_url(), retry=RETRY5)
    try:
        with pytest.raises(E.ConnectError) as info:
            await drv("submit", "moderation", content="hello", type=4)
    finally:
        await drv.close()
    assert not info.value.may_have_created and drv.client.request_count == 5


@contextlib.contextmanager
def _plain_tcp_listener():
    """A plain-TCP port for an https URL: every TLS handshake fails before a request is sent."""
    import threading

    loop = asyncio.new_event_loop()
    connections: list[int] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(reader.read(512), 2)
            writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()
        writer.close()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = asyncio.run_coroutine_threadsafe(asyncio.start_server(handle, "127.0.0.1", 0), loop).result(5)
    try:
        yield f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}", connections
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)


@pytest.mark.parametrize("driver", DRIVERS)
async def test_failed_tls_handshake_is_not_created_and_retries_a_create(driver):
    with _plain_tcp_listener() as (url, connections):
        drv = make_client(driver, url, retry=RETRY5)
        try:
            with pytest.raises(E.ConnectError) as info:
                await drv("submit", "moderation", content="hello", type=4)
        finally:
            await drv.close()
    assert not info.value.may_have_created and drv.client.request_count == 5
    assert len(connections) == 5  # each attempt reached the port, none got past the handshake


def _subclasses(cls: type) -> set[type]:
    return {cls} | {s for c in cls.__subclasses__() for s in _subclasses(c)}


def test_only_proofs_of_not_sending_or_of_refusal_say_not_created():
    # The catch-all a sender falls back on for errors it does not recognise says "may have created".
    assert E.TransportError("HTTP error: SomethingNew").may_have_created is True
    not_created = {c for c in _subclasses(E.TransportError) if not c.may_have_created}
    assert not_created == {E.ConnectError, E.HTTPStatusError}
