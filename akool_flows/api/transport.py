"""HTTP senders under the clients: one call, bytes back, failures as our transport errors.

The async hot path (thousands of status polls per second) runs on aiohttp by default: httpx's
async pool tops out near 400 req/s here (encode/httpx#3215) while aiohttp sustains several
thousand. Callers who need httpx itself (a proxy setup, `httpx.MockTransport` in tests) pass an
httpx transport or client and get the httpx sender instead; the client API is the same.

What matters to the layers above is *where* a failure happened: a request that never left
(`ConnectError`) cannot have created a job; one that failed after sending may have. Only
failures that prove the request never left map to `ConnectError`; everything else, including
errors we do not recognise, maps to a class that says "may have created" (a garbled answer to a
create is not a reason to pay again).
"""

from __future__ import annotations

import asyncio
import json as _json
import urllib.request
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from akool_flows.api.errors import (
    ConnectError,
    ConnectionDroppedError,
    MalformedResponseError,
    RequestTimeoutError,
    TransportError,
)
from akool_flows.api.redact import redact_url
from akool_flows.api.sending import create_leaving

#: Set around a create call's aiohttp request (one task, so one request at a time).
_WRITING_CREATE: ContextVar[bool] = ContextVar("akool_writing_create", default=False)


def _request_class() -> Any:
    """aiohttp's request, telling `api.sending` when a create is about to be written: aiohttp
    calls ``send`` once the connection is acquired (pool waits and connecting are over) and
    before a byte of the request is buffered, so a process killed before it cannot have created
    anything. Status polls pay nothing for it (a trace config would cost every request)."""
    import aiohttp

    class MarkingRequest(aiohttp.ClientRequest):
        async def send(self, conn: Any) -> Any:
            if _WRITING_CREATE.get():
                create_leaving()
            return await super().send(conn)

    return MarkingRequest


@dataclass(slots=True)
class RawResponse:
    status_code: int
    content: bytes
    headers: Mapping[str, str]


def _dumps(body: Any) -> bytes:
    return _json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def as_timeout(timeout: float | httpx.Timeout | None) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    return httpx.Timeout(timeout if timeout is not None else 30.0, connect=min(10.0, timeout or 10.0))


class AsyncSender(Protocol):
    async def send(self, method: str, url: str, *, params: Mapping[str, Any] | None,
                   json: Any, headers: Mapping[str, str], creates: bool = False) -> RawResponse: ...

    async def aclose(self) -> None: ...


