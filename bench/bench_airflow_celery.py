"""The distributed deployment at the scale users run it, with parts killed on purpose.

Starts what `make airflow-celery` starts (Postgres, Redis, API server, scheduler, triggerer, two
Celery workers, DAG processor, sandbox; tests/airflow/deployment.py) and runs, one after another:

* ``batch``: a 5,000-row `AkoolBatchOperator` input (repeats spread over it) in 6 shards over
  both workers, webhooks on; one worker is SIGKILLed (with its task processes) mid-submission.
* ``webhooks``: N mapped deferrable moderation tasks completed by webhooks; the triggerer is
  SIGKILLed once 100+ tasks are deferred (the script's supervisor starts it again).
* ``polled``: the same N tasks without webhooks: the triggerer polls.
* ``faceswap``: mapped face-swap tasks (token exchange and face detection shared per machine).

Each prints its figures (DB connections, triggerer RSS and CPU, status calls per job, token
exchanges per task, creates/s, wall time vs job time) and checks that every task ended and every
distinct input was created exactly once. Figures also go to ``--json`` (one line per scenario).

    .venv/bin/python bench/bench_airflow_celery.py                    # everything, N=500
    .venv/bin/python bench/bench_airflow_celery.py --only batch --rows 5000
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "airflow"))

from deployment import Deployment  # noqa: E402

TRIGGERER, WORKER1 = "airflow triggerer", "worker1@"


class Sampler:
    """Every `every` seconds: Postgres connections (event store DB, all), deferred tasks, the
    triggerer's RSS and CPU, sandbox creates. `on_sample` may act (kill a part) on what it sees."""

    def __init__(self, d: Deployment, dag_id: str, every: float = 2.0, on_sample=None) -> None:
        self.d, self.dag_id, self.every, self.on_sample = d, dag_id, every, on_sample
        self.rows: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                counts = dict(self.d.pg("SELECT datname, count(*) FROM pg_stat_activity "
                                        "WHERE backend_type = 'client backend' GROUP BY datname"))
                deferred = self.d.airflow_db(f"SELECT count(*) FROM task_instance WHERE dag_id = '{self.dag_id}' "
                                             "AND state = 'deferred'")[0][0]
                rss, cpu = self.d.usage(TRIGGERER)
                stats = self.d.sandbox_stats()
                row = {"t": time.monotonic(), "store_conns": counts.get("akool", 0),
                       "all_conns": sum(counts.values()) - 1, "deferred": deferred, "trig_rss": rss,
                       "trig_cpu": cpu, "creates": stats["creates"]}
                self.rows.append(row)
                if self.on_sample is not None:
                    self.on_sample(row)
            except Exception as exc:  # noqa: BLE001 - a sample lost to a busy machine is not a result
                print(f"  (sample failed: {type(exc).__name__}: {exc})", flush=True)
            self._stop.wait(self.every)

    def peak(self, name: str) -> float:
        return max((r[name] for r in self.rows), default=0)


def creates_per_second(rows: list[dict]) -> float:
    """Creates over the window in which they happened (first to last sample that saw new ones)."""
    rises = [(a, r) for a, r in zip(rows, rows[1:]) if r["creates"] > a["creates"]]
    if not rises:
        return 0.0
    first, last = rises[0][0], rises[-1][1]
    return (last["creates"] - first["creates"]) / max(last["t"] - first["t"], 1e-9)


def finish(d: Deployment, name: str, dag_id: str, run_id: str, started: float, sampler: Sampler,
           job_seconds: float, tasks: int, extra: dict) -> dict:
    stats = d.sandbox_stats()
    states = d.task_states(dag_id, run_id)
    paths = stats.get("requests_by_path", {})
    creates = stats["creates"]
    base_rss = sampler.rows[0]["trig_rss"] if sampler.rows else 0
    peak_deferred = sampler.peak("deferred")
    cpu = [r["trig_cpu"] for r in sampler.rows]
    figures = {
        "scenario": name, "tasks": tasks, "wall_s": round(time.monotonic() - started, 1),
        "job_s": job_seconds, "task_states": states, "creates": creates,
        "duplicate_creates": len(stats.get("duplicate_creates", {})),
        "creates_per_s": round(creates_per_second(sampler.rows), 2),
        "status_calls": stats.get("polls"), "status_calls_per_job": round((stats.get("polls") or 0) / max(creates, 1), 2),
        "get_token": paths.get("/api/open/v3/getToken", 0),
        "face_detect": sum(n for p, n in paths.items() if "detect" in p),
        "store_conns_peak": sampler.peak("store_conns"), "all_conns_peak": sampler.peak("all_conns"),
        "all_conns_series": [r["all_conns"] for r in sampler.rows][::15],
        "deferred_peak": peak_deferred, "triggerer_rss_peak_mb": round(sampler.peak("trig_rss") / 2**20, 1),
        "triggerer_rss_per_deferred_kb": round(max(sampler.peak("trig_rss") - base_rss, 0) / max(peak_deferred, 1) / 1024, 1),
        "triggerer_cpu_s": round(max(cpu) - min(cpu), 1) if cpu else None,
        "scheduler_survived": "scheduler exited" not in "".join(d.output), **extra,
    }
    print(json.dumps(figures), flush=True)
    return figures


