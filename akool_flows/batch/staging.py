"""Staging: local files (or ``s3://``, ``gs://``... objects) in URL fields become signed URLs.

Akool fetches only public http(s) URLs. With a stage target (``run_batch(stage=...)``,
``--stage``), a URL field of the registry (`JobKind.url_fields`) may name a file instead:

* planning keeps the path in the row's body (so the row key, dedupe and the ledger are about
  the file as named) and validates the row as if it held a URL (`file_sources`); without a
  target such a row is rejected with a hint;
* just before a row's create - never for a row that is rejected, already done or not sent -
  the file is uploaded through fsspec to ``<target>/<sha256>/<name>`` and the body sent carries
  a signed URL valid for ``stage_expiry`` seconds (`Stager`);
* the ledger's ``staged_files`` table maps source + fingerprint (sha256, size, mtime) to the
  staged object and its signed URL, so a rerun uploads nothing: it re-signs a URL with less
  than half its life left and uploads again only a file whose content changed. Objects are
  content-addressed, so a changed file never replaces what a running job may still fetch.

``stage="sandbox:"`` uploads to the sandbox the client talks to (``PUT /_sandbox/uploads/...``),
which serves the file at a signed, expiring URL of its own: no bucket needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from akool_flows.api.client import DEFAULT_BASE_URL
from akool_flows.api.redact import redact_url, redact_urls_in
from akool_flows.batch.errors import BatchInputError

if TYPE_CHECKING:
    from akool_flows.api.kinds import JobKind
    from akool_flows.batch.engine import Run
    from akool_flows.batch.ledger import Ledger
    from akool_flows.batch.options import BatchOptions
    from akool_flows.batch.plan import BatchPlan

__all__ = ["DEFAULT_STAGE_EXPIRY", "STAGED_PLACEHOLDER", "SANDBOX_TARGET", "Stager", "StagingError",
           "file_sources", "is_file_source", "staged_body"]

log = logging.getLogger("akool_flows.batch")

#: Signed URLs last a day by default: long enough for a job to wait in Akool's queue and run.
DEFAULT_STAGE_EXPIRY = 24 * 3600.0
#: What a file to stage validates as while planning (the models only accept http(s) URLs).
STAGED_PLACEHOLDER = "https://staged.invalid/file"
SANDBOX_TARGET = "sandbox:"
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_CHUNK = 8 * 1024 * 1024


class StagingError(BatchInputError):
    """A file could not be staged (missing, unreadable, or the target refused it)."""


class _SourceError(StagingError):
    """This row's own file is the problem (gone, unreadable): other rows may still stage."""


# --- planning --------------------------------------------------------------------------------------

def _is_http(value: str) -> bool:
    return value.lower().startswith(("http://", "https://"))


def is_file_source(value: Any) -> bool:
    """Whether a URL field's value names a file to stage rather than a URL: an fsspec URI other
    than http(s) (``s3://``, ``file://``...), a path that looks like one, or an existing file."""
    if not isinstance(value, str) or not value.strip() or _is_http(value.strip()):
        return False
    value = value.strip()
    if _SCHEME_RE.match(value):
        return True
    return (value.startswith(("/", "./", "../", "~", "\\")) or bool(re.match(r"^[A-Za-z]:[\\/]", value))
            or os.path.isfile(value))


def _local_path(source: str) -> str | None:
    """The local filesystem path of a source, or None for a remote URI."""
    match = _SCHEME_RE.match(source)
    if match is None:
        return os.path.abspath(os.path.expanduser(source))
    return source[len("file://"):] if match.group(1).lower() == "file" else None


