"""`AkoolClient` (sync) and `AsyncAkoolClient` (async): one generic job interface over the registry.

    async with AsyncAkoolClient.from_env() as client:
        job = await client.submit("moderation", content="hello", type=4)
        status = await client.wait("moderation", job.job_id)

Both clients share the operations below (each builds an `endpoints.Call` and runs it); they differ
only in how a call is executed (blocking httpx vs. aiohttp on the running loop).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx

from akool_flows.api import endpoints
from akool_flows.api.endpoints import Call, check_envelope
from akool_flows.api.auth import Credentials, env_value, refresh_after, token_call
from akool_flows.api.errors import (
    AkoolError,
    JobFailedError,
    JobTimeoutError,
    ValidationError,
)
from akool_flows.api.jobs import Job, JobStatus
from akool_flows.api.kinds import get_kind
from akool_flows.api.redact import redact_url
from akool_flows.api.retry import RateLimiter, RetryPolicy
from akool_flows.api.transport import (
    AiohttpSender,
    HttpxAsyncSender,
    HttpxSyncSender,
    RawResponse,
    as_timeout,
)

log = logging.getLogger("akool_flows.client")

DEFAULT_BASE_URL = "https://openapi.akool.com"
DEFAULT_DETECT_URL = "https://sg3.akool.com/detect"
USER_AGENT = "akool-flows/0.1"
_REFRESH_TOKEN = -1.0


class _Operations:
    """Operations shared by both clients; `_run` returns a value (sync) or an awaitable (async)."""

    def _run(self, call: Call) -> Any:  # pragma: no cover - implemented by both clients
        raise NotImplementedError

    # --- jobs --------------------------------------------------------------------------------

    def submit(self, kind: str, /, **fields: Any) -> Any:
        """Create a job of `kind` with the docs' field names; returns a `Job` (its `_id`)."""
        return self._run(endpoints.submit(kind, fields))

    def status(self, kind: str, job_id: str) -> Any:
        """Where job `job_id` stands, normalised (`JobStatus`)."""
        return self._run(endpoints.status(kind, job_id))

    def cancel(self, kind: str, job: Job | str) -> Any:
        """Cancel a job where the API allows it (face swap / re-age tasks, live sessions)."""
        return self._run(endpoints.cancel(kind, job))

    # --- account and catalogues ----------------------------------------------------------------

    def voices(self, from_: int | None = None) -> Any:
        return self._run(endpoints.voices(from_))

    def avatars(self, from_: int | None = None, type_: int | None = None, page: int | None = None,
                size: int | None = None) -> Any:
        return self._run(endpoints.avatars(from_, type_, page, size))

    def live_avatars(self, page: int | None = None, size: int | None = None) -> Any:
        return self._run(endpoints.live_avatars(page, size))

    def avatar_detail(self, avatar_record_id: str) -> Any:
        return self._run(endpoints.avatar_detail(avatar_record_id))

    def languages(self) -> Any:
        """Video translation languages: `[{"lang_code", "lang_name", "url"}]`."""
        return self._run(endpoints.languages())

    def credit_info(self) -> Any:
        """The account's credit balance (faceswap quota info)."""
        return self._run(endpoints.credit_info())

    def delete_results(self, ids: Iterable[str]) -> Any:
        return self._run(endpoints.delete_results(ids))

    def cancel_faceswap_jobs(self, task_ids: Iterable[str]) -> Any:
        return self._run(endpoints.cancel_faceswap_jobs(task_ids))

    def face_detect(self, *, image_url: str | None = None, img: str | None = None,
                    single_face: bool = False) -> Any:
        """Face landmarks; `.opts` is `landmarks_str[0]`, ready for sourceImage/targetImage."""
        return self._run(endpoints.face_detect(image_url=image_url, img=img, single_face=single_face))

    # --- live avatar sessions ------------------------------------------------------------------

    def create_session(self, avatar_id: str, duration: int) -> Any:
        return self._run(endpoints.session_create(avatar_id, duration))

    def session_detail(self, session_id: str) -> Any:
        return self._run(endpoints.session_detail(session_id))

    def list_sessions(self, page: int | None = None, size: int | None = None, status: int | None = None) -> Any:
        return self._run(endpoints.session_list(page, size, status))

    def close_session(self, session_id: str) -> Any:
        return self._run(endpoints.session_close(session_id))


