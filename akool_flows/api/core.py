"""The client without I/O: everything both clients do, written once as generators ("flows").

A flow yields effects - `Send` this request, `Sleep` this long, `ObtainToken`, `AwaitEvent`,
`Gather` these sub-flows - and receives their results (a failed `Send` is thrown into it as
our transport error), the way httpx drives one auth flow from both its clients. `AkoolClient`
performs effects with blocking calls, `AsyncAkoolClient` with awaits; retries, token refresh,
the rate limit, envelope checks and the `wait` deadline rule exist only here, so the two
clients cannot drift apart.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from akool_flows.api import endpoints
from akool_flows.api.auth import Credentials, env_value, refresh_after, token_call
from akool_flows.api.endpoints import Call, check_envelope
from akool_flows.api.errors import (
    AkoolAPIError,
    AkoolError,
    JobFailedError,
    JobTimeoutError,
    RateLimitError,
    ValidationError,
)
from akool_flows.api.jobs import Job, JobStatus
from akool_flows.api.kinds import get_kind
from akool_flows.api.redact import redact_url
from akool_flows.api.ratecontrol import Pacer, RateController, controller_for, credential_key, request_cap
from akool_flows.api.retry import RetryPolicy
from akool_flows.api.transport import as_timeout

log = logging.getLogger("akool_flows.client")

DEFAULT_BASE_URL = "https://openapi.akool.com"
DEFAULT_DETECT_URL = "https://sg3.akool.com/detect"
USER_AGENT = "akool-flows/0.1"

T = TypeVar("T")


# --- effects: what a flow asks its driver to do ------------------------------------------------

@dataclass(frozen=True, slots=True)
class Send:
    """Send one HTTP request; the reply is the `RawResponse`, a failure is thrown into the flow."""

    method: str
    url: str
    params: Mapping[str, Any] | None
    json: Any
    headers: Mapping[str, str]
    #: A create call: the sender tells `api.sending` before the request is written.
    creates: bool = False


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class ObtainToken:
    """Exchange clientId/clientSecret for a token unless another caller just did: the driver
    holds its lock around `ClientCore.token_flow`, so concurrent calls share one getToken."""


@dataclass(frozen=True, slots=True)
class AwaitEvent:
    """The job's webhook event from `events`, or None. The async driver waits up to `timeout`
    for it (`events.wait_for`); the sync one looks once (`events.latest`)."""

    events: Any
    job_id: str
    timeout: float


@dataclass(frozen=True, slots=True)
class Gather:
    """Run independent flows, at most `concurrency` at once; the reply is their results in order."""

    flows: list[Generator[Any, Any, Any]]
    concurrency: int


Flow = Generator[Send | Sleep | ObtainToken | AwaitEvent | Gather, Any, T]


def _chunks(ids: list[str], size: int) -> Iterable[list[str]]:
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def _raise_if_failed(st: JobStatus, raise_on_failure: bool) -> JobStatus:
    if raise_on_failure and st.state == "failed":
        raise JobFailedError(st.error_message or f"{st.kind} job {st.job_id} failed", job_id=st.job_id,
                             kind=st.kind, code=st.error_code, status=st)
    return st


class ClientCore:
    """Settings, credentials and the flows both clients drive."""

    def __init__(self, *, base_url: str | None = None, detect_url: str | None = None, token: str | None = None,
                 api_key: str | None = None, client_id: str | None = None, client_secret: str | None = None,
                 timeout: float | httpx.Timeout | None = 30.0, retry: RetryPolicy | None = None,
                 max_requests_per_second: float | None = None, headers: Mapping[str, str] | None = None,
                 event_store: Any = None, strict: bool = False) -> None:
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
        #: The user's cap on top of the shared controller: this client never sends faster.
        self._cap = Pacer(max_requests_per_second)
        c = self.credentials
        identity = f"key:{c.api_key}" if c.api_key else f"id:{c.client_id}" if c.client_id else f"tok:{c.token}"
        #: The pace every client of this credential in the process shares (`ratecontrol`).
        self.rate_control: RateController = controller_for(credential_key(self.base_url, identity))
        self._extra_headers = {"User-Agent": USER_AGENT, **(headers or {})}
        #: Optional webhook event store: submitted ids are registered so the receiver accepts their events.
        self.event_store = event_store
        #: Refuse create fields the docs do not list (default: send them as given, warning once).
        self.strict = bool(strict)
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
                "event_store": self.event_store, "strict": self.strict}

    @classmethod
    def from_client(cls, other: ClientCore, **overrides: Any):
        """A client of this class (sync or async) on `other`'s account and settings.

        Unless ``overrides`` name other credentials, both clients hold the same credentials
        object: a token either exchanges (or a machine-wide token cache behind it, as the
        Airflow hook sets up) serves both, instead of one getToken per client."""
        client = cls(**{**other.settings(), **overrides})
        if not overrides.keys() & {"token", "api_key", "client_id", "client_secret", "base_url"}:
            client.credentials = other.credentials
        return client

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={redact_url(self.base_url)!r}, auth={self.credentials.mode!r})"

    def _url(self, call: Call) -> str:
        return self.detect_url if call.host == "detect" else f"{self.base_url}{call.path}"

    def _headers(self, call: Call) -> dict[str, str]:
        return {**self._extra_headers, **(self.credentials.headers() if call.auth else {})}

    def _after(self, call: Call, result: Any) -> Any:
        if isinstance(result, Job) and self.event_store is not None:
            for job in result.jobs:
                self.event_store.register_submitted(job.job_id, job.kind)
        return result

    # --- flows ----------------------------------------------------------------------------------

    def execute_flow(self, call: Call) -> Flow[Any]:
        """One call with retries, token refresh and the account's pace: the answer's `data`."""
        attempt = 0
        refreshed = False
        rate = self.rate_control
        while True:
            attempt += 1
            if call.auth and self.credentials.needs_exchange:
                yield ObtainToken()
            pause, round_ = rate.acquire()
            pause = max(pause, self._cap.delay(), request_cap.delay())
            if pause:
                yield Sleep(pause)
            self.request_count += 1
            sent = time.monotonic()
            try:
                raw = yield Send(call.method, self._url(call), call.params, call.body, self._headers(call),
                                 call.creates)
                data = check_envelope(call, raw)
            except AkoolError as exc:
                refused = isinstance(exc, RateLimitError)
                if refused or isinstance(exc, AkoolAPIError):  # an answer: the pace was fine unless refused
                    rate.record(round_, sent, refused=refused, retry_after=exc.retry_after)
                if refresh_after(call, exc, self.credentials, refreshed):
                    refreshed = True  # exchange once more (next attempt), then give up
                    continue
                retry = self.retry.should_retry(call, exc, attempt)
                log.log(logging.INFO if retry else logging.WARNING, "%s %s failed (attempt %d): %s%s",
                        call.method, call.path, attempt, exc, "; retrying" if retry else "")
                if not retry:
                    raise
                if not refused:  # a refusal is paced by the controller (slower now, and any Retry-After)
                    yield Sleep(self.retry.delay(exc, attempt))
                continue
            rate.record(round_, sent, refused=False)
            return data

    def call_flow(self, call: Call) -> Flow[Any]:
        """`execute_flow`, then the call's own parsing (a `Job`, a `JobStatus`, ...)."""
        data = yield from self.execute_flow(call)
        return self._after(call, call.parse(data))

    def token_flow(self) -> Flow[str]:
        """getToken for clientId/clientSecret; the credentials keep the token."""
        call = token_call(self.credentials)
        token = call.parse((yield from self.execute_flow(call)))
        self.credentials.set_token(token)
        return token

    def statuses_flow(self, kind: str, ids: Iterable[str], concurrency: int) -> Flow[dict[str, JobStatus]]:
        """One `listbyids` request per 100 ids where the API allows it, else one status call per
        id, `concurrency` at once. Ids Akool does not know are absent from the result."""
        k = get_kind(kind)
        id_list = list(dict.fromkeys(ids))
        out: dict[str, JobStatus] = {}
        if k.batch_poll:
            for chunk in _chunks(id_list, endpoints.BATCH_POLL_CHUNK):
                out.update((yield from self.call_flow(endpoints.statuses_batch(k, chunk))))
            return out
        calls = [endpoints.status(k.name, job_id) for job_id in id_list]  # bad ids fail before sending
        found = yield Gather([self.call_flow(c) for c in calls], concurrency)
        return dict(zip(id_list, found))

    def wait_flow(self, kind: str, job_id: str, *, poll_interval: float, timeout: float | None, events: Any,
                  raise_on_failure: bool) -> Flow[JobStatus]:
        """Until the job completes or fails. The deadline is checked before every poll (none is
        sent once time is up) and polls start `poll_interval` apart however long each takes.
        With `events`, a job also completes from its webhook event."""
        if poll_interval <= 0:
            raise ValidationError("poll_interval must be > 0", field="poll_interval")
        deadline = None if timeout is None else time.monotonic() + timeout
        last: JobStatus | None = None
        while True:
            started = time.monotonic()
            remaining = None if deadline is None else deadline - started
            if remaining is not None and remaining <= 0:
                raise JobTimeoutError(f"{kind} job {job_id} not finished after {timeout}s", job_id=job_id,
                                      kind=kind, last_status=last)
            step = poll_interval if remaining is None else min(poll_interval, remaining)
            if events is not None:
                event = yield AwaitEvent(events, job_id, step)
                st = JobStatus.from_event(kind, event) if event is not None else None
                if st is not None:
                    return _raise_if_failed(st, raise_on_failure)
            last = yield from self.call_flow(endpoints.status(kind, job_id))
            if last.done:
                return _raise_if_failed(last, raise_on_failure)
            rest = step - (time.monotonic() - started)
            if rest > 0:
                yield Sleep(rest)

    def run_flow(self, kind: str, fields: Mapping[str, Any], *, poll_interval: float,
                 timeout: float | None) -> Flow[JobStatus]:
        """Submit, then wait (raising `JobFailedError` on status 4)."""
        if get_kind(kind).splits(fields):
            # One status comes back: the other jobs would be paid for and never looked at.
            raise ValidationError(f"run() waits for one job, and these {kind} fields make several; submit() "
                                  "them and wait for each of job.jobs", field=get_kind(kind).split_field)
        job = yield from self.call_flow(endpoints.submit(kind, fields, strict=self.strict))
        return (yield from self.wait_flow(kind, job.job_id, poll_interval=poll_interval, timeout=timeout,
                                          events=None, raise_on_failure=True))