def file_sources(kind: JobKind, fields: Mapping[str, Any], *, staging: bool) -> tuple[dict[str, str], str | None]:
    """The URL fields of a row that name a file to stage (``{field: source}``), or why the row
    is rejected: a file without a stage target, or a local file that does not exist."""
    found: dict[str, str] = {}
    for name in kind.url_fields:
        value = fields.get(name)
        if not isinstance(value, str) or _is_http(value.strip()):
            continue
        value = value.strip()
        if not staging:
            if is_file_source(value):
                return {}, (f"{kind.name}: {name}: {value!r} is a file, not a URL: pass --stage "
                            "s3://bucket/prefix (stage=... in Python) to upload it and send a signed URL "
                            "(Akool fetches only public http(s) URLs)")
            continue  # not a file either: the model says what the field expects
        local = _local_path(value)
        if local is not None and not os.path.isfile(local):
            return {}, (f"{kind.name}: {name}: no such file {value!r} (relative paths are read from the "
                        f"current directory, {os.getcwd()})")
        found[name] = value
    return found, None


# --- targets ---------------------------------------------------------------------------------------

class _FsspecTarget:
    """A bucket or folder fsspec can write to and sign URLs for."""

    def __init__(self, target: str, options: Mapping[str, Any]) -> None:
        try:
            import fsspec
            from fsspec.core import url_to_fs
        except ImportError:
            raise StagingError("stage needs fsspec: pip install 'akool-flows[stage]' (and the bucket's "
                               "filesystem, e.g. s3fs)", field="stage") from None
        try:
            self.fs, root = url_to_fs(target, **dict(options))
        except (ImportError, ValueError, TypeError) as exc:
            raise StagingError(f"stage {redact_url(target)!r}: {exc}", field="stage") from None
        if type(self.fs).sign is fsspec.AbstractFileSystem.sign:
            protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]
            raise StagingError(f"stage {redact_url(target)!r}: the {protocol!r} filesystem cannot make signed URLs "
                               "(fsspec sign() is not implemented for it); Akool needs a URL it can fetch: stage "
                               "to a bucket (s3://, gs://...), or to the sandbox with stage='sandbox:'",
                               field="stage")
        self.root = root.rstrip("/")
        self.options = options
        self.protocol = self.fs.protocol if isinstance(self.fs.protocol, str) else self.fs.protocol[0]

    def uri(self, name: str) -> str:
        return self.fs.unstrip_protocol(f"{self.root}/{name}")

    def source_options(self, source: str) -> Mapping[str, Any]:
        """Storage options to read ``source`` with: the target's when it is on the same kind of
        store (one set of credentials), else the filesystem's defaults."""
        return self.options if source.lower().startswith(f"{self.protocol}://") else {}

    def has(self, name: str, size: int) -> bool:
        try:
            return int(self.fs.info(f"{self.root}/{name}").get("size", -1)) == size
        except FileNotFoundError:
            return False

    def upload(self, source: str, name: str) -> None:
        dest = f"{self.root}/{name}"
        local = _local_path(source)
        if local is not None:
            self.fs.put_file(local, dest)
            return
        with _open_source(source, self.source_options(source)) as src, self.fs.open(dest, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)

    def sign(self, name: str, seconds: float) -> str:
        return str(self.fs.sign(f"{self.root}/{name}", expiration=int(seconds)))

    def close(self) -> None:
        pass


class _SandboxTarget:
    """The sandbox the batch runs against: it stores uploads and signs URLs of its own."""

    def __init__(self, base_url: str) -> None:
        import httpx

        self.base = f"{base_url.rstrip('/')}/_sandbox/uploads/"
        self.http = httpx.Client(timeout=120)

    def uri(self, name: str) -> str:
        return SANDBOX_TARGET + name

    def source_options(self, source: str) -> Mapping[str, Any]:
        return {}

    def _answer(self, answer: Any) -> dict[str, Any]:
        if answer.status_code >= 400:
            raise StagingError(f"the sandbox refused {answer.request.method} {redact_url(answer.request.url)} "
                               f"({answer.status_code}): {answer.text[:200]}", field="stage")
        return dict(answer.json())

    def has(self, name: str, size: int) -> bool:
        answer = self.http.post(self.base + name, params={"expires_in": 1})
        return answer.status_code != 404 and self._answer(answer).get("size") == size

    def upload(self, source: str, name: str) -> None:
        with _open_source(source, {}) as f:
            self._answer(self.http.put(self.base + name, content=f.read()))

    def sign(self, name: str, seconds: float) -> str:
        return str(self._answer(self.http.post(self.base + name, params={"expires_in": int(seconds)}))["url"])

    def close(self) -> None:
        self.http.close()


