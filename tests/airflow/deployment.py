"""A whole distributed deployment, as `make airflow-celery` starts it (scripts/airflow-celery.sh),
driven from outside like a user would: Airflow's REST API, Postgres, the sandbox's admin API.
Used by tests/airflow/test_airflow_celery.py and bench/bench_airflow_celery.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "dags"
TEST_DAGS = Path(__file__).resolve().parent / "dags"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Deployment:
    def __init__(self, extra_env: dict[str, str] | None = None) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="akool-celery-"))
        self.port, self.sandbox_port = _free_port(), _free_port()
        self.pg_port, self.redis_port = _free_port(), _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        bundles = [{"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(EXAMPLE_DAGS)}},
                   {"name": "akool-test-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                    "kwargs": {"path": str(TEST_DAGS)}}]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "AKOOL"))}
        env.update({"AIRFLOW_HOME": str(self.home), "AIRFLOW_PORT": str(self.port),
                    "AKOOL_SANDBOX_PORT": str(self.sandbox_port), "AKOOL_PG_PORT": str(self.pg_port),
                    "AKOOL_REDIS_PORT": str(self.redis_port), "AKOOL_SANDBOX_JOB_SECONDS": "2",
                    "AKOOL_EXAMPLE_POLL_SECONDS": "30",
                    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
                    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                    "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|akool_flows)\..*"})
        env.update(extra_env or {})
        self.output: list[str] = []
        self.proc = subprocess.Popen(["bash", str(REPO / "scripts" / "airflow-celery.sh")], env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + 420
        while not any("[akool] ready" in line for line in self.output):
            assert self.proc.poll() is None, "".join(self.output)[-4000:]
            assert time.monotonic() < deadline, "".join(self.output)[-4000:]
            time.sleep(0.5)
        import httpx

        # Generous: on a loaded 2-core machine seven Airflow processes share the CPU.
        self.http = httpx.Client(base_url=self.base, timeout=120,
                                 transport=httpx.HTTPTransport(retries=3))
        token = self.http.get("/auth/token").json()["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.output.append(line)

    def stop(self, keep: bool = False) -> None:
        """Stop every part; ``keep`` leaves $AIRFLOW_HOME (logs, data) for a look afterwards."""
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        if keep:
            print(f"kept {self.home}")
        else:
            shutil.rmtree(self.home, ignore_errors=True)

    def pg(self, sql: str, database: str = "postgres"):
        import sqlalchemy as sa

        pw = (self.home / "services" / "pg.password").read_text().strip()
        engine = sa.create_engine(f"postgresql://postgres:{pw}@127.0.0.1:{self.pg_port}/{database}",
                                  poolclass=sa.pool.NullPool)
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).all()

    def start_dag(self, dag_id: str, conf: dict | None = None) -> str:
        """Unpause and trigger ``dag_id`` (once parsed); returns the run id."""
        deadline = time.monotonic() + 300  # the DAG processor starts last and parses both bundles
        while self.http.get(f"/api/v2/dags/{dag_id}").status_code != 200:
            assert time.monotonic() < deadline, f"{dag_id} never parsed"
            time.sleep(1)
        assert self.http.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).status_code == 200
        run = self.http.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf or {}})
        assert run.status_code == 200, run.text
        return run.json()["dag_run_id"]

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 300) -> dict:
        import httpx

        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
            except httpx.TimeoutException:
                state = "unknown (API server busy)"
            if state in ("success", "failed"):
                return {"state": state, "run_id": run_id}
            assert time.monotonic() < deadline, f"{dag_id} still {state}"
            time.sleep(2)

    def run_dag(self, dag_id: str, conf: dict | None = None, timeout: float = 300) -> dict:
        return self.wait_run(dag_id, self.start_dag(dag_id, conf), timeout)

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1):
        r = self.http.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
                          params={"map_index": map_index, "deserialize": True})
        assert r.status_code == 200, r.text
        value = r.json()["value"]
        return json.loads(value) if isinstance(value, str) and value[:1] in "[{" else value

    def sandbox_stats(self) -> dict:
        return self.http.get(f"http://127.0.0.1:{self.sandbox_port}/_sandbox/stats").json()

    # --- what the bench measures and breaks --------------------------------------------------

    def processes(self, marker: str) -> list[Any]:
        """This deployment's processes whose command line holds ``marker`` (with their children)."""
        import psutil

        root = psutil.Process(self.proc.pid)
        found = [p for p in root.children(recursive=True) if _cmdline_has(p, marker)]
        tree = {p.pid: p for p in found}
        for p in found:
            for child in _children(p):
                tree.setdefault(child.pid, child)
        return list(tree.values())

    def kill(self, marker: str) -> int:
        """SIGKILL every process of a part (and its children): a machine losing it. The
        script's supervisor starts it again. Returns how many processes died."""
        procs = self.processes(marker)
        for p in procs:
            try:
                p.kill()
            except Exception:  # noqa: BLE001 - already gone
                pass
        return len(procs)

    def usage(self, marker: str) -> tuple[int, float]:
        """(RSS bytes, CPU seconds) of a part's processes."""
        rss, cpu = 0, 0.0
        for p in self.processes(marker):
            try:
                rss += p.memory_info().rss
                t = p.cpu_times()
                cpu += t.user + t.system
            except Exception:  # noqa: BLE001 - exited meanwhile
                pass
        return rss, cpu

    def sandbox(self, method: str, path: str, body: dict | None = None) -> Any:
        r = self.http.request(method, f"http://127.0.0.1:{self.sandbox_port}/_sandbox/{path}", json=body)
        r.raise_for_status()
        return r.json()

    def airflow_db(self, sql: str):
        return self.pg(sql, database="airflow")

    def task_states(self, dag_id: str, run_id: str) -> dict[str, int]:
        rows = self.airflow_db(f"SELECT coalesce(state, 'none'), count(*) FROM task_instance WHERE dag_id = '{dag_id}' "
                               f"AND run_id = '{run_id}' GROUP BY 1")
        return dict(rows)


def _cmdline_has(p: Any, marker: str) -> bool:
    try:
        return marker in " ".join(p.cmdline())
    except Exception:  # noqa: BLE001 - exited, or not ours to read
        return False


def _children(p: Any) -> list[Any]:
    try:
        return p.children(recursive=True)
    except Exception:  # noqa: BLE001
        return []
