"""The files a batch writes: never over its own input, atomic, normal permissions, spreadsheet-safe.

Every CLI test here runs against a sandbox this test owns (through AKOOL_* variables, as a real
account would be), so it can count the jobs the command created: a refused command creates none.
"""

from __future__ import annotations

import csv
import io
import os
import stat
import sys

import pandas as pd
import pytest

from akool_flows.batch.export import IncrementalCsv, write_table
from akool_flows.cli import main

FORMULA = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def api(sandbox_env, monkeypatch, tmp_path):
    """A sandbox reached like the real API (AKOOL_* variables), with the CLI run from ``tmp_path``."""
    monkeypatch.chdir(tmp_path)
    return sandbox_env


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _input(tmp_path, rows=3001):
    path = tmp_path / "comments.csv"
    path.write_text("text\n" + "".join(f"comment number {i}\n" for i in range(rows)), encoding="utf-8")
    return path


MODERATE = ("moderate", "comments.csv", "--column", "text", "--type", "text", "--quiet", "--show", "0",
            "--poll-interval", "0.1")


@pytest.mark.parametrize("how", ["same", "dotted", "absolute", "symlink", "hardlink"])
def test_out_that_is_the_input_is_refused_before_anything_is_sent(api, tmp_path, capsys, how):
    src = _input(tmp_path)
    before = src.read_bytes()
    out = {"same": "comments.csv", "dotted": "./sub/../comments.csv", "absolute": str(src),
           "symlink": "link.csv", "hardlink": "hard.csv"}[how]
    (tmp_path / "sub").mkdir()
    if how == "symlink":
        (tmp_path / "link.csv").symlink_to(src)
    elif how == "hardlink":
        os.link(src, tmp_path / "hard.csv")
    code, _, err = _run(capsys, *MODERATE, "--out", out, "--ledger", "l.sqlite")
    assert code == 2
    assert "--out" in err and "is the input file" in err
    assert src.read_bytes() == before  # 3,001 lines still there
    assert api.create_count() == 0
    assert not (tmp_path / "l.sqlite").exists()


@pytest.mark.parametrize("option", ["--cost-log", "--ledger"])
def test_cost_log_or_ledger_that_is_the_input_is_refused(api, tmp_path, capsys, option):
    src = _input(tmp_path, rows=5)
    before = src.read_bytes()
    argv = [*MODERATE, "--out", "r.csv", option, "comments.csv"]
    if option != "--ledger":
        argv += ["--ledger", "l.sqlite"]
    code, _, err = _run(capsys, *argv)
    assert code == 2 and option in err and "is the input file" in err
    assert src.read_bytes() == before and api.create_count() == 0


def test_out_and_cost_log_may_not_be_the_same_file(api, tmp_path, capsys):
    _input(tmp_path, rows=5)
    code, _, err = _run(capsys, *MODERATE, "--out", "r.csv", "--cost-log", "./r.csv", "--ledger", "l.sqlite")
    assert code == 2 and "--cost-log" in err and "--out" in err
    assert api.create_count() == 0


def test_cost_log_is_written_atomically_next_to_the_results(api, tmp_path, capsys):
    _input(tmp_path, rows=5)
    code, out, _ = _run(capsys, *MODERATE, "--out", "r.csv", "--cost-log", "costs/c.csv", "--ledger", "l.sqlite")
    assert code == 0, out
    costs = pd.read_csv(tmp_path / "costs" / "c.csv")
    assert list(costs["row_key"])[-1] == "TOTAL" and len(costs) == 6
    assert not [p for p in (tmp_path / "costs").iterdir() if p.name.startswith(".")]  # no temp file left


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_write_table_makes_normal_files_and_keeps_an_existing_mode(tmp_path, umask_022):
    df = pd.DataFrame({"a": ["x", "y"]})
    for name in ("r.csv", "r.parquet"):
        write_table(df, tmp_path / name)
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o644, name
    (tmp_path / "r.csv").chmod(0o640)
    write_table(df, tmp_path / "r.csv")
    assert stat.S_IMODE((tmp_path / "r.csv").stat().st_mode) == 0o640


def test_write_table_never_truncates_the_old_file_first(tmp_path):
    old = tmp_path / "r.csv"
    old.write_text("precious\n")
    os.link(old, tmp_path / "other-name.csv")

    class Boom(Exception):
        pass

    class Exploding:
        def __str__(self):
            raise Boom

    with pytest.raises(Boom):
        write_table(pd.DataFrame({"a": ["fine", Exploding()]}), old)
    assert old.read_text() == "precious\n"
    write_table(pd.DataFrame({"a": ["new"]}), old)
    assert old.read_text() == "a\nnew\n"
    assert (tmp_path / "other-name.csv").read_text() == "precious\n"  # replaced, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-name.csv", "r.csv"]


def test_write_table_through_a_symlink_updates_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link.csv").symlink_to(tmp_path / "real" / "r.csv")
    write_table(pd.DataFrame({"a": ["x"]}), tmp_path / "link.csv")
    assert (tmp_path / "link.csv").is_symlink()
    assert (tmp_path / "real" / "r.csv").read_text() == "a\nx\n"


