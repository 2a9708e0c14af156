"""Task processes on one machine share one getToken exchange per connection (Celery and the
LocalExecutor start a new process per task try, so an in-process cache does not reach them)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

GET_TOKEN = "/api/open/v3/getToken"

# What a task does with the hook: a blocking client, one authenticated call. DEBUG logging so a
# token that reached any log line would show up in the output.
TASK = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
from akool_flows.airflow.hooks import AkoolHook
with AkoolHook("akool_default").get_client() as client:
    print("balance", client.credit_info())
"""


def _exchanges(sb) -> int:
    return sb.stats()["requests_by_path"].get(GET_TOKEN, 0)


def _tasks(n: int, state: Path) -> list[subprocess.CompletedProcess]:
    env = {**os.environ, "AKOOL_FLOWS_STATE_DIR": str(state)}
    procs = [subprocess.Popen([sys.executable, "-c", TASK], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(n)]
    done = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()[-3000:]
        done.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return done


def _token_file(state: Path) -> Path:
    (path,) = (state / "tokens").glob("*.json")
    return path


@pytest.mark.slow
def test_task_processes_started_together_exchange_the_token_once(airflow, tmp_path):
    sb = airflow
    state = tmp_path / "state"
    before = _exchanges(sb)
    runs = _tasks(4, state)
    assert _exchanges(sb) - before == 1
    path = _token_file(state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE((state / "tokens").stat().st_mode) == 0o700
    import json

    token = json.loads(path.read_text())["token"]
    for r in runs:
        assert token.encode() not in r.stdout + r.stderr
        assert sb.client_secret.encode() not in r.stdout + r.stderr

    # Akool revokes the token: the next task gets 1101, drops the file's token, exchanges once more,
    # and the task after it uses the new one.
    sb._state.tokens.discard(token)
    runs = _tasks(1, state)
    assert _exchanges(sb) - before == 2
    renewed = json.loads(path.read_text())["token"]
    assert renewed != token and renewed.encode() not in runs[0].stdout + runs[0].stderr
    _tasks(1, state)
    assert _exchanges(sb) - before == 2


@pytest.mark.slow
def test_a_token_file_readable_by_others_is_ignored(airflow, tmp_path):
    sb = airflow
    state = tmp_path / "state"
    before = _exchanges(sb)
    _tasks(1, state)
    path = _token_file(state)
    os.chmod(path, 0o644)  # someone loosened it: it may have been read or replaced, do not trust it
    _tasks(1, state)
    assert _exchanges(sb) - before == 2
    assert stat.S_IMODE(_token_file(state).stat().st_mode) == 0o600  # rewritten private
