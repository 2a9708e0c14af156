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


def _run_chunks(sandbox, tmp_path, df, rows=7, **options):
    import asyncio

    from akool_flows.batch import BatchOptions, arun_chunks, summarize_plan
    from akool_flows.batch.plan_stream import frames

    from .conftest import make_client

    kw = dict(columns={"content": "text"}, defaults={"type": 4})
    whole = summarize_plan(frames(df, rows), "moderation", **kw)

    async def go():
        client = make_client(sandbox)
        try:
            return await arun_chunks(frames(df, rows), "moderation", results_path=tmp_path / "out.csv",
                                     cost_log_path=tmp_path / "costs.csv", ledger=tmp_path / "l.sqlite", client=client,
                                     options=BatchOptions(poll_interval=0.05, **options), estimate=whole.estimate, **kw)
        finally:
            await client.aclose()

    return asyncio.run(go()), whole


def _frame(n=40):
    texts = [f"message {i % 25}" for i in range(n)]
    texts[3] = ""
    df = pd.DataFrame({"text": texts})
    df.index = pd.RangeIndex(1, n + 1, name="row")
    return df


def test_the_summary_of_a_run_in_chunks_counts_money_once(tmp_path, sandbox):
    result, whole = _run_chunks(sandbox, tmp_path, _frame())
    s = result.summary
    assert s["rows"] == 40 and s["counts"]["completed"] == 39 and s["counts"]["rejected"] == 1
    assert s["duplicates"] == 14  # rows 26-40 repeat rows 1-15 (row 29's twin, row 4, was rejected)
    assert s["credits"] == pytest.approx(2.5) and s["credits_new"] == pytest.approx(2.5)
    assert s["credits_already_paid"] == 0 and s["credits_reported"] == pytest.approx(2.5)
    assert s["usd"] == pytest.approx(2.5 * s["usd_per_credit"])
    assert s["estimate"] == whole.estimate.to_dict() and s["estimate"]["total_credits"] == pytest.approx(2.5)
    assert s["verdicts"] == {"Compliant": 39}
    assert s["submitted"] == 39 and s["exit_status"] == 0 and s["stopped_by"] is None
    assert s["balance_before"] is not None and len(s["batch_ids"]) == 6
    assert result.results["input_index"].tolist()[:5] == [1, 2, 3, 4, 5]
    rejected = pd.read_csv(tmp_path / "out.csv").set_index("input_index").loc[4]
    assert rejected["outcome"] == "rejected" and "content" in rejected["error_message"]
    costs = pd.read_csv(tmp_path / "costs.csv")
    assert costs.iloc[-1]["outcome"] == "40 rows" and costs.iloc[-1]["usd"] == pytest.approx(2.5 * 0.04)

    # Again: everything was paid by the first run; nothing new, the same total, nothing sent.
    again, _ = _run_chunks(sandbox, tmp_path, _frame())
    s2 = again.summary
    assert sandbox.stats()["creates"] == 25
    assert s2["credits"] == pytest.approx(2.5) and s2["credits_new"] == 0
    assert s2["credits_already_paid"] == pytest.approx(2.5) and s2["submitted"] == 39


def test_rows_after_a_stop_are_cancelled_with_a_note_and_rejections_kept(tmp_path, sandbox):
    result, _ = _run_chunks(sandbox, tmp_path, _frame(), budget_credits=0.5)
    s = result.summary
    assert s["stopped_by"] == "budget" and s["exit_status"] == 3 and s["budget_credits"] == 0.5
    out = pd.read_csv(tmp_path / "out.csv").set_index("input_index")
    assert sandbox.stats()["creates"] == 5 and (out["outcome"] == "completed").sum() == 5
    late = out.loc[30]  # a chunk the run did not reach
    assert late["outcome"] == "cancelled" and "not reached: the run stopped (budget)" in late["note"]
    assert out.loc[4, "outcome"] == "rejected" and "content" in out.loc[4, "error_message"]
    assert s["counts"]["cancelled"] == 34 and s["credits"] == pytest.approx(0.5)


def test_a_run_in_chunks_refuses_what_it_cannot_keep_before_sending(tmp_path, sandbox):
    import asyncio

    from akool_flows.batch import BatchOptions, BudgetError, arun_chunks, summarize_plan
    from akool_flows.batch.errors import BatchInputError
    from akool_flows.batch.plan_stream import frames

    df = pd.DataFrame({"text": ["https://example.com/a.txt", "plain words"]})  # a URL: price unknown
    kw = dict(columns={"content": "text"}, defaults={"type": 4})
    whole = summarize_plan(frames(df, 1), "moderation", **kw)

    def run(path, **options):
        return asyncio.run(arun_chunks(frames(df, 1), "moderation", results_path=path, ledger=tmp_path / "l.sqlite",
                                       client=None, options=BatchOptions(**options), estimate=whole.estimate, **kw))

    with pytest.raises(BatchInputError, match="results_path"):
        run(tmp_path / "out.parquet")
    with pytest.raises(BudgetError, match="max_credits_per_row"):
        run(tmp_path / "out.csv", budget_credits=5)
    assert sandbox.stats()["creates"] == 0 and not (tmp_path / "out.csv").exists()


def test_rejected_rows_of_chunks_not_reached_stay_rejected(tmp_path, sandbox):
    df = _frame()
    df.loc[33, "text"] = ""  # a rejection in a chunk the budget never reaches
    result, _ = _run_chunks(sandbox, tmp_path, df, budget_credits=0.5)
    out = pd.read_csv(tmp_path / "out.csv").set_index("input_index")
    assert out.loc[33, "outcome"] == "rejected" and "content" in out.loc[33, "error_message"]
    assert result.summary["counts"]["rejected"] == 2