def test_incremental_log_does_not_truncate_the_file_it_replaces(tmp_path, umask_022):
    old = tmp_path / "r.partial.csv"
    old.write_text("an earlier file\n")
    os.link(old, tmp_path / "input.csv")
    log = IncrementalCsv(old, ["a", "b"])
    log.add({"a": "=1", "b": 2})
    log.add({"a": "x\r@y", "b": None})
    log.close()
    assert (tmp_path / "input.csv").read_text() == "an earlier file\n"
    assert old.read_bytes() == b"a,b\n'=1,2\n\"x\r'@y\",\n"
    if sys.platform != "win32":
        assert stat.S_IMODE(old.stat().st_mode) == 0o644


# --- spreadsheet and terminal safety ---------------------------------------------------------------

HOSTILE = [
    "ok\r=cmd|' /C calc'!A0",           # a bare CR: spreadsheets and pandas end the row there
    "first line\n@SUM(1+1)*cmd|' /C calc'!A0",
    "windows\r\n+1+cmd|' /C calc'!A0",
    "\t=tab first",
    "=HYPERLINK(\"http://evil\")",
    "two\r\r-2+3",
    "\x1b[2J\x1b]0;pwned\x07colour \x1b[31mred\x1b[0m",
    "bidi \u202eexe.txt\u202c and \x9b31m C1",
    "plain, with \"quotes\"",
]


def _hostile_input(tmp_path):
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")  # CRLF: the csv module then quotes the CR cells
    w.writerow(["id", "text"])
    for i, text in enumerate(HOSTILE):
        w.writerow([f"c{i}", text])
    (tmp_path / "comments.csv").write_text(buf.getvalue(), encoding="utf-8", newline="")
    # The input reads back as exactly these rows (the test's premise).
    back = pd.read_csv(tmp_path / "comments.csv", dtype=str, keep_default_na=False)
    assert list(back["text"]) == HOSTILE


def _starts_a_formula(cell: str) -> bool:
    return any(line.startswith(FORMULA) for line in cell.replace("\r\n", "\n").replace("\r", "\n").split("\n"))


def test_csv_with_line_breaks_and_formulas_reads_back_one_row_per_row(api, tmp_path, capsys):
    _hostile_input(tmp_path)
    code, out, err = _run(capsys, "moderate", "comments.csv", "--column", "text", "--type", "text",
                          "--poll-interval", "0.1", "--out", "r.csv", "--cost-log", "c.csv", "--ledger", "l.sqlite")
    assert code in (0, 1), err
    raw = (tmp_path / "r.csv").read_bytes()
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], rows[1:]
    assert len(body) == len(HOSTILE)
    assert [r[header.index("id")] for r in body] == [f"c{i}" for i in range(len(HOSTILE))]
    bad = [c for r in rows for c in r if _starts_a_formula(c)]
    assert not bad, bad
    # Also split the way a naive tool (or a spreadsheet's row splitter) does: no line is a formula.
    assert not [ln for ln in raw.replace(b"\r", b"\n").split(b"\n") if ln.startswith(tuple(
        c.encode() for c in FORMULA))]
    frame = pd.read_csv(tmp_path / "r.csv", dtype=str, keep_default_na=False)
    assert list(frame["id"]) == [f"c{i}" for i in range(len(HOSTILE))]
    text = frame["text"].tolist()
    assert text[0] == "ok\r'=cmd|' /C calc'!A0" and text[2] == "windows\r\n'+1+cmd|' /C calc'!A0"
    assert text[6] == HOSTILE[6] and text[8] == HOSTILE[8]  # harmless text is kept exactly
    assert len(pd.read_csv(tmp_path / "c.csv")) == len(HOSTILE) + 1


def test_cli_prints_no_terminal_control_characters(api, tmp_path, capsys):
    _hostile_input(tmp_path)
    code, out, err = _run(capsys, "moderate", "comments.csv", "--column", "text", "--type", "text",
                          "--poll-interval", "0.1", "--out", "r.csv", "--ledger", "l.sqlite")
    assert code in (0, 1)
    for stream in (out, err):
        assert "\x1b" not in stream and "\x9b" not in stream and "\x07" not in stream
        assert "\u202e" not in stream and "\r" not in stream
    assert "\\x1b[31mred" in out and "\\u202e" in out  # shown, visibly
    # Column names and rejection messages quote the file too.
    (tmp_path / "evil.csv").write_text("\x1b[2Jname,kind\nhi,\x1b[31m4\n", encoding="utf-8")
    code, out, err = _run(capsys, "moderate", "evil.csv", "--column", "text", "--type", "text", "--dry-run")
    assert code == 2 and "\\x1b[2Jname" in err and "\x1b" not in err
    code, out, err = _run(capsys, "batch", "moderation", "evil.csv", "--map", "content=\x1b[2Jname",
                          "--map", "type=kind", "--dry-run")
    assert "\x1b" not in out + err and "\\x1b[31m4" in out