def scenario_deferred(d: Deployment, name: str, dag_id: str, tasks: int, job_seconds: float,
                      restart_triggerer: bool) -> dict:
    d.sandbox("POST", "reset")
    d.sandbox("POST", "config", {"job_seconds": job_seconds})
    killed: dict = {}

    def act(row: dict) -> None:
        if restart_triggerer and not killed and row["deferred"] >= 100:
            killed.update(at_deferred=row["deferred"], processes=d.kill(TRIGGERER))
            print(f"  triggerer SIGKILLed with {row['deferred']} tasks deferred", flush=True)

    started = time.monotonic()
    with Sampler(d, dag_id, on_sample=act) as sampler:
        run_id = d.start_dag(dag_id)
        run = d.wait_run(dag_id, run_id, timeout=3600)
    fig = finish(d, name, dag_id, run_id, started, sampler, job_seconds, tasks,
                 {"run_state": run["state"], "triggerer_killed": killed or None})
    assert run["state"] == "success" and fig["task_states"] == {"success": tasks}, fig
    assert fig["creates"] == tasks and fig["duplicate_creates"] == 0, fig
    return fig


#: Akool's docs: "If you do not return a status code value of 200, we will retry" (no schedule
#: given). The sandbox's own default gives up after 5 attempts within ~3 s; 5,000 jobs ending
#: within a minute send ~10,000 callbacks into one API-server process on 2 busy cores, and most
#: of those attempts timed out. A patient sender: 10 attempts, 1 s doubling, 30 s each.
PATIENT_CALLBACKS = {"webhook_max_attempts": 10, "webhook_retry_seconds": 1.0, "webhook_timeout": 30.0}


def scenario_batch(d: Deployment, rows: int, job_seconds: float, patient: bool) -> dict:
    d.sandbox("POST", "reset")
    d.sandbox("POST", "config", {"job_seconds": job_seconds, **(PATIENT_CALLBACKS if patient else {})})
    killed: dict = {}

    def act(row: dict) -> None:
        if not killed and row["creates"] >= rows // 4:
            killed.update(at_creates=row["creates"], processes=d.kill(WORKER1))
            print(f"  worker 1 SIGKILLed after {row['creates']} creates", flush=True)

    started = time.monotonic()
    dag_id = "akool_test_sharded_batch"
    with Sampler(d, dag_id, every=1.0, on_sample=act) as sampler:
        run_id = d.start_dag(dag_id)
        run = d.wait_run(dag_id, run_id, timeout=3600)
    data = d.home / "akool-data" / "sharded"
    if run["state"] != "success":
        print(f"  run {run['state']}: tasks {d.task_states(dag_id, run_id)}", flush=True)
    with open(data / "comments.csv", newline="") as f:
        texts = [r["content"] for r in csv.DictReader(f)]
    results = []
    for path in sorted(data.glob("comments.shard-*.akool-results.csv")):
        with open(path, newline="") as f:
            results += list(csv.DictReader(f))
    outcomes: dict[str, int] = {}
    for r in results:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    tries = d.airflow_db(f"SELECT map_index, try_number FROM task_instance WHERE dag_id = '{dag_id}' "
                         f"AND run_id = '{run_id}' AND task_id = 'moderate' ORDER BY map_index")
    fig = finish(d, "batch", dag_id, run_id, started, sampler, job_seconds, 6,
                 {"rows": len(texts), "distinct_rows": len(set(texts)), "result_rows": len(results),
                  "outcomes": outcomes, "tries_per_shard": [t for _, t in tries], "run_state": run["state"],
                  "worker_killed": killed or None, "patient_callbacks": patient,
                  "callbacks": d.sandbox("GET", "stats").get("webhook_attempts")})
    # A worker killed mid-flight can leave rows whose create was being written: they may exist, so
    # they are `uncertain` (the shard fails, saying so) and never sent again. Unless their job
    # calls back, the run cannot tell. What must hold: nothing paid twice, every distinct row
    # either created once or reported uncertain, and every input row in the results.
    uncertain_distinct = len({t for t, r in zip(texts, sorted(results, key=lambda r: int(r["input_index"])))
                              if r["outcome"] == "uncertain"})
    fig["uncertain_distinct_rows"] = uncertain_distinct
    print(f"  {uncertain_distinct} distinct row(s) uncertain; creates + uncertain = "
          f"{fig['creates'] + uncertain_distinct} of {fig['distinct_rows']} distinct", flush=True)
    assert fig["duplicate_creates"] == 0, fig
    assert fig["creates"] <= fig["distinct_rows"] <= fig["creates"] + uncertain_distinct, fig
    assert set(outcomes) <= {"completed", "uncertain"}, fig
    assert sorted(int(r["input_index"]) for r in results) == list(range(len(texts))), "a row is missing or twice"
    return fig


