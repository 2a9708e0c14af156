"""Where a batch keeps its ledger when the caller names none: one per input file, per user.

A ledger next to the working directory made the same command, started from another directory,
pay for every row again. The default ledger therefore lives in the user's state directory, keyed
by the input file's absolute (symlink-resolved) path:

    $AKOOL_FLOWS_STATE_DIR                      (absolute path; set it on shared workers)
    $XDG_STATE_HOME/akool-flows                  (when set to an absolute path, as the spec says)
    ~/.local/state/akool-flows                   Linux and other Unix
    ~/Library/Application Support/akool-flows    macOS
    %LOCALAPPDATA%\\akool-flows                   Windows

    <state dir>/ledgers/<input stem>-<sha256(absolute input path)[:12]>.sqlite

Directories this module creates are 0700: a ledger names every job and what was sent.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

# The directory itself is found in `akool_flows.state_dir`, which the token cache of Airflow
# task processes imports without this package (and its pandas).
from akool_flows.state_dir import APP, make_private_dir as _make_private_dir, state_dir

__all__ = ["APP", "default_ledger_path", "state_dir"]


def _stem(path: Path) -> str:
    # Readable but harmless: only portable file-name characters, and not too long.
    return re.sub(r"[^A-Za-z0-9._-]+", "_", path.stem).strip("._")[:40] or "input"


def default_ledger_path(input_path: str | os.PathLike[str], *, create: bool = True) -> Path:
    """The ledger for ``input_path``: the same file whatever the working directory.

    With ``create`` the directories are made (0700); the ledger file itself is left to `Ledger`.
    """
    source = Path(os.path.realpath(Path(input_path).expanduser()))
    key = hashlib.sha256(os.fsencode(source)).hexdigest()[:12]
    base = state_dir()
    folder = base / "ledgers"
    if create:
        _make_private_dir(base)
        _make_private_dir(folder)
    return folder / f"{_stem(source)}-{key}.sqlite"
