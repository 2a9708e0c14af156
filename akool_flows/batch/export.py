"""Writing results: spreadsheet-safe CSV, Parquet, atomic replacement, and an incremental CSV log.

Spreadsheet safety: a cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab / carriage
return, which some spreadsheets strip before evaluating) is read as a formula by Excel, Sheets and
LibreOffice - user-supplied text such as a moderated comment can then run ``=HYPERLINK(...)``
or worse on the reviewer's machine (CSV injection). Such text cells are prefixed with ``'``, and so
is every line inside a cell that starts that way: a tool that splits rows on line breaks would
otherwise see a live formula at the start of a row. Numbers are left alone: only text is at risk.

Quoting: every cell holding a CR or LF is quoted. The csv module (and pandas) quote only the
characters of the line terminator, so with ``\\n`` line ends a lone ``\\r`` went out bare and
Excel, LibreOffice and pandas split the row there. Rows end in ``\\n``.

Atomic files: a results or cost file is written to a temporary file in the same directory and
moved over the target only when complete, so an existing file (even the input, by mistake) is
never truncated first. New files get the usual permissions (0666 minus the umask), not the 0600
of `tempfile.mkstemp`: results are meant to be shared; an existing file keeps its mode.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import pandas as pd

__all__ = ["safe_csv", "neutralise", "neutralise_frame", "write_table", "IncrementalCsv", "atomic_write"]

# A zero-width match wherever a new line of text begins with a character a spreadsheet evaluates.
_FORMULA_LINE_START = re.compile(r"(?:^|(?<=[\r\n]))(?=[=+\-@\t\r])")
_NEEDS_QUOTES = re.compile(r'[",\r\n]')


def neutralise(value: Any) -> Any:
    """``'``-prefix every line of a text value a spreadsheet would evaluate; leave the rest as is."""
    if isinstance(value, str):
        return _FORMULA_LINE_START.sub("'", value)
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


def _field(text: str) -> str:
    return '"' + text.replace('"', '""') + '"' if _NEEDS_QUOTES.search(text) else text


def _line(cells: Sequence[str]) -> str:
    if len(cells) == 1 and cells[0] == "":
        return '""\n'  # a bare empty line would read as no row at all
    return ",".join(_field(c) for c in cells) + "\n"


def _rows_as_text(df: pd.DataFrame, index: bool) -> Iterator[list[str]]:
    # pandas formats the values (floats, NaN, timestamps) as everywhere else; with CRLF line ends
    # it quotes every cell holding \r or \n, so reading its text back gives the exact cells.
    text = df.to_csv(index=index, lineterminator="\r\n")
    yield from csv.reader(io.StringIO(text, newline=""))


def _write_csv(df: pd.DataFrame, fh: IO[str], index: bool) -> None:
    for cells in _rows_as_text(df, index):
        fh.write(_line(cells))


# --- atomic files ----------------------------------------------------------------------------------

def _real_target(path: Path) -> Path:
    # Replacing a symlink would silently cut it from where the user pointed it: write its target.
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def _create_temp(target: Path) -> Path:
    """An empty new file next to ``target``: its mode, or 0666 minus the umask (applied by open)."""
    try:
        mode = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else 0o600)
        except FileExistsError:
            continue
        try:
            if mode is not None:
                os.chmod(tmp, mode)
        finally:
            os.close(fd)
        return tmp


def _fsync(path: Path, directory: bool = False) -> None:
    # Without this, a power cut right after the rename can leave an empty file under the final name.
    with contextlib.suppress(OSError):  # directories cannot be opened on Windows; best effort
        fd = os.open(path, os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], Any]) -> Path:
    """Call ``write(temp_path)``, then move the complete file over ``path`` (symlinks followed)."""
    target = _real_target(Path(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target)
    try:
        write(str(tmp))
        _fsync(tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(target.parent, directory=True)
    return Path(path)


def safe_csv(df: pd.DataFrame, path: str | os.PathLike[str] | None = None, *, index: bool = False) -> str | None:
    """Write ``df`` as spreadsheet-safe UTF-8 CSV (atomically); return the text when ``path`` is None."""
    safe = neutralise_frame(df)
    if path is None:
        buf = io.StringIO()
        _write_csv(safe, buf, index)
        return buf.getvalue()

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            _write_csv(safe, fh, index)

    atomic_write(path, write)
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
        atomic_write(target, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        safe_csv(df, target)
    return target


class IncrementalCsv:
    """Append finished rows to a CSV as they come, so a crash loses nothing already finished.

    The file starts as a complete new file (header only) moved over whatever was at the path, so
    opening the log never truncates an existing file in place (another name for it keeps its data).
    Rows are written by `flush()` (the engine calls it a few times a second). The final, ordered
    file is written separately at the end of the run.
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = list(columns)
        header = _line([neutralise(c) for c in self.columns])

        def write(tmp: str) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                fh.write(header)

        atomic_write(self.path, write)
        self._fh = open(_real_target(self.path), "a", newline="", encoding="utf-8")  # noqa: SIM115 - close()
        self._pending: list[str] = []

    def add(self, row: dict[str, Any]) -> None:
        cells = [_cell(row.get(c)) if row.get(c) is not None else "" for c in self.columns]
        self._pending.append(_line([c if isinstance(c, str) else str(c) for c in cells]))

    def add_many(self, rows: Iterable[dict[str, Any]]) -> None:
        for row in rows:
            self.add(row)

    def flush(self) -> None:
        if self._pending:
            self._fh.write("".join(self._pending))
            self._pending.clear()
            self._fh.flush()

    def close(self) -> None:
        self.flush()
        self._fh.close()


def to_csv_text(df: pd.DataFrame) -> str:
    """Spreadsheet-safe CSV text (for previews and tests)."""
    return safe_csv(df) or ""


class ChunkedCsv:
    """A spreadsheet-safe CSV written a DataFrame at a time (a run over an input in chunks).

    Rows go to ``<path>.partial.csv`` as each chunk finishes; `commit()` moves the complete file
    over ``path`` in one step, so ``path`` is never a half-written file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial.csv")
        atomic_write(self.partial, lambda tmp: open(tmp, "w").close())  # noqa: SIM115 - an empty file
        self._fh = open(_real_target(self.partial), "a", newline="", encoding="utf-8")  # noqa: SIM115 - commit()
        self._header: list[str] | None = None

    def add(self, df: pd.DataFrame) -> None:
        lines = _rows_as_text(neutralise_frame(df), False)
        header = next(lines)
        if self._header is None:
            self._header = header
            self._fh.write(_line(header))
        elif header != self._header:
            raise ValueError(f"chunk columns {header} differ from the first chunk's {self._header}")
        self._fh.write("".join(_line(cells) for cells in lines))
        self._fh.flush()

    def commit(self) -> Path:
        self._fh.close()
        target = _real_target(self.path)
        _fsync(self.partial)
        os.replace(self.partial, target)
        _fsync(target.parent, directory=True)
        return self.path

    def close(self) -> None:
        """Stop writing, keeping ``<path>.partial.csv`` (the rows finished so far)."""
        self._fh.close()
