"""One getToken per connection per machine, not per task process.

Celery and the LocalExecutor run every task try in a new process, so a token kept in memory
dies with each task (302 getToken calls for 300 mapped tasks were measured). The token an
exchange returns is therefore also kept in a file, one per credential, that the next task
process on the same machine reads:

    <state dir>/tokens/<sha256(API URL, clientId, clientSecret)[:32]>.json   {"token", "expires_at"}

(state dir: `akool_flows.state_dir.state_dir`, ``AKOOL_FLOWS_STATE_DIR`` on shared
workers). The file rules of `machine_cache` keep it a secret (0700 directory, 0600 file written
whole, a file not ours / not private / expired ignored, and the task exchanges as without a
cache); the token never reaches a log line or a repr. A token Akool refuses (1101 / HTTP 401) is dropped from the file before the
exchange that replaces it. The token's lifetime: the docs say "valid for more than 1 year"
(their example JWT expires one second after it was issued), so a JWT ``exp`` claim is honoured
when present and a cached token is used for at most `MAX_AGE` seconds whatever it says.

Blocking clients (workers) exchange under a file lock, so task processes that start together
wait for the first exchange instead of each making their own; async clients (the triggerer, one
long-lived process) only read and write the file, never wait on the lock.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from akool_flows.airflow.machine_cache import private_dir, read_private_json, write_private_json
from akool_flows.api.auth import Credentials

__all__ = ["MAX_AGE", "MachineCachedCredentials", "TokenFile", "machine_token_lock"]

#: Longest time a cached token is used before the next exchange (seconds).
MAX_AGE = 24 * 3600.0
#: A token this close to its ``exp`` is not handed out any more.
_MARGIN = 300.0
#: Longest wait for another process's exchange before exchanging anyway.
_LOCK_WAIT = 20.0


def _jwt_exp(token: str) -> float | None:
    # Unverified read of the claim: it only shortens how long we keep the token.
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        exp = claims.get("exp")
        return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None
    except (IndexError, ValueError, TypeError, AttributeError):
        return None


class TokenFile:
    """The cache file of one credential."""

    def __init__(self, folder: Path, base_url: str, client_id: str, client_secret: str) -> None:
        self.folder = folder
        key = hashlib.sha256("\0".join((base_url, client_id, client_secret)).encode("utf-8")).hexdigest()[:32]
        self.path = folder / f"{key}.json"
        self.lock_path = folder / f"{key}.lock"

    def __repr__(self) -> str:
        return f"TokenFile({self.path.name!r})"

    def load(self, now: float | None = None) -> str | None:
        """The cached token, or None (missing, expired, not private, not ours, malformed)."""
        data = read_private_json(self.path, now)
        token = data.get("token") if data is not None else None
        return token if isinstance(token, str) and token else None

    def save(self, token: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        exp = _jwt_exp(token)
        expires = min(now + MAX_AGE, exp - _MARGIN if exp is not None else now + MAX_AGE)
        if expires > now:
            write_private_json(self.path, {"token": token, "expires_at": expires})

    def drop(self, token: str) -> None:
        """Remove the file if it still holds ``token`` (another process may have replaced it)."""
        if self.load(now=0.0) == token:
            with contextlib.suppress(OSError):
                os.unlink(self.path)


class MachineCachedCredentials(Credentials):
    """clientId/clientSecret credentials whose exchanged token is shared through a `TokenFile`."""

    __slots__ = ("_file",)

    def __init__(self, file: TokenFile, *, client_id: str, client_secret: str) -> None:
        super().__init__(client_id=client_id, client_secret=client_secret)
        self._file = file

    @property
    def needs_exchange(self) -> bool:
        if self._token is None and self.api_key is None:
            cached = self._file.load()
            if cached is not None:
                self._token = cached
        return self._token is None and self.api_key is None

    def set_token(self, token: str) -> None:
        super().set_token(token)
        self._file.save(token)

    def forget_exchanged_token(self) -> bool:
        refused = self._token
        if not super().forget_exchanged_token():
            return False
        if refused is not None:
            self._file.drop(refused)
        return True


class machine_token_lock:  # noqa: N801 - used like a lock object: ``with client._token_lock:``
    """The blocking client's token lock, extended across processes with ``flock``: one process
    exchanges, the others find its token in the file when they get the lock."""

    def __init__(self, file: TokenFile) -> None:
        self._file = file
        self._thread_lock = threading.Lock()
        self._fd: int | None = None

    def __enter__(self) -> machine_token_lock:
        self._thread_lock.acquire()
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: in-process lock only
            return self
        if not private_dir(self._file.folder):
            return self
        try:
            fd = os.open(self._file.lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError:
            return self
        deadline = time.monotonic() + _LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._fd = fd
                return self
            except OSError:
                if time.monotonic() >= deadline:  # a stuck holder: exchange without it
                    os.close(fd)
                    return self
                time.sleep(0.05)

    def __exit__(self, *exc: Any) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the flock
            self._fd = None
        self._thread_lock.release()
