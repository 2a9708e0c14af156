"""A CLI run over an input bigger than one chunk: one batch per chunk, one results file, every
row once, nothing paid twice (also for a request repeated in another chunk), resumable, and
bounded by one budget. The chunk size is made tiny so a 40-row input spans six chunks."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.cli import main
from akool_flows.cli.batch_input import TableChunks


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(TableChunks, "DEFAULT_ROWS", 7)


def _input(path, n: int = 40) -> pd.DataFrame:
    texts = [f"message {i % 25}" for i in range(n)]  # rows 25.. repeat rows 0.. in later chunks
    texts[3] = ""  # rejected
    pd.DataFrame({"text": texts, "other": [f"o{i}" for i in range(n)]}).to_csv(path, index=False)
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _argv(tmp_path, *extra: str) -> list[str]:
    return ["batch", "moderation", str(tmp_path / "in.csv"), "--map", "content=text", "--set", "type=4",
            "--out", str(tmp_path / "out.csv"), "--cost-log", str(tmp_path / "costs.csv"),
            "--ledger", str(tmp_path / "l.sqlite"), "--poll-interval", "0.05", "--quiet", *extra]


def _env(monkeypatch, sandbox):
    monkeypatch.setenv("AKOOL_BASE_URL", sandbox.base_url)
    monkeypatch.setenv("AKOOL_API_TOKEN", sandbox.token)


def test_a_run_in_chunks_accounts_for_every_row_once_and_pays_once(tmp_path, sandbox, monkeypatch, capsys,
                                                                    small_chunks):
    _env(monkeypatch, sandbox)
    source = _input(tmp_path / "in.csv")
    assert main(_argv(tmp_path)) == 0  # a rejected row alone is not a failure, as in one whole run
    out = capsys.readouterr().out
    results = pd.read_csv(tmp_path / "out.csv", dtype={"input_index": int})
    assert results["input_index"].tolist() == list(range(1, 41))  # every input row, once, in order
    assert results["other"].tolist() == source["other"].tolist()
    assert results["outcome"].value_counts().to_dict() == {"completed": 39, "rejected": 1}
    distinct = source.loc[source["text"] != "", "text"].nunique()
    assert sandbox.stats()["creates"] == distinct == 25  # a repeat in a later chunk is adopted, not sent
    repeated = results[results["input_index"] == 30].iloc[0]  # "message 4", first seen at row 5
    assert repeated["job_id"] == results[results["input_index"] == 5].iloc[0]["job_id"]
    costs = pd.read_csv(tmp_path / "costs.csv")
    assert len(costs) == 41 and costs.iloc[-1]["row_key"] == "TOTAL"
    assert costs.iloc[-1]["credits"] == pytest.approx(costs.iloc[:-1]["credits"].sum())
    assert costs.iloc[-1]["credits"] == pytest.approx(2.5)  # 25 texts at 0.1: each paid, and counted, once
    assert repeated["paid_in"] == "earlier chunk" and repeated["credits"] == 0
    assert "Cost: 2.50 credits" in out
    assert "6 chunk(s)" in out and not (tmp_path / "out.csv.partial.csv").exists()

    # The same command again: every chunk resumes; nothing is sent.
    assert main(_argv(tmp_path)) == 0
    assert sandbox.stats()["creates"] == 25
    again = pd.read_csv(tmp_path / "out.csv", dtype={"input_index": int})
    assert again["job_id"].tolist() == results["job_id"].tolist()


def test_a_budget_spans_the_chunks_and_rows_not_reached_are_cancelled(tmp_path, sandbox, monkeypatch, capsys,
                                                                      small_chunks):
    _env(monkeypatch, sandbox)
    _input(tmp_path / "in.csv")
    code = main(_argv(tmp_path, "--budget-credits", "1.0"))  # 0.1 credit per text: 10 jobs
    assert code == 3
    results = pd.read_csv(tmp_path / "out.csv")
    assert len(results) == 40 and results["input_index"].is_unique
    assert sandbox.stats()["creates"] == 10
    print(results["outcome"].value_counts().to_dict())
    assert results["outcome"].value_counts().to_dict() == {"completed": 10, "cancelled": 29, "rejected": 1}
    assert "Stopped by the budget" in capsys.readouterr().out


def test_a_small_input_is_one_run_as_before(tmp_path, sandbox, monkeypatch, capsys):
    _env(monkeypatch, sandbox)
    _input(tmp_path / "in.csv")
    assert main(_argv(tmp_path)) == 0
    out = capsys.readouterr().out
    assert "chunk(s)" not in out and sandbox.stats()["creates"] == 25
