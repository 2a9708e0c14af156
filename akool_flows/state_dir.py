"""The per-user state directory of akool-flows (ledgers, token cache, saved rates).

    $AKOOL_FLOWS_STATE_DIR                      (absolute path; set it on shared workers)
    $XDG_STATE_HOME/akool-flows                  (when set to an absolute path, as the spec says)
    ~/.local/state/akool-flows                   Linux and other Unix
    ~/Library/Application Support/akool-flows    macOS
    %LOCALAPPDATA%\\akool-flows                   Windows

A module of its own, importing nothing heavy: a task process that needs the directory (the
token cache) must not pay for the batch package's imports (pandas).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

__all__ = ["APP", "make_private_dir", "state_dir"]

APP = "akool-flows"


def state_dir() -> Path:
    """The per-user state directory (not created)."""
    explicit = os.environ.get("AKOOL_FLOWS_STATE_DIR", "").strip()
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            # Relative would bring back the bug this module exists for: a ledger per working directory.
            raise ValueError(f"AKOOL_FLOWS_STATE_DIR must be an absolute path, got {explicit!r}")
        return path
    xdg = os.environ.get("XDG_STATE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / APP
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA", "").strip()
        return (Path(base) if base else Path.home() / "AppData" / "Local") / APP
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    return Path.home() / ".local" / "state" / APP


def make_private_dir(folder: Path) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)  # e.g. ~/.local/state: usual permissions
    try:
        folder.mkdir(mode=0o700)
    except FileExistsError:
        return  # the user's own choice of permissions stands
    os.chmod(folder, 0o700)  # mkdir's mode is masked by the umask
