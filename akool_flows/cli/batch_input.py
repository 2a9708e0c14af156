"""Reading a batch command's input file and checking its options: every problem a user can cause
becomes an `InputFileError` (one clear line, exit 2), before anything is sent."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["InputFileError", "read_table", "TableChunks", "runs_in_chunks", "check_column", "parse_assignments", "check_output_paths"]


class InputFileError(Exception):
    """The input file cannot be read as a table (message is shown as is, exit 2)."""


def read_table(path: str, encoding: str = "utf-8") -> Any:
    """A CSV (all cells as text) or Parquet file as a DataFrame indexed by data row number (1, 2, ...).

    Every problem a user can cause - missing file, empty file, bytes in another encoding, broken
    quoting - becomes an `InputFileError` with a message saying what and where.
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise InputFileError(f"{path}: no such file")
    if p.is_dir():
        raise InputFileError(f"{path}: is a directory, expected a CSV or Parquet file")
    if p.suffix.lower() in (".parquet", ".pq"):
        try:
            df = pd.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - pyarrow raises many types for a bad file
            raise InputFileError(f"{path}: not a readable Parquet file ({exc})") from None
    else:
        raw = p.read_bytes()
        if not raw.strip():
            raise InputFileError(f"{path}: the file is empty; expected a header row and one row per job")
        try:
            text = raw.decode("utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding)
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
            raise InputFileError(
                f"{path}: not valid {encoding}: byte 0x{raw[exc.start]:02x} at line {line}, column {col}. "
                "Re-save the file as UTF-8, or pass its encoding, e.g. --encoding cp1252") from None
        except LookupError:
            raise InputFileError(f"--encoding {encoding!r} is not an encoding Python knows") from None
        if "\x00" in text:
            line = text[:text.index("\x00")].count("\n") + 1
            raise InputFileError(f"{path}: contains NUL bytes (line {line}); is it really a CSV text file?")
        try:
            df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_filter=False,
                             skip_blank_lines=False)
        except pd.errors.EmptyDataError:
            raise InputFileError(f"{path}: no header row; expected a header row and one row per job") from None
        except (pd.errors.ParserError, ValueError) as exc:
            raise InputFileError(f"{path}: not a well-formed CSV: {exc}") from None
    if len(df.columns) == 0:
        raise InputFileError(f"{path}: no columns")
    if len(df) == 0:
        raise InputFileError(f"{path}: has a header ({', '.join(map(str, df.columns))}) but no rows")
    df.index = pd.RangeIndex(1, len(df) + 1, name="row")
    return df


