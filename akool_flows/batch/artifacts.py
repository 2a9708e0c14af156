"""Download result files before they expire (Akool keeps them 7 days), with a checksum for each.

Target: a local folder or any fsspec URL (``s3://bucket/prefix``, ``gcs://...``, ``memory://x``).
Only http(s) result URLs are fetched, and a size limit is enforced while streaming.

What a hostile or broken result URL cannot do:
- name the file: the stem comes from the row and the extension from the response's content type
  (a short allow-list), never from the URL, so ``x.exe`` / ``x.hta`` are saved as media or ``.bin``;
- send us elsewhere: redirects stay on the URL's own host and port (and never go from https to
  http) unless the caller allows other hosts (Akool links may redirect to a CDN);
- hold the run: each file has a total deadline (redirects, retries and a trickling body included),
  after which the artifact records an error and the row keeps its result URL; a cancel event
  (the CLI's first Ctrl-C) stops every download at once.

The CLI sets the redirect and deadline choices for the downloader the engine builds through
`download_policy` (a context variable), so they reach it without a new engine argument.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = ["Artifact", "ArtifactDownloader", "DEFAULT_MAX_BYTES", "DEFAULT_DEADLINE", "DownloadPolicy",
           "download_policy"]

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: above the docs' largest inputs (1 GB video moderation)
DEFAULT_DEADLINE = 300.0  # seconds per file: a 1 GB video at ~30 Mbit/s
_MAX_REDIRECTS = 5
_CHUNK = 256 * 1024
_MEDIA_EXT = {"image": ".png", "video": ".mp4", "audio": ".mp3", "text": ".txt"}
_CONTENT_EXT = {
    "image/png": ".png", "image/jpeg": ".jpg", "image/jpg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
    "video/mp4": ".mp4", "video/quicktime": ".mov", "video/webm": ".webm",
    "audio/mpeg": ".mp3", "audio/mp3": ".mp3", "audio/wav": ".wav", "audio/wave": ".wav", "audio/x-wav": ".wav",
    "audio/vnd.wave": ".wav", "audio/mp4": ".m4a", "audio/aac": ".aac", "audio/ogg": ".ogg",
    "text/plain": ".txt", "application/json": ".json",
}
_REDIRECTS = (301, 302, 303, 307, 308)
_QUERY = re.compile(r"\?[^\s'\"]*")


@dataclass(frozen=True)
class DownloadPolicy:
    """Choices a caller makes about downloads (see `download_policy`)."""

    allow_cross_host_redirects: bool = False
    deadline: float = DEFAULT_DEADLINE
    cancel: Any = None  # threading.Event / asyncio.Event: when set, downloads stop at once


_POLICY: contextvars.ContextVar[DownloadPolicy] = contextvars.ContextVar("akool_download_policy",
                                                                         default=DownloadPolicy())


@contextlib.contextmanager
def download_policy(**changes: Any) -> Iterator[DownloadPolicy]:
    """Within the block (and event loops started in it), downloaders use these defaults."""
    policy = replace(_POLICY.get(), **changes)
    if not policy.deadline > 0:
        raise ValueError(f"deadline must be > 0 seconds, got {policy.deadline!r}")
    token = _POLICY.set(policy)
    try:
        yield policy
    finally:
        _POLICY.reset(token)


@dataclass(frozen=True)
class Artifact:
    """One downloaded result file (or why it could not be downloaded)."""

    url: str
    path: str | None = None
    sha256: str | None = None
    bytes: int | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class DownloadError(Exception):
    pass


def extension_for(content_type: str | None, media: str) -> str:
    """The file extension for a response: its content type, else the kind's media, else ``.bin``."""
    mime = (content_type or "").split(";")[0].strip().lower()
    return _CONTENT_EXT.get(mime) or _MEDIA_EXT.get(media, ".bin")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port


def _where(url: str) -> str:
    # Host and port only: a redirect's path and query may carry a signed token.
    scheme, host, port = _origin(url)
    return f"{scheme}://{host}:{port}"


