"""The CLI: bad input files give one clear line (never a traceback), exit codes, the demo's output."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.cli import main


@pytest.fixture(autouse=True)
def _cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("AKOOL_API_TOKEN", "AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET", "AKOOL_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def _write(path, content: str | bytes):
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize("content, message", [
    (b"", "the file is empty"),
    (b"   \n\n", "the file is empty"),
    (b"text\n", "has a header (text) but no rows"),
    (b"body\nhello\n", "--column 'text': no such column; the input has: body"),
    (b"text\ncaf\xe9 au lait\n", "not valid utf-8: byte 0xe9 at line 2, column 4"),
    (b'text\n"unclosed quote\nmore\n', "not a well-formed CSV"),
    (b"text\nab\x00cd\n", "contains NUL bytes (line 2)"),
])
def test_bad_input_files(tmp_path, capsys, content, message):
    path = _write(tmp_path / "in.csv", content)
    code, out, err = _run(capsys, "moderate", path, "--column", "text", "--type", "text", "--dry-run")
    assert code == 2
    assert message in err


def test_missing_file_and_other_encodings(tmp_path, capsys):
    code, _, err = _run(capsys, "moderate", str(tmp_path / "nope.csv"), "--column", "text", "--type", "text",
                        "--dry-run")
    assert code == 2 and "no such file" in err
    path = _write(tmp_path / "latin.csv", "text\ncafé au lait\n".encode("cp1252"))
    code, out, _ = _run(capsys, "moderate", path, "--column", "text", "--type", "text", "--dry-run",
                        "--encoding", "cp1252")
    assert code == 0 and "1 valid" in out


def test_per_row_rejections_huge_cell_wrong_types_duplicates(tmp_path, capsys):
    big = "x" * (10 * 1024 * 1024)
    path = _write(tmp_path / "in.csv", f"text,kind\nhello,4\n{big},4\nhello,4\nbye,abc\nimg,1\n")
    code, out, err = _run(capsys, "batch", "moderation", path, "--map", "content=text", "--map", "type=kind",
                          "--dry-run")
    assert code == 0
    assert "5 rows, 1 valid, 3 rejected, 1 identical to an earlier row" in out
    assert "over the limit of 100,000 (max_cell_chars)" in out
    assert "type: got 'abc', allowed: 1, 2, 3 or 4" in out
    assert "content must be an http(s) URL when type=1" in out
    assert "Dry run: nothing was sent." in out


def test_no_credentials_is_a_clear_error(tmp_path, capsys):
    path = _write(tmp_path / "in.csv", "text\nhello\n")
    code, _, err = _run(capsys, "moderate", path, "--column", "text", "--type", "text", "--out", "r.csv")
    assert code == 2 and "no Akool credentials" in err


def test_out_is_required_and_checked(tmp_path, capsys):
    path = _write(tmp_path / "in.csv", "text\nhello\n")
    assert _run(capsys, "moderate", path, "--column", "text", "--type", "text")[2].count("--out PATH is required")
    code, _, err = _run(capsys, "moderate", path, "--column", "text", "--type", "text", "--out", "r.xlsx")
    assert code == 2 and "use a .csv or .parquet" in err


def test_moderate_demo_command_prints_table_and_cost(tmp_path, capsys):
    path = _write(tmp_path / "comments.csv", 'text\nHave a great day!\nI will kill you\n\n"=HYPERLINK(""x"")"\n'
                                             "Have a great day!\nsandbox-fail here\n")
    code, out, err = _run(capsys, "moderate", path, "--column", "text", "--type", "text", "--sandbox",
                          "--sandbox-job-seconds", "0.2", "--out", "results/moderation.csv")
    assert code == 1  # one job failed (sandbox-fail); rejected rows alone would not make it 1
    assert "row  content" in out and "conclusion / error" in out
    assert "Non-Compliant" in out and "Compliant" in out
    assert "Cost: 0.30 credits (~0.01 USD" in out and "estimated before the run: 0.40" in out
    assert "failed     1" in out and "rejected   1" in out and "completed  4" in out
    res = pd.read_csv(tmp_path / "results" / "moderation.csv", dtype=str, keep_default_na=False)
    assert len(res) == 6 and res["text"][3].startswith("'=")
    assert "progress:" in err  # plain progress lines when not on a terminal
    # Same command again: resumes from the ledger, nothing new is created, same outcome.
    code2, out2, _ = _run(capsys, "moderate", path, "--column", "text", "--type", "text", "--sandbox",
                          "--sandbox-job-seconds", "0.2", "--out", "results/moderation.csv", "--quiet")
    assert code2 == 1 and "failed     1" in out2


def test_strict_and_budget_exit_codes(tmp_path, capsys):
    rows = "\n".join(f"comment {i}" for i in range(10))
    path = _write(tmp_path / "in.csv", f"text\n{rows}\n\n")
    common = ["moderate", path, "--column", "text", "--type", "text", "--sandbox", "--sandbox-job-seconds", "0.1",
              "--quiet", "--show", "0"]
    # The blank last line is a rejected row: exit 0 unless --strict.
    assert _run(capsys, *common, "--out", "a.csv", "--ledger", "a.sqlite")[0] == 0
    assert _run(capsys, *common, "--out", "a.csv", "--ledger", "a.sqlite", "--strict")[0] == 1
    code, out, _ = _run(capsys, *common, "--out", "b.csv", "--ledger", "b.sqlite", "--budget-credits", "0.45")
    assert code == 3 and "Stopped by the budget" in out
    assert pd.read_csv(tmp_path / "b.csv")["outcome"].value_counts().to_dict() == {"cancelled": 6, "completed": 4,
                                                                                "rejected": 1}


def test_translate_checks_languages_and_fans_out(tmp_path, capsys):
    path = _write(tmp_path / "videos.csv", "url,title\nhttps://example.com/a.mp4,A\nhttps://example.com/b.mp4,B\n")
    code, _, err = _run(capsys, "translate", path, "--url-column", "url", "--source", "en", "--to", "fr,xx",
                        "--sandbox", "--out", "t.csv")
    assert code == 2 and "language(s) 'xx' not in Akool's language list" in err
    code, out, _ = _run(capsys, "translate", path, "--url-column", "url", "--source", "en", "--to", "fr,de",
                        "--sandbox", "--sandbox-job-seconds", "0.2", "--out", "t.csv", "--quiet")
    assert code == 0, out
    res = pd.read_csv(tmp_path / "t.csv")
    assert len(res) == 4 and list(res["language"]) == ["fr", "de", "fr", "de"]
    assert res["result_url"].notna().all() and list(res["title"]) == ["A", "A", "B", "B"]


def test_generic_batch_with_set_and_map(tmp_path, capsys):
    path = _write(tmp_path / "lines.csv", "line\nHello there\nGood morning\n")
    code, out, _ = _run(capsys, "batch", "tts", path, "--map", "input_text=line", "--set",
                        "voice_id=LcfcDJNUP1GQjkzn1xUU", "--set", "rate=100%", "--sandbox", "--sandbox-job-seconds",
                        "0.2", "--out", "tts.parquet", "--quiet", "--download", "audio")
    assert code == 0, out
    res = pd.read_parquet(tmp_path / "tts.parquet")
    assert res["outcome"].tolist() == ["completed", "completed"]
    assert all((tmp_path / p).exists() or __import__("pathlib").Path(p).exists() for p in res["artifact_paths"])
    code, _, err = _run(capsys, "batch", "nope", path, "--dry-run")
    assert code == 2 and "unknown job kind 'nope'" in err
    code, _, err = _run(capsys, "batch", "tts", path, "--map", "input_text", "--dry-run")
    assert code == 2 and "expected FIELD=COLUMN" in err