class _BaseClient(_Operations):
    def __init__(self, *, base_url: str | None = None, detect_url: str | None = None, token: str | None = None,
                 api_key: str | None = None, client_id: str | None = None, client_secret: str | None = None,
                 timeout: float | httpx.Timeout | None = 30.0, retry: RetryPolicy | None = None,
                 max_requests_per_second: float | None = None, headers: Mapping[str, str] | None = None,
                 event_store: Any = None) -> None:
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.detect_url = detect_url or DEFAULT_DETECT_URL
        for name, url in (("base_url", self.base_url), ("detect_url", self.detect_url)):
            if not url.startswith(("http://", "https://")):
                raise ValidationError(f"{name} must be an http(s) URL, got {redact_url(url)!r}", field=name)
            if "@" in urlsplit(url).netloc:
                # httpx would send it as Basic auth in place of the token and log it in clear;
                # aiohttp refuses it. A proxy that needs it: pass your own http_client.
                raise ValidationError(f"{name} must not contain user:password@, got {redact_url(url)!r}",
                                      field=name)
        self.credentials = Credentials(token=token, api_key=api_key, client_id=client_id,
                                       client_secret=client_secret)
        self.timeout = as_timeout(timeout)
        self.retry = retry or RetryPolicy()
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValidationError("max_requests_per_second must be > 0", field="max_requests_per_second")
        self.max_requests_per_second = max_requests_per_second
        self._limiter = RateLimiter(max_requests_per_second)
        self._extra_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        #: Optional webhook event store: submitted ids are registered so the receiver accepts their events.
        self.event_store = event_store
        #: HTTP requests sent (every attempt counts, retries included). Cheap, useful in tests and benchmarks.
        self.request_count = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any):
        """Build a client from AKOOL_BASE_URL, AKOOL_DETECT_URL, AKOOL_API_TOKEN, AKOOL_API_KEY,
        AKOOL_CLIENT_ID and AKOOL_CLIENT_SECRET; keyword arguments win over the environment."""
        env = os.environ if env is None else env
        kwargs: dict[str, Any] = {
            "base_url": env_value("AKOOL_BASE_URL", env),
            "detect_url": env_value("AKOOL_DETECT_URL", env),
            "token": env_value("AKOOL_API_TOKEN", env),
            "api_key": env_value("AKOOL_API_KEY", env),
            "client_id": env_value("AKOOL_CLIENT_ID", env),
            "client_secret": env_value("AKOOL_CLIENT_SECRET", env),
        }
        kwargs.update(overrides)
        return cls(**kwargs)

    def settings(self) -> dict[str, Any]:
        """Constructor arguments for another client on the same account and settings.

        Holds the credentials: hand it to a client constructor, never to a log."""
        c = self.credentials
        return {"base_url": self.base_url, "detect_url": self.detect_url, "token": c.token,
                "api_key": c.api_key, "client_id": c.client_id, "client_secret": c.client_secret,
                "timeout": self.timeout, "retry": self.retry,
                "max_requests_per_second": self.max_requests_per_second,
                "headers": {k: v for k, v in self._extra_headers.items() if k != "User-Agent"},
                "event_store": self.event_store}

    @classmethod
    def from_client(cls, other: _BaseClient, **overrides: Any):
        """A client of this class (sync or async) on `other`'s account and settings."""
        return cls(**{**other.settings(), **overrides})

    def _url(self, call: Call) -> str:
        return self.detect_url if call.host == "detect" else f"{self.base_url}{call.path}"

    def _headers(self, call: Call) -> dict[str, str]:
        return {**self._extra_headers, **(self.credentials.headers() if call.auth else {})}

    def _slot_delay(self) -> float:
        """Seconds to wait for the next request slot under the client-side rate limit."""
        return self._limiter.delay()

    def _after(self, call: Call, result: Any) -> Any:
        if isinstance(result, Job) and self.event_store is not None:
            self.event_store.register_submitted(result.job_id, result.kind)
        return result

    def _after_failure(self, call: Call, exc: AkoolError, attempt: int, refreshed: bool) -> float:
        """After a failed attempt: `_REFRESH_TOKEN` (exchange the token again, retry at once),
        the backoff in seconds before the next attempt, or re-raise `exc`."""
        if refresh_after(call, exc, self.credentials, refreshed):
            # An exchanged token may have been revoked: exchange once more, then give up.
            return _REFRESH_TOKEN
        retry = self.retry.should_retry(call, exc, attempt)
        log.log(logging.INFO if retry else logging.WARNING, "%s %s failed (attempt %d): %s%s",
                call.method, call.path, attempt, exc, "; retrying" if retry else "")
        if not retry:
            raise exc
        return self.retry.delay(exc, attempt)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={redact_url(self.base_url)!r}, auth={self.credentials.mode!r})"


