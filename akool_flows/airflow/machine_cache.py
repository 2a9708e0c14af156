"""Small private files shared by the task processes of one machine, in the per-user state
directory (`akool_flows.state_dir`): the token cache (`token_cache`) and face landmarks
(`faces`). Celery and the LocalExecutor start a process per task try, so what one task learnt
is only reused through files.

The rules: the directory is 0700 and each file 0600, written whole (temp file + rename, so a
reader sees the old file or the new one); a file that is not ours, not private, unreadable,
malformed or past its ``expires_at`` is ignored - the caller then does the work itself, as
without a cache - and a failed write only logs its error type.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any

from akool_flows.state_dir import make_private_dir, state_dir

__all__ = ["cache_dir", "private_dir", "read_private_json", "write_private_json"]

log = logging.getLogger(__name__)


def cache_dir(name: str) -> Path | None:
    """``<state dir>/<name>``, or None when ``AKOOL_FLOWS_STATE_DIR`` is unusable."""
    try:
        return state_dir() / name
    except ValueError:
        return None


def private_dir(folder: Path) -> bool:
    """Create ``folder`` 0700 if missing; True when it is ours and private."""
    try:
        make_private_dir(folder.parent)
        make_private_dir(folder)
        st = os.stat(folder, follow_symlinks=False)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o077


def read_private_json(path: Path, now: float | None = None) -> dict[str, Any] | None:
    """The file's JSON object if it is ours, private and not expired; else None."""
    now = time.time() if now is None else now
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if st.st_uid != os.getuid() or st.st_mode & 0o077 or not stat.S_ISREG(st.st_mode):
            log.warning("ignoring the cache file %s: not private to this user", path.name)
            return None
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = json.loads(fh.read(64 * 1024))
    except (OSError, ValueError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict):
        return None
    expires = data.get("expires_at")
    if not isinstance(expires, (int, float)) or isinstance(expires, bool) or expires <= now:
        return None
    return data


def write_private_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` (with its ``expires_at``) to ``path``, 0600, atomically."""
    if not private_dir(path.parent):
        return
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".cache-", suffix=".tmp")  # created 0600
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(data, fh)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:  # a cache: the task goes on without it
        log.warning("could not write the cache file %s (%s)", path.name, type(exc).__name__)
