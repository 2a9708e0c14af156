"""Mapped face-swap tasks (one new face onto many posters) on real Airflow against the sandbox:
what each task costs in face detect calls, token exchanges and XCom writes."""

from __future__ import annotations

import os
import time

import pytest
from conftest import load_dag, task_states, xcom, xcom_writes


def test_mapped_faceswap_tasks_detect_the_shared_face_once(airflow, monkeypatch):
    sb = airflow
    n = 4
    monkeypatch.setenv("AKOOL_TEST_FACESWAP_TASKS", str(n))
    run = load_dag("akool_test_faceswap_mapped").test()
    assert str(run.state) == "success", task_states(run)
    assert sb.create_count("faceswap_image") == n and sb.duplicate_creates() == {}
    # The shared new face once, each poster once (2 per task before: the face again in every task).
    assert sb.stats()["requests_by_path"]["/detect"] == 1 + n
    # One XCom per task: its result.
    assert xcom_writes(run) == {f"swap[{i}]": ["return_value"] for i in range(n)}
    assert all(xcom(run, "swap", map_index=i)["state"] == "completed" for i in range(n))


@pytest.mark.slow
def test_creates_per_second_of_mapped_faceswap_tasks(airflow, monkeypatch, capsys):
    """The bench/README.md figure: N mapped face-swap tasks through ``dag.test()`` (one process,
    tasks one after another: per-task overhead, not Akool, bounds it)."""
    sb = airflow
    n = int(os.environ.get("AKOOL_BENCH_FACESWAP_TASKS", "30"))
    monkeypatch.setenv("AKOOL_TEST_FACESWAP_TASKS", str(n))
    dag = load_dag("akool_test_faceswap_mapped")
    start = time.perf_counter()
    run = dag.test()
    wall = time.perf_counter() - start
    assert str(run.state) == "success", task_states(run)
    assert sb.create_count("faceswap_image") == n
    by_path = sb.stats()["requests_by_path"]
    writes = sum(len(keys) for keys in xcom_writes(run).values())
    with capsys.disabled():
        print(f"\n{n} mapped face-swap tasks in {wall:.1f} s: {n / wall:.2f} creates/s; detect calls "
              f"{by_path.get('/detect', 0)}, getToken {by_path.get('/api/open/v3/getToken', 0)}, XCom writes {writes}")
