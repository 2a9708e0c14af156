"""`akool-flows demo` (what `make demo` runs): examples/comments.csv moderated on the embedded sandbox."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from akool_flows.cli import main

pytest.importorskip("akool_flows.sandbox")

REPO = Path(__file__).resolve().parents[2]
COMMENTS = REPO / "examples" / "comments.csv"


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_comments_example_is_realistic():
    rows = _read(COMMENTS)
    assert 45 <= len(rows) <= 60
    assert set(rows[0]) == {"comment_id", "user", "text", "posted_at"}
    texts = [r["text"] for r in rows]
    assert "" in texts and any(t and not t.strip() for t in texts)  # empty and whitespace-only
    assert any(t.startswith("=") for t in texts)  # spreadsheet formula injection
    assert any(len(t) > 600 for t in texts)  # billed as two 600-character blocks
    assert any(any(ord(c) > 127 for c in t) for t in texts)  # non-ASCII
    assert any("\n" in t for t in texts)  # a quoted multi-line cell


def test_demo_command_moderates_every_row(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO)  # the defaults are repository-relative, as `make demo` runs them
    out_csv = tmp_path / "results" / "moderation.csv"
    assert main(["demo", "--output", str(out_csv), "--job-seconds", "0.2"]) == 0
    printed = capsys.readouterr().out

    rows = _read(out_csv)
    source = _read(COMMENTS)
    assert [r["comment_id"] for r in rows] == [r["comment_id"] for r in source]  # no row disappears
    by_id = {r["comment_id"]: r for r in rows}
    statuses = {r["status"] for r in rows}
    assert statuses == {"completed", "rejected"}

    # All three Jarvis conclusions, for the rows you would expect.
    assert by_id["c001"]["conclusion"] == "Compliant"
    assert by_id["c003"]["conclusion"] == "Non-Compliant" and "violence" in by_id["c003"]["reason"]
    assert by_id["c006"]["conclusion"] == "Non-Compliant" and "cyberbullying" in by_id["c006"]["reason"]
    assert by_id["c018"]["conclusion"] == "Unknown"
    assert by_id["c005"]["conclusion"] == "Compliant"  # Japanese, harmless
    conclusions = {r["conclusion"] for r in rows if r["status"] == "completed"}
    assert conclusions == {"Compliant", "Non-Compliant", "Unknown"}

    # Empty comments are rejected with the validation message and never sent.
    for cid in ("c007", "c008"):
        assert by_id[cid]["status"] == "rejected" and by_id[cid]["job_id"] == ""
        assert "content" in by_id[cid]["reason"] and "at least 1 character" in by_id[cid]["reason"]

    # Spreadsheet safety: text a spreadsheet would evaluate is neutralised, the rest untouched.
    assert by_id["c009"]["text"].startswith("'=HYPERLINK(")
    assert by_id["c022"]["text"].startswith("'+1")
    assert by_id["c034"]["text"].startswith("'@admin")
    assert by_id["c037"]["text"].startswith("'-1")
    assert by_id["c001"]["text"] == source[0]["text"]
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())

    # Costs: 0.1 credit per started 600 characters; the long comment is two blocks.
    assert float(by_id["c033"]["credits"]) == pytest.approx(0.2)
    total = sum(float(r["credits"]) for r in rows)
    completed = sum(1 for r in rows if r["status"] == "completed")
    assert total == pytest.approx(0.1 * completed + 0.1)
    assert float(by_id["c001"]["usd"]) == pytest.approx(0.004)

    # The printed report: pre-flight, one table row per comment, cost summary.
    assert "48 valid, 2 rejected before sending" in printed
    assert f"Cost: {total:.2f} credits = ${total * 0.04:.4f}" in printed
    assert f"estimated before sending: {total:.2f} credits" in printed
    assert "0 duplicates" in printed and "0 failed" in printed
    table = printed[printed.index("ID    RESULT"):]
    for r in source:
        assert any(line.startswith(r["comment_id"] + " ") for line in table.splitlines())


def test_run_demo_sends_each_valid_row_exactly_once(tmp_path):
    from akool_flows.cli.demo_cmd import run_demo

    buf = io.StringIO()
    demo = run_demo(COMMENTS, tmp_path / "m.csv", job_seconds=0.2, concurrency=8, out=buf)
    valid = len(demo.results) - demo.count("rejected")
    assert demo.sandbox_stats["creates"] == valid
    assert demo.sandbox_stats["duplicate_creates"] == {}
    assert demo.count("failed") == 0 and demo.credits == pytest.approx(demo.estimated_credits)


def test_demo_reports_failed_jobs_with_akools_message(tmp_path):
    from akool_flows.cli.demo_cmd import run_demo

    src = tmp_path / "c.csv"
    src.write_text("id,body\n1,all good here\n2,please sandbox-fail this one\n3,\n", encoding="utf-8")
    demo = run_demo(src, tmp_path / "out.csv", text_column="body", id_column="id", job_seconds=0.1,
                    out=io.StringIO())
    by_id = {r.row_id: r for r in demo.results}
    assert by_id["1"].status == "completed" and by_id["1"].conclusion == "Compliant"
    assert by_id["2"].status == "failed" and by_id["2"].error_code == 1212
    assert by_id["2"].reason == "Sentiment analysis fails" and by_id["2"].credits == 0
    assert by_id["3"].status == "rejected"
    rows = _read(tmp_path / "out.csv")
    assert [r["status"] for r in rows] == ["completed", "failed", "rejected"]
    assert rows[1]["error_code"] == "1212"


def test_demo_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--input", str(tmp_path / "missing.csv")]) == 2
    assert "input file not found" in capsys.readouterr().err
    src = tmp_path / "c.csv"
    src.write_text("id,message\n1,hi\n", encoding="utf-8")
    assert main(["demo", "--input", str(src)]) == 2
    err = capsys.readouterr().err
    assert "missing column(s) text, comment_id" in err and "columns are: id, message" in err
    assert main(["demo", "--input", str(src), "--text-column", "message", "--id-column", "id",
                 "--concurrency", "0"]) == 2
    assert "concurrency" in capsys.readouterr().err
