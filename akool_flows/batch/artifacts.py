"""Download result files before they expire (Akool keeps them 7 days), with a checksum for each.

Target: a local folder or any fsspec URL (``s3://bucket/prefix``, ``gcs://...``, ``memory://x``).
Only http(s) result URLs are fetched, file names are built from the row (never from the URL, so a
hostile URL cannot write outside the folder), and a size limit is enforced while streaming.
"""

from __future__ import annotations

import asyncio
import hashlib
import mimetypes
import os
import re
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

__all__ = ["Artifact", "ArtifactDownloader", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 2 * 1024**3  # 2 GiB: above the docs' largest inputs (1 GB video moderation)
_EXT_RE = re.compile(r"^\.[A-Za-z0-9]{1,6}$")
_MEDIA_EXT = {"image": ".png", "video": ".mp4", "audio": ".mp3", "text": ".txt"}
_CHUNK = 256 * 1024


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


def _extension(url: str, content_type: str | None, media: str) -> str:
    suffix = Path(urlsplit(url).path).suffix
    if _EXT_RE.match(suffix):
        return suffix.lower()
    if content_type:
        guessed = mimetypes.guess_extension(content_type.split(";")[0].strip())
        if guessed and _EXT_RE.match(guessed):
            return guessed
    return _MEDIA_EXT.get(media, ".bin")


class ArtifactDownloader:
    """Fetch result URLs into ``target`` with at most ``concurrency`` downloads at a time."""

    def __init__(self, target: str | os.PathLike[str], *, media: str = "none", max_bytes: int = DEFAULT_MAX_BYTES,
                 concurrency: int = 4, timeout: float = 300.0, attempts: int = 3) -> None:
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
        self.media = media
        self.max_bytes = max_bytes
        self.attempts = max(1, attempts)
        self._sem = asyncio.Semaphore(concurrency)
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=10.0), follow_redirects=True,
                                         limits=httpx.Limits(max_connections=concurrency))

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
        last = "unknown error"
        for attempt in range(1, self.attempts + 1):
            try:
                async with self._sem:
                    return await self._fetch(stem, url)
            except DownloadError as exc:
                return Artifact(url=url, error=str(exc))
            except (httpx.HTTPError, OSError) as exc:
                last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.2 * 2**attempt)
        return Artifact(url=url, error=f"download failed after {self.attempts} attempts: {last}")

    async def _fetch(self, stem: str, url: str) -> Artifact:
        async with self._client.stream("GET", url) as response:
            if response.status_code in (403, 404, 410):
                raise DownloadError(f"HTTP {response.status_code}: the result is gone (expired after 7 days?)")
            if response.status_code != 200:
                raise httpx.HTTPStatusError(f"HTTP {response.status_code}", request=response.request,
                                            response=response)
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise DownloadError(f"{int(declared):,} bytes is over the {self.max_bytes:,}-byte limit")
            name = stem + _extension(url, response.headers.get("content-type"), self.media)
            digest = hashlib.sha256()
            size = 0
            # Stream to a temporary file next to the target (or in the temp dir for remote
            # targets), so memory stays flat whatever the file size.
            spool_dir = str(self.local_dir) if not self.remote else None
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=spool_dir)
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


def _upload(local: str, dest: str) -> None:
    import shutil

    import fsspec

    with open(local, "rb") as src, fsspec.open(dest, "wb") as dst:
        shutil.copyfileobj(src, dst, _CHUNK)