class ArtifactDownloader:
    """Fetch result URLs into ``target`` with at most ``concurrency`` downloads at a time.

    ``timeout``: seconds without progress (connect, each read); ``deadline``: seconds for a whole
    file. ``None`` for ``allow_cross_host_redirects``, ``deadline`` or ``cancel`` takes the value
    of the surrounding `download_policy`.
    """

    def __init__(self, target: str | os.PathLike[str], *, media: str = "none", max_bytes: int = DEFAULT_MAX_BYTES,
                 concurrency: int = 4, timeout: float = 60.0, attempts: int = 3,
                 allow_cross_host_redirects: bool | None = None, deadline: float | None = None,
                 cancel: Any = None) -> None:
        self.target = str(target)
        self.remote = "://" in self.target and not self.target.startswith("file://")
        if not self.remote:
            self.local_dir = Path(self.target.removeprefix("file://"))
            self.local_dir.mkdir(parents=True, exist_ok=True)
        else:
            try:
                import fsspec  # noqa: F401 - checked now so a missing extra fails before any job runs
            except ImportError:
                raise DownloadError(f"downloading to {self.target!r} needs fsspec: pip install "
                                    "'akool-flows[parquet]'") from None
        if max_bytes <= 0:
            raise ValueError("max_bytes must be > 0")
        policy = _POLICY.get()
        self.allow_cross_host_redirects = (policy.allow_cross_host_redirects if allow_cross_host_redirects is None
                                           else bool(allow_cross_host_redirects))
        self.deadline = float(policy.deadline if deadline is None else deadline)
        if not self.deadline > 0:
            raise ValueError("deadline must be > 0 seconds")
        self.cancel = policy.cancel if cancel is None else cancel
        self.media = media
        self.max_bytes = max_bytes
        self.attempts = max(1, attempts)
        self._sem = asyncio.Semaphore(concurrency)
        # Redirects are followed by hand (`_open`), each one checked before it is requested.
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                                         follow_redirects=False, limits=httpx.Limits(max_connections=concurrency))

    async def aclose(self) -> None:
        await self._client.aclose()

    async def download_all(self, name_stem: str, urls: list[str]) -> list[Artifact]:
        """Download every URL of one row; failures are recorded per file, never raised."""
        out = []
        for i, url in enumerate(urls):
            out.append(await self.download(f"{name_stem}-{i}" if len(urls) > 1 else name_stem, url))
        return out

    async def download(self, stem: str, url: str) -> Artifact:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
            return Artifact(url=str(url), error="not an http(s) URL; not downloaded")
        if self._cancelled():
            return Artifact(url=url, error="not downloaded: the run was stopped (a rerun downloads it)")
        async with self._sem:
            # The deadline starts with the download, not while it waits for a free slot.
            task = asyncio.ensure_future(self._attempts(stem, url))
            try:
                return await self._watch(task, url)
            finally:
                if not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    def _cancelled(self) -> bool:
        return self.cancel is not None and self.cancel.is_set()

    async def _watch(self, task: asyncio.Future[Artifact], url: str) -> Artifact:
        loop = asyncio.get_running_loop()
        end = loop.time() + self.deadline
        while True:
            left = end - loop.time()
            # A threading.Event cannot wake the loop: look at it a few times a second.
            await asyncio.wait({task}, timeout=min(left, 0.2) if self.cancel is not None else left)
            if task.done():
                return task.result()
            if self._cancelled():
                return Artifact(url=url, error="download stopped: the run was stopped (a rerun downloads it)")
            if loop.time() >= end:
                return Artifact(url=url, error=f"download not finished within its {self.deadline:g} s deadline; "
                                               "stopped (the result URL is kept)")

    async def _attempts(self, stem: str, url: str) -> Artifact:
        last = "unknown error"
        for attempt in range(1, self.attempts + 1):
            try:
                return await self._fetch(stem, url)
            except DownloadError as exc:
                return Artifact(url=url, error=str(exc))
            except (httpx.HTTPError, OSError) as exc:
                last = _QUERY.sub("?…", f"{type(exc).__name__}: {exc}")
                if attempt < self.attempts:
                    await asyncio.sleep(0.2 * 2**attempt)
        return Artifact(url=url, error=f"download failed after {self.attempts} attempts: {last}")

    def _check_redirect(self, first: str, current: str, nxt: str) -> None:
        scheme, _, _ = _origin(nxt)
        if scheme not in ("http", "https"):
            raise DownloadError(f"redirect to a {scheme or 'relative'} URL refused")
        if _origin(current)[0] == "https" and scheme == "http":
            raise DownloadError(f"redirect from https to plain http ({_where(nxt)}) refused")
        if not self.allow_cross_host_redirects and _origin(nxt)[1:] != _origin(first)[1:]:
            raise DownloadError(f"redirect to another host or port ({_where(nxt)}) refused; allow it with "
                                "allow_cross_host_redirects=True (CLI: --download-follow-redirects)")

    async def _open(self, url: str) -> httpx.Response:
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            response = await self._client.send(self._client.build_request("GET", current), stream=True)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or not location:
                return response
            await response.aclose()
            nxt = urljoin(current, location)
            self._check_redirect(url, current, nxt)
            current = nxt
        raise DownloadError(f"more than {_MAX_REDIRECTS} redirects; not downloaded")

    async def _fetch(self, stem: str, url: str) -> Artifact:
        response = await self._open(url)
        try:
            if response.status_code in (403, 404, 410):
                raise DownloadError(f"HTTP {response.status_code}: the result is gone (expired after 7 days?)")
            if response.status_code != 200:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                            response=response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise DownloadError(f"{int(declared):,} bytes is over the {self.max_bytes:,}-byte limit")
            name = stem + extension_for(response.headers.get("content-type"), self.media)
            return await self._save(response, url, name)
        finally:
            await response.aclose()

    async def _save(self, response: httpx.Response, url: str, name: str) -> Artifact:
        digest = hashlib.sha256()
        size = 0
        # Stream to a temporary file next to the target (or in the temp dir for remote
        # targets), so memory stays flat whatever the file size.
        fd, tmp = _spool(None if self.remote else self.local_dir, name)
        try:
            with os.fdopen(fd, "wb") as fh:
                async for chunk in response.aiter_bytes(_CHUNK):
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise DownloadError(f"over the {self.max_bytes:,}-byte limit; download stopped")
                    digest.update(chunk)
                    fh.write(chunk)
            if self.remote:
                final = f"{self.target.rstrip('/')}/{name}"
                await asyncio.to_thread(_upload, tmp, final)
            else:
                final = str(self.local_dir / name)
                os.replace(tmp, final)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return Artifact(url=url, path=final, sha256=digest.hexdigest(), bytes=size)


def _spool(folder: Path | None, name: str) -> tuple[int, str]:
    """A new file for the body: private in the shared temp dir (remote targets); in the target
    folder, 0666 minus the umask like any file the user saves (mkstemp would make it 0600)."""
    if folder is None:
        return tempfile.mkstemp(prefix=f".{name}.")
    while True:
        tmp = str(folder / f".{name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def _upload(local: str, dest: str) -> None:
    import shutil

    import fsspec

    with open(local, "rb") as src, fsspec.open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