class TableChunks:
    """An input file a DataFrame of ``rows`` rows at a time, indexed by data row number (1, 2, ...)
    like `read_table`, for inputs too big to hold at once (``--dry-run`` plans them this way).

    The whole file is checked first without holding it (encoding, NUL bytes, a header, a row):
    a problem raises the same `InputFileError` as `read_table` would, before any chunk is read.
    """

    #: Rows per chunk: big enough that per-chunk costs vanish, small enough to stay flat (a run
    #: holds ~6 KB per row of its chunk: plan, row states, Akool's answers, the results frame).
    DEFAULT_ROWS = 20_000

    def __init__(self, path: str, encoding: str = "utf-8", rows: int | None = None) -> None:
        self.path, self.rows, self.given_encoding = path, rows or self.DEFAULT_ROWS, encoding
        self.encoding = "utf-8-sig" if encoding.lower().replace("_", "-") in ("utf-8", "utf8") else encoding
        self._parquet = Path(path).suffix.lower() in (".parquet", ".pq")
        self.columns = self._check()

    def _check(self) -> list[str]:
        import codecs

        import pandas as pd

        p = Path(self.path)
        if not p.is_file() or p.stat().st_size == 0:
            return list(read_table(self.path, self.given_encoding).columns)  # raises its clear error
        if self._parquet:
            try:
                import pyarrow.parquet as pq

                meta = pq.ParquetFile(p)
                names, count = meta.schema_arrow.names, meta.metadata.num_rows
            except Exception:  # noqa: BLE001 - read_table words every bad-file error
                return list(read_table(self.path, self.given_encoding).columns)
            if not names or not count:
                read_table(self.path, self.given_encoding)
            return list(names)
        try:
            decoder = codecs.getincrementaldecoder(self.encoding)()
        except LookupError:
            raise InputFileError(f"--encoding {self.encoding!r} is not an encoding Python knows") from None
        blank = True
        with p.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                blank = blank and not block.strip()
                try:
                    text = decoder.decode(block)
                except UnicodeDecodeError:
                    text = "\x00"
                if "\x00" in text:
                    break
            else:
                text = ""
        if blank or "\x00" in text:
            read_table(self.path, self.given_encoding)  # words where and what
        try:
            head = pd.read_csv(p, encoding=self.encoding, dtype=str, keep_default_na=False, na_filter=False,
                               skip_blank_lines=False, nrows=1)
        except (pd.errors.EmptyDataError, pd.errors.ParserError, ValueError):
            return list(read_table(self.path, self.given_encoding).columns)
        if len(head.columns) == 0 or len(head) == 0:
            read_table(self.path, self.given_encoding)
        return [str(c) for c in head.columns]

    def __iter__(self) -> Iterator[Any]:
        import pandas as pd

        start = 1
        for chunk in self._frames():
            chunk.index = pd.RangeIndex(start, start + len(chunk), name="row")
            start += len(chunk)
            yield chunk

    def _frames(self) -> Iterator[Any]:
        import pandas as pd

        if self._parquet:
            import pyarrow.parquet as pq

            for batch in pq.ParquetFile(self.path).iter_batches(batch_size=self.rows):
                yield batch.to_pandas()
            return
        try:
            yield from pd.read_csv(self.path, encoding=self.encoding, dtype=str, keep_default_na=False,
                                   na_filter=False, skip_blank_lines=False, chunksize=self.rows)
        except (pd.errors.ParserError, ValueError) as exc:
            raise InputFileError(f"{self.path}: not a well-formed CSV: {exc}") from None

    def exceeds_one_chunk(self) -> bool:
        """Whether the input has more rows than one chunk (read up to one row past it)."""
        import pandas as pd

        if self._parquet:
            import pyarrow.parquet as pq

            return bool(pq.ParquetFile(self.path).metadata.num_rows > self.rows)
        head = pd.read_csv(self.path, encoding=self.encoding, dtype=str, keep_default_na=False, na_filter=False,
                           skip_blank_lines=False, nrows=self.rows + 1)
        return len(head) > self.rows

    def read_all(self) -> Any:
        """The whole input as one DataFrame (what `read_table` returns)."""
        return read_table(self.path, self.given_encoding)


def runs_in_chunks(args: Any, kind: str, table: TableChunks) -> bool:
    """Whether a CLI run goes a chunk at a time (flat memory): an input bigger than one chunk, CSV
    results, one batch id per chunk (so not a given ``--batch-id``), one result row per input
    row (not a kind that splits a row per language)."""
    from akool_flows.api.kinds import get_kind

    csv_out = all(p is None or Path(p).suffix.lower() == ".csv" for p in (args.out, args.cost_log))
    return (csv_out and args.batch_id is None and get_kind(kind).split_field is None
            and table.exceeds_one_chunk())


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)  # hard links and symlinks included
    except OSError:  # one does not exist yet: the same file only if both names lead to one place
        return os.path.normcase(os.path.realpath(a)) == os.path.normcase(os.path.realpath(b))


def check_output_paths(input_path: str, outputs: list[tuple[str, Any]]) -> None:
    """Refuse, before anything is sent, an output that is the input or another output.

    The results file replaces its target and the engine streams ``<out>.partial.csv`` while it
    runs: aimed at the input, a crash would leave the user without their data.
    """
    named = [(option, Path(value)) for option, value in outputs if value]
    named += [(f"{option} (its in-progress copy {path.name}.partial.csv)", path.with_name(path.name + ".partial.csv"))
              for option, path in named if option == "--out"]
    source = Path(input_path)
    for option, path in named:
        if _same_file(path, source):
            raise InputFileError(f"{option} {str(path)!r} is the input file {input_path!r}: writing it would "
                                 "destroy the data the batch reads; choose another file")
    for i, (option, path) in enumerate(named):
        for other, other_path in named[i + 1:]:
            if _same_file(path, other_path):
                raise InputFileError(f"{other} {str(other_path)!r} and {option} {str(path)!r} are the same file; "
                                     "give each its own")


def check_column(df: Any, column: str, option: str) -> None:
    if column not in df.columns:
        raise InputFileError(f"{option} {column!r}: no such column; the input has: "
                             f"{', '.join(map(str, df.columns))}")


def parse_assignments(items: list[str], option: str, json_values: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputFileError(f"{option} {item!r}: expected FIELD={'VALUE' if json_values else 'COLUMN'}")
        if json_values:
            try:
                out[name.strip()] = json.loads(value)
            except ValueError:
                out[name.strip()] = value
        else:
            out[name.strip()] = value
    return out
