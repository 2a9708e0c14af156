"""`akool-flows demo` (what `make demo` runs): examples/comments.csv moderated on the embedded sandbox."""

from __future__ import annotations

import csv
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
    assert {r["outcome"] for r in rows} == {"completed", "rejected"}

    # All three Jarvis conclusions, for the rows you would expect.
    assert by_id["c001"]["conclusion"] == "Compliant"
    assert by_id["c003"]["conclusion"] == "Non-Compliant" and "violence" in by_id["c003"]["detail"]
    assert by_id["c006"]["conclusion"] == "Non-Compliant" and "cyberbullying" in by_id["c006"]["detail"]
    assert by_id["c018"]["conclusion"] == "Unknown"
    assert by_id["c005"]["conclusion"] == "Compliant"  # Japanese, harmless
    conclusions = {r["conclusion"] for r in rows if r["outcome"] == "completed"}
    assert conclusions == {"Compliant", "Non-Compliant", "Unknown"}

    # Empty comments are rejected with the validation message and never sent.
    for cid in ("c007", "c008"):
        assert by_id[cid]["outcome"] == "rejected" and by_id[cid]["job_id"] == ""
        assert "content" in by_id[cid]["error_message"]

    # Spreadsheet safety: text a spreadsheet would evaluate is neutralised, the rest untouched.
    assert by_id["c009"]["text"].startswith("'=HYPERLINK(")
    assert by_id["c022"]["text"].startswith("'+1")
    assert by_id["c034"]["text"].startswith("'@admin")
    assert by_id["c037"]["text"].startswith("'-1")
    assert by_id["c001"]["text"] == source[0]["text"]
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values())

    # Costs: 0.1 credit per started 600 characters; the long comment is two blocks.
    assert float(by_id["c033"]["credits"]) == pytest.approx(0.2)
    total = sum(float(r["credits"]) for r in rows if r["credits"])
    completed = sum(1 for r in rows if r["outcome"] == "completed")
    assert total == pytest.approx(0.1 * completed + 0.1)

    # The printed report: pre-flight, results table, cost summary.
    assert "48 valid, 2 rejected" in printed
    assert f"{total:.2f} credits" in printed and "USD" in printed
    assert "Non-Compliant" in printed


def test_demo_runs_the_moderate_command_on_the_sandbox():
    from akool_flows.cli.demo_cmd import demo_argv

    argv = demo_argv(Path("examples/comments.csv"), Path("results/moderation.csv"))
    assert argv[:2] == ["moderate", "examples/comments.csv"]
    assert "--sandbox" in argv and argv[argv.index("--out") + 1] == "results/moderation.csv"


def test_demo_bad_input_is_a_clear_error(tmp_path, capsys):
    assert main(["demo", "--input", str(tmp_path / "missing.csv")]) == 2
    src = tmp_path / "c.csv"
    src.write_text("id,message\n1,hi\n", encoding="utf-8")
    assert main(["demo", "--input", str(src)]) == 2
    assert "text" in capsys.readouterr().err
