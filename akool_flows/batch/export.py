"""Writing results: spreadsheet-safe CSV, Parquet, atomic replacement, and an incremental CSV log.

Spreadsheet safety: a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab / carriage
return, which some spreadsheets strip before evaluating) is read as a formula by Excel, Sheets and
LibreOffice - user-supplied text such as a moderated comment can then run ``=HYPERLINK(...)``
or worse on the reviewer's machine (CSV injection). Such text cells are prefixed with ``'``.
Numbers are left alone: only text cells are at risk.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["safe_csv", "neutralise", "neutralise_frame", "write_table", "IncrementalCsv"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> Any:
    """``'``-prefix a text value a spreadsheet would evaluate; leave everything else as is."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _cell(value: Any) -> Any:
    if isinstance(value, (list, tuple, dict)):
        value = json.dumps(value, ensure_ascii=False)
    return neutralise(value)


def neutralise_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with every text cell (and column name) made spreadsheet-safe."""
    out = df.copy()
    for col in out.columns:
        series = out[col]
        if series.dtype == object or pd.api.types.is_string_dtype(series.dtype):
            out[col] = series.map(_cell, na_action="ignore").astype(object)
    out.columns = [neutralise(str(c)) for c in out.columns]
    return out


def _atomic_write(path: Path, write: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def safe_csv(df: pd.DataFrame, path: str | os.PathLike[str] | None = None, *, index: bool = False) -> str | None:
    """Write ``df`` as spreadsheet-safe UTF-8 CSV (atomically); return the text when ``path`` is None."""
    safe = neutralise_frame(df)
    if path is None:
        return safe.to_csv(index=index)
    _atomic_write(Path(path), lambda tmp: safe.to_csv(tmp, index=index, encoding="utf-8"))
    return None


def write_table(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """CSV (spreadsheet-safe) or Parquet by extension (``.parquet``/``.pq``), atomically."""
    target = Path(path)
    if target.suffix.lower() in (".parquet", ".pq"):
        frame = df.copy()
        for col in frame.columns:
            if frame[col].dtype == object:
                # Parquet needs one type per column; lists/dicts become JSON text.
                frame[col] = frame[col].map(lambda v: json.dumps(v) if isinstance(v, (list, dict, tuple)) else v,
                                            na_action="ignore")
        _atomic_write(target, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        safe_csv(df, target)
    return target


class IncrementalCsv:
    """Append finished rows to a CSV as they come, so a crash loses nothing already finished.

    The header is written once; rows are flushed by `flush()` (the engine calls it a few times a
    second). The final, ordered file replaces this log at the end of the run.
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._fh)
        self._writer.writerow([neutralise(c) for c in self.columns])
        self._pending: list[list[Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self._pending.append([_cell(row.get(c)) if row.get(c) is not None else "" for c in self.columns])

    def add_many(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        if self._pending:
            self._writer.writerows(self._pending)
            self._pending.clear()
            self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()


def to_csv_text(df: pd.DataFrame) -> str:
    """Spreadsheet-safe CSV text (for previews and tests)."""
    buf = io.StringIO()
    neutralise_frame(df).to_csv(buf, index=False)
    return buf.getvalue()