def scenario_faceswap(d: Deployment, tasks: int) -> dict:
    d.sandbox("POST", "reset")
    d.sandbox("POST", "config", {"job_seconds": 2})
    started = time.monotonic()
    with Sampler(d, "akool_test_faceswap_mapped", every=1.0) as sampler:
        run_id = d.start_dag("akool_test_faceswap_mapped")
        run = d.wait_run("akool_test_faceswap_mapped", run_id, timeout=3600)
    fig = finish(d, "faceswap", "akool_test_faceswap_mapped", run_id, started, sampler, 2, tasks,
                 {"run_state": run["state"]})
    assert run["state"] == "success" and fig["creates"] == tasks, fig
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", type=int, default=500, help="mapped deferrable tasks per scenario (500)")
    ap.add_argument("--rows", type=int, default=5000, help="rows of the sharded batch input (5000)")
    ap.add_argument("--faceswap-tasks", type=int, default=100)
    ap.add_argument("--job-seconds", type=float, default=180.0,
                    help="sandbox job time for the deferred scenarios: long enough that tasks pile up deferred")
    ap.add_argument("--only", default="batch,webhooks,polled,faceswap")
    ap.add_argument("--patient-callbacks", action="store_true",
                    help="the sandbox retries callbacks for minutes, not seconds (see PATIENT_CALLBACKS)")
    ap.add_argument("--keep", action="store_true", help="keep the deployment's home (logs) afterwards")
    ap.add_argument("--json", type=Path, help="append one JSON line of figures per scenario")
    args = ap.parse_args()
    only = args.only.split(",")
    env = {"AKOOL_TEST_DEFERRED_TASKS": str(args.tasks), "AKOOL_TEST_BATCH_ROWS": str(args.rows),
           "AKOOL_TEST_FACESWAP_TASKS": str(args.faceswap_tasks),
           # A SIGKILLed worker's tasks are failed (and retried) after this long without a heartbeat.
           "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "60"}
    print(f"starting the deployment ({time.strftime('%H:%M:%S')})", flush=True)
    d = Deployment(env)
    try:
        for name in only:
            print(f"== {name} ({time.strftime('%H:%M:%S')})", flush=True)
            if name == "batch":
                fig = scenario_batch(d, args.rows, 20.0, args.patient_callbacks)
            elif name == "webhooks":
                fig = scenario_deferred(d, name, "akool_test_many_deferred", args.tasks, args.job_seconds, True)
            elif name == "polled":
                fig = scenario_deferred(d, name, "akool_test_many_polled", args.tasks, args.job_seconds, False)
            elif name == "faceswap":
                fig = scenario_faceswap(d, args.faceswap_tasks)
            else:
                raise SystemExit(f"--only: unknown scenario {name!r}")
            if args.json:
                with args.json.open("a") as f:
                    f.write(json.dumps(fig) + "\n")
    finally:
        d.stop(keep=args.keep)


if __name__ == "__main__":
    main()