def _open_source(source: str, options: Mapping[str, Any]) -> Any:
    local = _local_path(source)
    if local is not None:
        return open(local, "rb")  # noqa: SIM115 - the caller closes it
    import fsspec

    return fsspec.open(source, "rb", **dict(options)).open()


def _object_name(source: str, sha256: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]", "_", source.rstrip("/").rsplit("/", 1)[-1])[-100:].lstrip(".") or "file"
    return f"{sha256}/{base}"


# --- the stager ------------------------------------------------------------------------------------

class Stager:
    """Stages the files of one run (see the module). Thread-safe: files stage in threads."""

    def __init__(self, kind: JobKind, target: str, ledger: Ledger, *, expiry: float = DEFAULT_STAGE_EXPIRY,
                 options: Mapping[str, Any] | None = None, base_url: str | None = None) -> None:
        self.kind = kind
        self.ledger = ledger
        self.expiry = float(expiry)
        if target.strip().rstrip("/") in (SANDBOX_TARGET, "sandbox"):
            if not base_url or base_url.rstrip("/") == DEFAULT_BASE_URL:
                raise StagingError("stage='sandbox:' stages to the sandbox the batch runs against; this run talks "
                                   f"to {redact_url(base_url)}: stage to a bucket instead", field="stage")
            self.target: Any = _SandboxTarget(base_url)
            # Records are per sandbox: another sandbox (a new port) holds none of these files.
            self.key = f"{SANDBOX_TARGET}{base_url.rstrip('/')}"
        else:
            self.target = _FsspecTarget(target, options or {})
            self.key = target.rstrip("/")
        self.shown = redact_url(self.key)
        self.counts: Counter[str] = Counter()
        self._pending: dict[str, asyncio.Future[str]] = {}

    @classmethod
    def for_run(cls, plan: BatchPlan, opts: BatchOptions, ledger: Ledger, base_url: str) -> Stager | None:
        """The run's stager; None when no valid row names a file. A file without a target
        (a plan made with ``stage`` run without it) is refused before anything is sent."""
        if not any(ok and cls.needs(plan.kind, body) for ok, body in zip(plan.valid, plan.bodies)):
            return None
        if not opts.stage:
            raise StagingError("rows name local files in URL fields but no stage target is given: pass "
                               "stage='s3://bucket/prefix' (--stage) or stage='sandbox:'", field="stage")
        return cls(plan.kind, str(opts.stage), ledger, expiry=opts.stage_expiry, options=opts.stage_options,
                   base_url=base_url)

    @staticmethod
    def needs(kind: JobKind, body: Mapping[str, Any]) -> bool:
        return any(isinstance(body.get(f), str) and not _is_http(body[f]) for f in kind.url_fields)

    async def stage_body(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``body`` with every file in a URL field replaced by its signed URL."""
        out = dict(body)
        for name in self.kind.url_fields:
            value = out.get(name)
            if isinstance(value, str) and not _is_http(value):
                out[name] = await self._staged(value)
        return out

    async def _staged(self, source: str) -> str:
        # Two rows naming one file at once: one upload, both wait for it.
        pending = self._pending.get(source)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self.stage_file, source))
            self._pending[source] = pending
            pending.add_done_callback(lambda _: self._pending.pop(source, None))
        return await asyncio.shield(pending)

    def stage_file(self, source: str) -> str:
        """Upload ``source`` unless the ledger (or the target) already holds this content; return
        a signed URL with at least half of ``expiry`` left."""
        local = _local_path(source)
        canonical = local if local is not None else source
        try:
            size, mtime = self._fingerprint(source)
            record = self.ledger.staged_file(canonical, self.key)
            if record is not None and record["size"] == size and record["mtime"] == mtime:
                sha256 = record["sha256"]
            else:
                sha256 = self._sha256(source)
        except (OSError, ValueError) as exc:
            raise _SourceError(f"cannot read {source!r} to stage it: {redact_urls_in(str(exc))}",
                               field="stage") from None
        name = _object_name(source, sha256)
        now = time.time()
        if record is not None and record["sha256"] == sha256 and self.target.has(name, size):
            if record["expires_at"] - now > self.expiry / 2:
                url, expires_at = record["signed_url"], record["expires_at"]
                self.counts["reused"] += 1
            else:
                url, expires_at = self.target.sign(name, self.expiry), now + self.expiry
                self.counts["signed"] += 1
        elif self.target.has(name, size):  # same content staged before (another path or ledger)
            url, expires_at = self.target.sign(name, self.expiry), now + self.expiry
            self.counts["signed"] += 1
        else:
            self.target.upload(source, name)
            url, expires_at = self.target.sign(name, self.expiry), now + self.expiry
            self.counts["uploaded"] += 1
            log.info("staged %s as %s", source, redact_url(self.target.uri(name)))
        self.ledger.record_staged(canonical, self.key, sha256=sha256, size=size, mtime=mtime,
                                  staged_uri=self.target.uri(name), signed_url=url, expires_at=expires_at)
        return url

    def _fingerprint(self, source: str) -> tuple[int, str | None]:
        local = _local_path(source)
        if local is not None:
            st = os.stat(local)
            return st.st_size, str(st.st_mtime_ns)
        from fsspec.core import url_to_fs

        fs, path = url_to_fs(source, **dict(self.target.source_options(source)))
        info = fs.info(path)
        tag = info.get("ETag") or info.get("LastModified") or info.get("mtime") or info.get("updated")
        return int(info.get("size") or 0), None if tag is None else str(tag)

    def _sha256(self, source: str) -> str:
        h = hashlib.sha256()
        with _open_source(source, self.target.source_options(source)) as f:
            for block in iter(lambda: f.read(_CHUNK), b""):
                h.update(block)
        return h.hexdigest()

    def report(self) -> dict[str, Any]:
        """For the summary: the target (redacted) and how many files were uploaded, signed
        again without an upload, or reused with their signed URL."""
        return {"target": self.shown, **{k: self.counts.get(k, 0) for k in ("uploaded", "signed", "reused")}}

    def close(self) -> None:
        self.target.close()
        if self.counts:
            log.info("staging to %s: %s", self.shown, dict(self.counts))


async def staged_body(run: Run, rows: list[int], body: dict[str, Any]) -> dict[str, Any] | None:
    """The body ``rows`` (one row, or a multi-value group sharing its files) are sent with, files
    staged; or None: they are not sent.

    A row whose own file is missing or unreadable fails alone (the ledger keeps it pending: a
    rerun tries again); a target that refuses (credentials, no bucket) stops submission, since
    every other row would meet it too."""
    stager = run.stager
    if stager is None or not Stager.needs(run.kind, body):
        return body
    try:
        return await stager.stage_body(body)
    except Exception as exc:  # noqa: BLE001 - whatever the filesystem raises: not sent, said why
        message = f"not submitted: staging failed: {redact_urls_in(str(exc)) or type(exc).__name__}"
        for i in rows:
            run.budget.release(run.est(i))
            run.rows.error[i] = (None, message)
            run.rows.set_outcome(i, "failed" if isinstance(exc, _SourceError) else "cancelled")
        if not isinstance(exc, _SourceError):
            run.stop("error", f"staging to {stager.shown} failed ({type(exc).__name__}: "
                              f"{redact_urls_in(str(exc))}); nothing more was sent")
        return None
