"""Export from an app: the rows the grid shows, to CSV or Parquet, with a download link.

Files go only into folders that exist (a typo in a path must not grow a tree of new folders)
unless the caller asks with ``make_dirs=True``; they get the usual permissions (0666 minus the
umask, via `akool_flows.batch.write_table`), so a colleague or a web server can read them.

The download link is shown through the notebook's own output renderer: JupyterLab turns a
relative link in an output into a link to the Jupyter server's file handler, relative to the
notebook's folder, so the link works behind any base URL (JupyterHub too). A file outside the
notebook's folder cannot be linked that way, and the app says so instead of showing a dead link.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from akool_flows.notebook.render import e

__all__ = ["download_link_html", "export_table", "target_path"]


def target_path(path: str | Path, format: str | None = None) -> tuple[Path, str]:
    """The file to write and its format: by `format`, else by the extension (the extension follows
    the format: ``x.csv`` written as Parquet becomes ``x.parquet``)."""
    p = Path(path).expanduser()
    is_parquet = p.suffix.lower() in (".parquet", ".pq")
    fmt = (format or ("parquet" if is_parquet else "csv")).lower()
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"format must be 'csv' or 'parquet', got {format!r}")
    if fmt == "parquet" and not is_parquet:
        p = p.with_suffix(".parquet")
    elif fmt == "csv" and is_parquet:
        p = p.with_suffix(".csv")
    return p, fmt


def export_table(df: pd.DataFrame, path: str | Path, *, format: str | None = None, cost_log: Any = None,
                 make_dirs: bool = False) -> Path:
    """Write `df` (and `cost_log` next to it as ``<name>.costs.csv``); return the path written."""
    from akool_flows.batch import write_table

    target, _fmt = target_path(path, format)
    folder = target.parent
    if not folder.exists():
        if not make_dirs:
            raise FileNotFoundError(f"the folder {folder} does not exist; create it first (or pass make_dirs=True)")
        folder.mkdir(parents=True, exist_ok=True)
    if target.is_dir():
        raise IsADirectoryError(f"{target} is a folder; give a file name such as {target / 'results.csv'}")
    write_table(df, target)
    if cost_log is not None and not cost_log.empty:
        write_table(cost_log, target.with_name(target.stem + ".costs.csv"))
    return target


def download_link_html(path: Path, cwd: Path | None = None) -> str:
    """A download link for `path` relative to the notebook's folder (`cwd`), or why there is none."""
    here = (cwd or Path.cwd()).resolve()
    target = path.resolve()
    try:
        rel = target.relative_to(here)
    except ValueError:
        return (f'<span class="akool-muted">{e(target)} is outside the notebook\'s folder, so the browser '
                f'cannot download it from here; it is on the machine running the kernel.</span>')
    href = "/".join(part for part in rel.parts)
    return (f'<a class="akool-download" href="{e(href)}" download="{e(target.name)}">⬇ Download '
            f'{e(target.name)}</a> <span class="akool-muted">({os.path.getsize(target):,} bytes)</span>')
