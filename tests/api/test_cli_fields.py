"""`akool-flows batch` sends fields the docs do not list as given; `--strict-fields` refuses them."""

from __future__ import annotations

import pandas as pd
import pytest

from akool_flows.api import unknown_fields
from akool_flows.cli import main

sandbox_mod = pytest.importorskip("akool_flows.sandbox")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(unknown_fields, "_warned", set())
    with sandbox_mod.Sandbox(queue_seconds=0.02, job_seconds=0.1) as sb:
        for name, value in sb.env().items():
            monkeypatch.setenv(name, value)
        yield sb


def _args(*extra: str) -> list[str]:
    pd.DataFrame({"video": ["https://cdn.example.com/a.mp4", "https://cdn.example.com/b.mp4"]}).to_csv(
        "videos.csv", index=False)
    return ["batch", "video_translation", "videos.csv", "--map", "url=video", "--set", "source_language=DEFAULT",
            "--set", "language=fr", "--set", "speaker_num=2", "--set", 'voices_map={"fr": {"voice_id": "v1"}}',
            "--quiet", "--show", "0", *extra]


def test_batch_sends_fields_the_docs_do_not_list(sandbox, capsys):
    with pytest.warns(unknown_fields.UnknownFieldWarning, match="speaker_num"):
        code = main(_args("--out", "out.csv", "--ledger", "l.sqlite", "--poll-interval", "0.05"))
    assert code == 0, capsys.readouterr()
    requests = [sandbox.job_request(j["_id"]) for j in sandbox.jobs()]
    assert sorted(r["url"] for r in requests) == ["https://cdn.example.com/a.mp4", "https://cdn.example.com/b.mp4"]
    assert all(r["speaker_num"] == 2 and r["voices_map"] == {"fr": {"voice_id": "v1"}} for r in requests)
    assert (pd.read_csv("out.csv")["outcome"] == "completed").all()


def test_strict_fields_refuses_them_before_sending(sandbox, capsys):
    code = main(_args("--strict-fields", "--out", "out.csv", "--ledger", "l.sqlite"))
    err = capsys.readouterr().err
    assert code == 2 and "'speaker_num'" in err and "voices_map" in err and "Traceback" not in err
    assert sandbox.stats()["requests"] == 0