def _chunks(ids: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _raise_if_failed(st: JobStatus, raise_on_failure: bool) -> JobStatus:
    if raise_on_failure and st.state == "failed":
        raise JobFailedError(st.error_message or f"{st.kind} job {st.job_id} failed", job_id=st.job_id,
                             kind=st.kind, code=st.error_code, status=st)
    return st


class AsyncAkoolClient(_BaseClient):
    """Async client. By default it sends over aiohttp (fast); pass `transport=` (an
    `httpx.AsyncBaseTransport`) or `http_client=` (an `httpx.AsyncClient`) to use httpx."""

    def __init__(self, *, transport: httpx.AsyncBaseTransport | None = None,
                 http_client: httpx.AsyncClient | None = None, max_connections: int = 64,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if http_client is not None:
            self._sender: Any = HttpxAsyncSender(http_client, owned=False)
        elif transport is not None:
            self._sender = HttpxAsyncSender(httpx.AsyncClient(transport=transport, timeout=self.timeout),
                                            owned=True)
        else:
            self._sender = AiohttpSender(timeout=self.timeout, max_connections=max_connections)
        self._token_lock: asyncio.Lock | None = None

    async def __aenter__(self) -> AsyncAkoolClient:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._sender.aclose()

    async def _ensure_token(self) -> None:
        if not self.credentials.needs_exchange:
            return
        if self._token_lock is None:
            self._token_lock = asyncio.Lock()
        async with self._token_lock:
            if self.credentials.needs_exchange:
                call = token_call(self.credentials)
                self.credentials.set_token(call.parse(await self._execute(call)))

    async def _execute(self, call: Call) -> Any:
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if call.auth:
                await self._ensure_token()
            delay = self._slot_delay()
            if delay:
                await asyncio.sleep(delay)
            try:
                self.request_count += 1
                raw: RawResponse = await self._sender.send(call.method, self._url(call), params=call.params,
                                                           json=call.body, headers=self._headers(call))
                return check_envelope(call, raw)
            except AkoolError as exc:
                pause = self._after_failure(call, exc, attempt, refreshed)
                refreshed = refreshed or pause == _REFRESH_TOKEN
                if pause > 0:
                    await asyncio.sleep(pause)

    async def _run(self, call: Call) -> Any:
        return self._after(call, call.parse(await self._execute(call)))

    async def statuses(self, kind: str, ids: Iterable[str], *, concurrency: int = 16) -> dict[str, JobStatus]:
        """Statuses of many jobs: one `listbyids` request per 100 ids where the API allows it,
        else concurrent single requests. Ids Akool does not know are absent from the result."""
        k = get_kind(kind)
        id_list = list(dict.fromkeys(ids))
        out: dict[str, JobStatus] = {}
        if k.batch_poll:
            for chunk in _chunks(id_list, endpoints.BATCH_POLL_CHUNK):
                out.update(await self._run(endpoints.statuses_batch(k, chunk)))
            return out
        sem = asyncio.Semaphore(concurrency)

        async def one(job_id: str) -> None:
            async with sem:
                out[job_id] = await self.status(k.name, job_id)

        await asyncio.gather(*(one(i) for i in id_list))
        return out

    async def wait(self, kind: str, job_id: str, *, poll_interval: float = 5.0, timeout: float | None = None,
                   events: Any = None, raise_on_failure: bool = False) -> JobStatus:
        """Wait until the job completes or fails. With `events` (a webhook event store) a job
        completes from its event; a status poll runs whenever no event arrived within
        `poll_interval`, so a lost webhook never hangs the wait."""
        if poll_interval <= 0:
            raise ValidationError("poll_interval must be > 0", field="poll_interval")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: JobStatus | None = None
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobTimeoutError(f"{kind} job {job_id} not finished after {timeout}s", job_id=job_id,
                                      kind=kind, last_status=last)
            step = poll_interval if remaining is None else min(poll_interval, remaining)
            if events is not None:
                event = await events.wait_for(job_id, timeout=step)
                st = JobStatus.from_event(kind, event) if event is not None else None
                if st is not None:
                    return _raise_if_failed(st, raise_on_failure)
            last = await self.status(kind, job_id)
            if last.done:
                return _raise_if_failed(last, raise_on_failure)
            if events is None:
                await asyncio.sleep(step)

    async def run(self, kind: str, /, *, poll_interval: float = 5.0, timeout: float | None = None,
                  **fields: Any) -> JobStatus:
        """Submit and wait: the finished job's status (raises `JobFailedError` on status 4)."""
        job = await self.submit(kind, **fields)
        return await self.wait(kind, job.job_id, poll_interval=poll_interval, timeout=timeout,
                               raise_on_failure=True)


class AkoolClient(_BaseClient):
    """Blocking client over httpx. Same operations as `AsyncAkoolClient`."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None, http_client: httpx.Client | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if http_client is not None:
            self._sender: Any = HttpxSyncSender(http_client, owned=False)
        else:
            self._sender = HttpxSyncSender(httpx.Client(transport=transport, timeout=self.timeout), owned=True)
        self._token_lock = threading.Lock()

    def __enter__(self) -> AkoolClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._sender.close()

    def _ensure_token(self) -> None:
        if not self.credentials.needs_exchange:
            return
        with self._token_lock:
            if self.credentials.needs_exchange:
                call = token_call(self.credentials)
                self.credentials.set_token(call.parse(self._execute(call)))

    def _execute(self, call: Call) -> Any:
        attempt = 0
        refreshed = False
        while True:
            attempt += 1
            if call.auth:
                self._ensure_token()
            delay = self._slot_delay()
            if delay:
                time.sleep(delay)
            try:
                self.request_count += 1
                raw = self._sender.send(call.method, self._url(call), params=call.params, json=call.body,
                                        headers=self._headers(call))
                return check_envelope(call, raw)
            except AkoolError as exc:
                pause = self._after_failure(call, exc, attempt, refreshed)
                refreshed = refreshed or pause == _REFRESH_TOKEN
                if pause > 0:
                    time.sleep(pause)

    def _run(self, call: Call) -> Any:
        return self._after(call, call.parse(self._execute(call)))

    def statuses(self, kind: str, ids: Iterable[str]) -> dict[str, JobStatus]:
        """Statuses of many jobs (batched `listbyids` where the API allows it)."""
        k = get_kind(kind)
        id_list = list(dict.fromkeys(ids))
        out: dict[str, JobStatus] = {}
        if k.batch_poll:
            for chunk in _chunks(id_list, endpoints.BATCH_POLL_CHUNK):
                out.update(self._run(endpoints.statuses_batch(k, chunk)))
            return out
        for job_id in id_list:
            out[job_id] = self.status(k.name, job_id)
        return out

    def wait(self, kind: str, job_id: str, *, poll_interval: float = 5.0, timeout: float | None = None,
             events: Any = None, raise_on_failure: bool = False) -> JobStatus:
        """Block until the job completes or fails (see `AsyncAkoolClient.wait`). With `events`,
        the store's latest event is checked before each poll."""
        if poll_interval <= 0:
            raise ValidationError("poll_interval must be > 0", field="poll_interval")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: JobStatus | None = None
        while True:
            if events is not None:
                st = JobStatus.from_event(kind, events.latest(job_id))
                if st is not None:
                    return _raise_if_failed(st, raise_on_failure)
            last = self.status(kind, job_id)
            if last.done:
                return _raise_if_failed(last, raise_on_failure)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise JobTimeoutError(f"{kind} job {job_id} not finished after {timeout}s", job_id=job_id,
                                      kind=kind, last_status=last)
            time.sleep(poll_interval if remaining is None else min(poll_interval, remaining))

    def run(self, kind: str, /, *, poll_interval: float = 5.0, timeout: float | None = None,
            **fields: Any) -> JobStatus:
        """Submit and wait: the finished job's status (raises `JobFailedError` on status 4)."""
        job = self.submit(kind, **fields)
        return self.wait(kind, job.job_id, poll_interval=poll_interval, timeout=timeout, raise_on_failure=True)
