"""The notebooks in notebooks/, executed headless with nbclient, as papermill or Airflow would.

Each notebook has a cell tagged ``parameters``; like papermill, the test inserts a cell of
overrides right after it. With no ``AKOOL_*`` variables the kernel starts its own sandbox.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
import pandas as pd
import pytest
from nbclient import NotebookClient

from .conftest import NOTEBOOKS

NAMES = ("bulk_moderation", "catalog_translation", "quickstart")


def execute(name: str, tmp_path: Path, **params: Any) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, injected)
    NotebookClient(nb, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOKS)}}).execute()
    nbformat.write(nb, tmp_path / f"{name}.executed.ipynb")
    return nb


def outputs(nb: nbformat.NotebookNode) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]


@pytest.mark.parametrize("name", NAMES)
def test_committed_clean_with_a_parameters_cell(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs before committing"
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    assert "interactive = True" in params[0].source and "output_path" in params[0].source
    if name != "quickstart":
        assert "fail_on_problems = False" in params[0].source
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_bulk_moderation_headless_without_credentials(tmp_path: Path) -> None:
    out = tmp_path / "verdicts.csv"
    nb = execute("bulk_moderation", tmp_path, interactive=False, output_path=str(out),
                 ledger_path=str(tmp_path / "ledger.sqlite"))
    results = pd.read_csv(out)
    assert len(results) == 24
    assert results["outcome"].value_counts().to_dict() == {"completed": 22, "rejected": 1, "failed": 1}
    assert results.set_index("comment_id").loc["c005", "conclusion"] == "Non-Compliant"
    assert (tmp_path / "verdicts.costs.csv").exists()
    texts = "".join(o.get("text", "") for o in outputs(nb))
    assert f"finished: wrote 24 rows to {out}" in texts
    # The app cell rendered the widget (what JupyterLab shows), with the SANDBOX badge in its state ...
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {}) for o in outputs(nb))
    state = json.dumps(nb.metadata.get("widgets", {}))
    assert "SANDBOX" in state
    # ... and, for readers without a kernel, a static snapshot of the final state, not VBox(children=...).
    snapshot = app_cell_html(nb)
    assert "Finished: 22 completed, 1 failed, 1 rejected" in snapshot and "akool-results-table" in snapshot
    assert "VBox" not in app_cell_text(nb)
    # The cells below the app show the results (the run ended before they ran).
    below = "".join(o.get("data", {}).get("text/html", "") for o in outputs_after(nb, "app.when_done"))
    assert "c005" in below and "Non-Compliant" in below


def app_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    return next(c for c in nb.cells if c.cell_type == "code" and c.source.rstrip().endswith("\napp"))


def app_cell_html(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for o in app_cell(nb).outputs)


def app_cell_text(nb: nbformat.NotebookNode) -> str:
    return "".join(o.get("data", {}).get("text/plain", "") for o in app_cell(nb).outputs)


def outputs_after(nb: nbformat.NotebookNode, marker: str) -> list[dict[str, Any]]:
    return [o for c in nb.cells if c.cell_type == "code" and marker in c.source for o in c.outputs]


def test_fail_on_problems_fails_the_notebook(tmp_path: Path) -> None:
    from nbclient.exceptions import CellExecutionError

    with pytest.raises(CellExecutionError, match="1 failed"):
        execute("bulk_moderation", tmp_path, interactive=False, output_path=str(tmp_path / "v.csv"),
                ledger_path=str(tmp_path / "ledger.sqlite"), fail_on_problems=True)


def test_papermill_output_notebook_reads_as_a_report(tmp_path: Path) -> None:
    papermill = pytest.importorskip("papermill")
    out = tmp_path / "bulk_moderation.out.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / "bulk_moderation.ipynb"), str(out), cwd=str(NOTEBOOKS),
                               parameters={"interactive": False, "output_path": str(tmp_path / "v.csv"),
                                           "ledger_path": str(tmp_path / "ledger.sqlite")},
                               kernel_name="python3", progress_bar=False)
    nb = nbformat.read(out, as_version=4)
    snapshot = app_cell_html(nb)
    assert "SANDBOX" in snapshot and "Finished: 22 completed, 1 failed, 1 rejected" in snapshot
    assert snapshot.count('<tr class="akool-row') == 24 and "VBox" not in app_cell_text(nb)


def test_catalog_translation_headless_to_parquet(tmp_path: Path) -> None:
    out = tmp_path / "translations.parquet"
    execute("catalog_translation", tmp_path, interactive=False, output_path=str(out), targets=["fr", "de", "ja"],
            ledger_path=str(tmp_path / "ledger.sqlite"))
    results = pd.read_parquet(out)
    assert len(results) == 18 and set(results["language"]) == {"fr", "de", "ja"}
    assert results["outcome"].value_counts().to_dict() == {"completed": 12, "rejected": 3, "failed": 3}


def test_quickstart_runs_every_kind(tmp_path: Path) -> None:
    out = tmp_path / "tour.csv"
    execute("quickstart", tmp_path, interactive=False, output_path=str(out))
    tour = pd.read_csv(out)
    assert tour["kind"].tolist() == list(__import__("akool_flows.api", fromlist=["KINDS"]).KINDS)
    assert set(tour["state"]) == {"completed", "opened+closed"}, tour[["kind", "state", "error"]]
    assert tour.set_index("kind").loc["moderation", "conclusion"] == "Compliant"


def test_a_new_kernel_resumes_from_the_ledger(tmp_path: Path, sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    # Both kernels talk to the same sandbox (this process) through AKOOL_* variables, as two
    # kernels of a real account would; the second is a fresh process with only the ledger file.
    for key, value in sandbox.env().items():
        monkeypatch.setenv(key, value)
    ledger = str(tmp_path / "ledger.sqlite")
    execute("bulk_moderation", tmp_path, interactive=False, rows=5, output_path=str(tmp_path / "first.csv"),
            ledger_path=ledger)
    assert sandbox.create_count("moderation") == 5
    execute("bulk_moderation", tmp_path, interactive=False, output_path=str(tmp_path / "all.csv"),
            ledger_path=ledger)
    assert sandbox.create_count("moderation") == 22 and sandbox.duplicate_creates() == {}
    first, everything = pd.read_csv(tmp_path / "first.csv"), pd.read_csv(tmp_path / "all.csv")
    merged = first.merge(everything, on="row_key", suffixes=("_1", "_2"))
    assert len(merged) == 5 and (merged["job_id_1"] == merged["job_id_2"]).all()
