"""Real Airflow 3 for the provider tests: one temp AIRFLOW_HOME and SQLite metadata DB per
session, the example DAGs plus test DAGs as two DAG bundles, and a sandbox server over a
real socket behind the ``akool_default`` connection (an AIRFLOW_CONN_ JSON variable).

Airflow reads its configuration when first imported, so the environment is set here, at
import time, before any test module imports Airflow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

# Shared with the deployment module (which the bench imports without this conftest).
from deployment import EXAMPLE_DAGS, REPO, TEST_DAGS, _free_port  # noqa: F401

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")

AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="akool-airflow-home-"))


def _airflow_env() -> dict[str, str]:
    bundles = [
        {"name": "dags-folder", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(EXAMPLE_DAGS)}},
        {"name": "akool-test-dags", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
         "kwargs": {"path": str(TEST_DAGS)}},
    ]
    return {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{AIRFLOW_HOME / 'airflow.db'}",
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(bundles),
        "AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES_REGEXP": r"(airflow|akool_flows)\..*",
        # Example DAGs poll every few seconds by default; the sandbox finishes jobs in < 1 s.
        "AKOOL_EXAMPLE_POLL_SECONDS": "0.3",
        "AKOOL_EXAMPLE_DATA_DIR": str(AIRFLOW_HOME / "akool-data"),
        # Token cache files and default ledgers of the session, not the user's own.
        "AKOOL_FLOWS_STATE_DIR": str(AIRFLOW_HOME / "akool-state"),
    }


os.environ.update(_airflow_env())


def _migrated_template() -> Path:
    """A migrated metadata DB, cached per Airflow version (``airflow db migrate`` takes ~8 s)."""
    from importlib.metadata import version

    cache = Path(tempfile.gettempdir()) / f"akool-airflow-{version('apache-airflow-core')}-template.db"
    if not cache.exists():
        home = Path(tempfile.mkdtemp(prefix="akool-airflow-migrate-"))
        env = {**os.environ, "AIRFLOW_HOME": str(home),
               "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
        subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], env=env, check=True, capture_output=True,
                       timeout=240)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        shutil.copyfile(home / "airflow.db", tmp)
        os.replace(tmp, cache)
        shutil.rmtree(home, ignore_errors=True)
    return cache


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """The session's migrated metadata DB (and Airflow's ORM configured against it)."""
    db = AIRFLOW_HOME / "airflow.db"
    if not db.exists():
        shutil.copyfile(_migrated_template(), db)
    from airflow import settings

    settings.configure_orm()
    return db


@pytest.fixture(scope="session")
def sandbox():
    """One sandbox for the session: fast jobs, client-credential auth."""
    from akool_flows.sandbox import Sandbox, SandboxConfig

    with Sandbox(SandboxConfig(queue_seconds=0.05, job_seconds=0.4, latency=0.0)) as sb:
        yield sb


def conn_json(sb, **extra) -> str:
    return json.dumps({"conn_type": "akool", "host": sb.base_url, "login": sb.client_id,
                       "password": sb.client_secret, "extra": {"detect_url": sb.detect_url, **extra}})


@pytest.fixture
def akool_conn(sandbox, monkeypatch):
    """``akool_default`` pointing at the sandbox; the sandbox's counters and faults reset."""
    sandbox.reset()
    # Face detections are shared by the tasks of a machine for an hour: each test counts its own.
    shutil.rmtree(Path(os.environ["AKOOL_FLOWS_STATE_DIR"]) / "faces", ignore_errors=True)
    monkeypatch.setenv("AIRFLOW_CONN_AKOOL_DEFAULT", conn_json(sandbox))
    yield sandbox
    sandbox.faults.clear()


@pytest.fixture
def airflow(airflow_db, akool_conn):
    """Airflow ready to run DAGs against the sandbox."""
    return akool_conn


class StateStore(dict):
    """The ``task_state_store`` accessor's interface, in memory: what survives between the tries
    of one task instance when a test calls ``execute`` directly."""

    def get(self, key, default=None):
        return super().get(key, default)

    def set(self, key, value, **_):
        self[key] = value

    def delete(self, key):
        self.pop(key, None)


def load_dag(dag_id: str):
    """Parse the bundle that holds `dag_id` and return the DAG object."""
    from airflow.dag_processing.dagbag import DagBag

    for folder in (EXAMPLE_DAGS, TEST_DAGS):
        bag = DagBag(dag_folder=str(folder))
        if dag_id in bag.dags:
            return bag.dags[dag_id]
        assert not bag.import_errors, bag.import_errors
    raise KeyError(dag_id)


def task_states(dag_run) -> dict[str, str]:
    """{task_id or task_id[map_index]: state} of a finished DAG run."""
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        return {(ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"): str(ti.state)
                for ti in tis}


def xcom(dag_run, task_id: str, key: str = "return_value", map_index: int = -1):
    """An XCom value of a task in `dag_run`."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        row = session.execute(select(XComModel.value).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id,
            XComModel.task_id == task_id, XComModel.key == key, XComModel.map_index == map_index)).first()
    if row is None:
        return None
    value = row[0]
    if isinstance(value, str):
        # Older rows hold JSON text; the JSON column type hands back decoded values.
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def xcom_writes(dag_run) -> dict[str, list[str]]:
    """{task_id or task_id[map_index]: sorted XCom keys} a DAG run wrote (each key is one write)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    out: dict[str, list[str]] = {}
    with create_session() as session:
        rows = session.execute(select(XComModel.task_id, XComModel.map_index, XComModel.key).where(
            XComModel.dag_id == dag_run.dag_id, XComModel.run_id == dag_run.run_id)).all()
    for task_id, map_index, key in rows:
        out.setdefault(task_id if map_index < 0 else f"{task_id}[{map_index}]", []).append(key)
    return {k: sorted(v) for k, v in out.items()}


@pytest.fixture(scope="session")
def services():
    """Private Postgres (default max_connections) and Redis on loopback ports, via
    ``scripts/services.sh`` (what ``make airflow-celery`` uses): ``{"PG_URL": ..., "REDIS_URL": ...}``."""
    script = REPO / "scripts" / "services.sh"
    if shutil.which("redis-server") is None or not list(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl")):
        pytest.skip("postgres/redis not installed: run `bash scripts/services.sh ensure` (make test does)")
    state = Path(tempfile.mkdtemp(prefix="akool-services-"))
    started = subprocess.run(["bash", str(script), "start", str(state), str(_free_port()), str(_free_port())],
                             capture_output=True, text=True, timeout=180)
    assert started.returncode == 0, started.stderr[-2000:]
    urls = dict(line.split("=", 1) for line in started.stdout.split() if "=" in line)
    yield urls
    subprocess.run(["bash", str(script), "stop", str(state)], capture_output=True, timeout=60)
    shutil.rmtree(state, ignore_errors=True)