class AiohttpSender:
    """aiohttp session, created lazily inside the running loop (Airflow triggers, notebooks)."""

    def __init__(self, *, timeout: httpx.Timeout, max_connections: int = 100) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        # Proxy per origin ("http://host:port"), read from HTTP(S)_PROXY / NO_PROXY once.
        self._proxies: dict[str, str | None] = {}

    def _get_session(self) -> Any:
        import aiohttp

        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._loop is not loop:
            t = self._timeout
            connector = aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=300,
                                             enable_cleanup_closed=True)
            self._session = aiohttp.ClientSession(
                connector=connector, request_class=_request_class(),
                timeout=aiohttp.ClientTimeout(total=None, connect=t.connect, sock_read=t.read),
                # Akool's answers are small JSON; we parse them ourselves.
                # trust_env=False: with it aiohttp hops to a thread twice per request (netrc and
                # proxy lookups), which cut throughput ~5x; we resolve proxies once per origin.
                auto_decompress=True, raise_for_status=False, trust_env=False,
            )
            self._loop = loop
        return self._session

    async def send(self, method: str, url: str, *, params: Mapping[str, Any] | None,
                   json: Any, headers: Mapping[str, str], creates: bool = False) -> RawResponse:
        import aiohttp

        session = self._get_session()
        data = None
        if json is not None:
            data = _dumps(json)
            headers = {**headers, "Content-Type": "application/json"}
        try:
            # No redirects, as with httpx: a 3xx is an answer to judge, not a request to re-send.
            marking = _WRITING_CREATE.set(True) if creates else None
            try:
                async with session.request(method, url, params=params, data=data, headers=headers,
                                           proxy=self._proxy_for(url), allow_redirects=False) as resp:
                    content = await resp.read()
                    return RawResponse(resp.status, content, resp.headers)
            finally:
                if marking is not None:
                    _WRITING_CREATE.reset(marking)
        except aiohttp.ConnectionTimeoutError as exc:
            raise ConnectError(f"connect timeout: {type(exc).__name__}", endpoint=_path(url)) from None
        except aiohttp.ClientConnectorError as exc:
            raise ConnectError(f"cannot connect: {exc.os_error or type(exc).__name__}", endpoint=_path(url)) from None
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError):
            raise RequestTimeoutError("no answer in time", endpoint=_path(url)) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientPayloadError) as exc:
            raise ConnectionDroppedError(f"connection dropped: {type(exc).__name__}", endpoint=_path(url)) from None
        except aiohttp.ClientResponseError as exc:
            # With raise_for_status=False this is aiohttp's parser rejecting the answer (status
            # line, duplicate or non-numeric Content-Length, bad header, bad chunk): sent, unread.
            raise MalformedResponseError(f"malformed HTTP answer: {type(exc).__name__}",
                                         endpoint=_path(url)) from None
        except aiohttp.ClientError as exc:
            # Not proven to have failed before sending: TransportError says "may have created".
            raise TransportError(f"HTTP error: {type(exc).__name__}", endpoint=_path(url)) from None

    def _proxy_for(self, url: str) -> str | None:
        """The environment's proxy for `url`'s origin (HTTP_PROXY/HTTPS_PROXY/NO_PROXY), cached."""
        scheme, _, rest = url.partition("://")
        origin = f"{scheme}://{rest.split('/', 1)[0]}"
        try:
            return self._proxies[origin]
        except KeyError:
            pass
        host = httpx.URL(origin).host
        proxy = None if urllib.request.proxy_bypass(host) else urllib.request.getproxies().get(scheme)
        self._proxies[origin] = proxy
        return proxy

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _map_httpx_error(exc: httpx.HTTPError, url: str) -> TransportError:
    endpoint = _path(url)
    if isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)):
        return ConnectError(f"cannot connect: {type(exc).__name__}", endpoint=endpoint)
    if isinstance(exc, httpx.TimeoutException):
        return RequestTimeoutError("no answer in time", endpoint=endpoint)
    if isinstance(exc, (httpx.RemoteProtocolError, httpx.NetworkError)):
        return ConnectionDroppedError(f"connection dropped: {type(exc).__name__}", endpoint=endpoint)
    if isinstance(exc, httpx.DecodingError):  # e.g. Content-Encoding: gzip over a body that is not
        return MalformedResponseError(f"malformed HTTP answer: {type(exc).__name__}", endpoint=endpoint)
    # Not proven to have failed before sending: TransportError says "may have created".
    return TransportError(f"HTTP error: {type(exc).__name__}", endpoint=endpoint)


class HttpxAsyncSender:
    def __init__(self, client: httpx.AsyncClient, *, owned: bool) -> None:
        self._client = client
        self._owned = owned

    async def send(self, method: str, url: str, *, params: Mapping[str, Any] | None,
                   json: Any, headers: Mapping[str, str], creates: bool = False) -> RawResponse:
        if creates:  # httpx's pool wait is still ahead: marked early, which only errs towards "may exist"
            create_leaving()
        try:
            resp = await self._client.request(method, url, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise _map_httpx_error(exc, url) from None
        return RawResponse(resp.status_code, resp.content, resp.headers)

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()


class HttpxSyncSender:
    def __init__(self, client: httpx.Client, *, owned: bool) -> None:
        self._client = client
        self._owned = owned

    def send(self, method: str, url: str, *, params: Mapping[str, Any] | None,
             json: Any, headers: Mapping[str, str], creates: bool = False) -> RawResponse:
        if creates:
            create_leaving()
        try:
            resp = self._client.request(method, url, params=params, json=json, headers=headers)
        except httpx.HTTPError as exc:
            raise _map_httpx_error(exc, url) from None
        return RawResponse(resp.status_code, resp.content, resp.headers)

    def close(self) -> None:
        if self._owned:
            self._client.close()


def _path(url: str) -> str:
    # Endpoints in errors are paths only (no host, no query), token-like segments masked.
    return redact_url(httpx.URL(url).path)
