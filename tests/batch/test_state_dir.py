"""The default ledger belongs to the input file, not to the working directory."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

import pytest

from akool_flows.batch.state_dir import default_ledger_path, state_dir
from akool_flows.cli import main


@pytest.fixture
def api(sandbox_env):
    return sandbox_env


def test_same_command_from_two_directories_pays_once(api, tmp_path, monkeypatch, capsys):
    state = tmp_path / "state"
    monkeypatch.setenv("AKOOL_FLOWS_STATE_DIR", str(state))
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "comments.csv").write_text("text\n" + "".join(f"comment {i}\n" for i in range(6)))
    outs = []
    for cwd, spelled in (("a", str(tmp_path / "data" / "comments.csv")), ("b", "../data/comments.csv")):
        (tmp_path / cwd).mkdir()
        monkeypatch.chdir(tmp_path / cwd)
        code = main(["moderate", spelled, "--column", "text", "--type", "text", "--out", "r.csv", "--quiet",
                     "--show", "0", "--poll-interval", "0.1"])
        out, err = capsys.readouterr()
        assert code == 0, out + err
        outs.append(out)
    assert api.create_count() == 6 and api.duplicate_creates() == {}
    assert not list(tmp_path.glob("[ab]/*.sqlite"))  # nothing left in the working directories
    ledgers = [re.search(r"^Ledger: (\S+)", out, re.M).group(1) for out in outs]
    assert ledgers[0] == ledgers[1] and Path(ledgers[0]).parent == state / "ledgers"
    assert all(f"ledger {ledgers[0]}" in out for out in outs)  # in the summary too


def test_ledger_option_still_wins(api, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.csv").write_text("text\nhello\n")
    code = main(["moderate", "in.csv", "--column", "text", "--type", "text", "--out", "r.csv", "--quiet",
                 "--ledger", "mine.sqlite", "--poll-interval", "0.1"])
    out = capsys.readouterr().out
    assert code == 0 and "Ledger: mine.sqlite" in out and (tmp_path / "mine.sqlite").exists()


def test_dry_run_creates_no_state(api, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AKOOL_FLOWS_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "in.csv").write_text("text\nhello\n")
    assert main(["moderate", str(tmp_path / "in.csv"), "--column", "text", "--type", "text", "--dry-run"]) == 0
    assert "Ledger: " in capsys.readouterr().out and not (tmp_path / "state").exists()


def test_default_ledger_path_is_per_input_file(tmp_path, monkeypatch):
    monkeypatch.setenv("AKOOL_FLOWS_STATE_DIR", str(tmp_path / "st"))
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    for d in ("x", "y"):
        (tmp_path / d / "in put;$(rm).csv").write_text("text\nhi\n")
    (tmp_path / "link.csv").symlink_to(tmp_path / "x" / "in put;$(rm).csv")
    a = default_ledger_path(tmp_path / "x" / "in put;$(rm).csv")
    b = default_ledger_path(tmp_path / "y" / "in put;$(rm).csv")
    assert a != b and a.parent == b.parent == tmp_path / "st" / "ledgers"
    assert re.fullmatch(r"in_put_rm-[0-9a-f]{12}\.sqlite", a.name)
    assert default_ledger_path(tmp_path / "link.csv") == a
    monkeypatch.chdir(tmp_path / "x")
    assert default_ledger_path("in put;$(rm).csv") == a
    if sys.platform != "win32":
        for folder in (tmp_path / "st", tmp_path / "st" / "ledgers"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_state_dir_order(tmp_path, monkeypatch):
    monkeypatch.setenv("AKOOL_FLOWS_STATE_DIR", "relative/dir")
    with pytest.raises(ValueError, match="absolute"):
        state_dir()
    monkeypatch.delenv("AKOOL_FLOWS_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert state_dir() == tmp_path / "xdg" / "akool-flows"
    monkeypatch.setenv("XDG_STATE_HOME", "not/absolute")  # the XDG spec says: ignore it
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    expected = {"linux": tmp_path / "home" / ".local" / "state" / "akool-flows",
                "darwin": tmp_path / "home" / "Library" / "Application Support" / "akool-flows"}
    if sys.platform in expected:
        assert state_dir() == expected[sys.platform]
    assert not default_ledger_path(tmp_path / "in.csv", create=False).parent.exists()


def test_relative_state_dir_is_a_clear_cli_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AKOOL_FLOWS_STATE_DIR", "state")
    (tmp_path / "in.csv").write_text("text\nhello\n")
    code = main(["moderate", str(tmp_path / "in.csv"), "--column", "text", "--type", "text", "--out",
                 str(tmp_path / "r.csv"), "--sandbox"])
    err = capsys.readouterr().err
    assert code == 2 and "AKOOL_FLOWS_STATE_DIR must be an absolute path" in err
