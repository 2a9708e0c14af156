# Shared by scripts/airflow-dev.sh and scripts/airflow-celery.sh (sourced, not run).
# Start parts in order with readiness checks, log each to its own 0600 file, and when a part
# dies say which one, show its last log lines, restart it (a few times), else stop everything.

# The preamble both scripts share: the checkout (found from this file, so sourcing it comes
# first), its venv, the ports, and $AIRFLOW_HOME with a folder for the parts' logs.
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$REPO/.venv}"
PY="$VENV/bin/python"
export PATH="$VENV/bin:$PATH"
PORT="${AIRFLOW_PORT:-8080}"
SANDBOX_PORT="${AKOOL_SANDBOX_PORT:-8765}"

use_airflow_home() {  # use_airflow_home DIR MODE: $AIRFLOW_HOME (default $REPO/DIR) made, chmod MODE; LOG_DIR
  export AIRFLOW_HOME="${AIRFLOW_HOME:-$REPO/$1}"
  mkdir -p "$AIRFLOW_HOME"
  chmod "$2" "$AIRFLOW_HOME"
  LOG_DIR="$AIRFLOW_HOME/logs/parts"
  mkdir -p "$LOG_DIR"
}

declare -A PART_CMD PART_PID PART_RESTARTS
PART_ORDER=()
MAX_RESTARTS="${AKOOL_MAX_RESTARTS:-3}"
# Without it Python block-buffers output to a file: a dead part's log would end long before it died.
export PYTHONUNBUFFERED=1

log() { echo "[akool] $*" >&2; }

start_part() {  # start_part NAME CMD...: run CMD in the background, output to $LOG_DIR/NAME.log
  local name="$1"; shift
  PART_CMD[$name]="$(printf '%q ' "$@")"
  [[ -n "${PART_RESTARTS[$name]:-}" ]] || { PART_RESTARTS[$name]=0; PART_ORDER+=("$name"); }
  # umask 077: logs can quote configuration; nobody else on the machine reads them.
  (umask 077; exec bash -c "exec ${PART_CMD[$name]}" >>"$LOG_DIR/$name.log" 2>&1) &
  PART_PID[$name]=$!
}

wait_http() {  # wait_http NAME URL SECONDS: until URL answers 2xx, or fail naming the part
  local name="$1" url="$2" seconds="$3" i
  for ((i = 0; i < seconds * 5; i++)); do
    if "$PY" -c "import sys,urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url" 2>/dev/null; then
      log "$name ready ($url)"; return 0
    fi
    if ! kill -0 "${PART_PID[$name]}" 2>/dev/null; then
      log "$name exited while starting; last lines of $LOG_DIR/$name.log:"; tail -n 20 "$LOG_DIR/$name.log" >&2
      return 1
    fi
    sleep 0.2
  done
  log "$name not ready after ${seconds}s; last lines of $LOG_DIR/$name.log:"; tail -n 20 "$LOG_DIR/$name.log" >&2
  return 1
}

stop_parts() {
  local name i
  for ((i = ${#PART_ORDER[@]} - 1; i >= 0; i--)); do
    name="${PART_ORDER[$i]}"; kill "${PART_PID[$name]}" 2>/dev/null || true
  done
  for name in "${PART_ORDER[@]}"; do wait "${PART_PID[$name]}" 2>/dev/null || true; done
}

supervise() {  # watch every part; restart one that died, up to MAX_RESTARTS times each
  local name rc
  while sleep 2; do
    for name in "${PART_ORDER[@]}"; do
      kill -0 "${PART_PID[$name]}" 2>/dev/null && continue
      # `|| rc=$?`: under the scripts' `set -e` a bare failing `wait` (137 after a SIGKILL)
      # would end the whole deployment instead of restarting the part.
      rc=0; wait "${PART_PID[$name]}" 2>/dev/null || rc=$?
      log "$name exited with status $rc$( ((rc == 137)) && echo ' (killed: SIGKILL, often the OOM killer)'); last lines of $LOG_DIR/$name.log:"
      tail -n 10 "$LOG_DIR/$name.log" >&2
      if ((PART_RESTARTS[$name] >= MAX_RESTARTS)); then
        log "$name died $((PART_RESTARTS[$name] + 1)) times; stopping everything"; return 1
      fi
      PART_RESTARTS[$name]=$((PART_RESTARTS[$name] + 1))
      log "restarting $name (restart ${PART_RESTARTS[$name]} of $MAX_RESTARTS)"
      eval "start_part $name ${PART_CMD[$name]}"
    done
  done
}

import_connection() {  # import_connection JSON_FILE: import, then remove the file (it holds secrets)
  airflow connections import --overwrite "$1" >/dev/null
  rm -f "$1"
}

load_dev_secrets() {  # sandbox credentials and the webhook path token: generated once, 0600
  local secrets="$AIRFLOW_HOME/akool-dev.env"
  if [[ ! -f "$secrets" ]]; then
    (umask 077 && "$PY" - > "$secrets" <<'PYEOF'
import secrets
print(f"AKOOL_SANDBOX_CLIENT_ID={secrets.token_hex(12)}")
print(f"AKOOL_SANDBOX_CLIENT_SECRET={secrets.token_urlsafe(18)[:24]}")
print(f"AKOOL_SANDBOX_TOKEN={secrets.token_urlsafe(32)}")
print(f"AKOOL_SANDBOX_API_KEY={secrets.token_urlsafe(32)}")
print(f"AIRFLOW__AKOOL__WEBHOOK_PATH_TOKEN={secrets.token_urlsafe(32)}")
PYEOF
    )
  fi
  set -a
  # shellcheck disable=SC1090
  . "$secrets"
  set +a
}

write_connection() {  # write_connection FILE DESCRIPTION: the akool_default connection (0600)
  (umask 077 && "$PY" - "$1" "$2" <<PYEOF
import json, os, sys
conn = {"conn_type": "akool", "description": sys.argv[2],
        "host": "http://127.0.0.1:$SANDBOX_PORT",
        "login": os.environ["AKOOL_SANDBOX_CLIENT_ID"], "password": os.environ["AKOOL_SANDBOX_CLIENT_SECRET"],
        "extra": json.dumps({"detect_url": "http://127.0.0.1:$SANDBOX_PORT/detect",
                             "webhook_url": "http://127.0.0.1:$PORT/akool/webhook/"
                                            + os.environ["AIRFLOW__AKOOL__WEBHOOK_PATH_TOKEN"],
                             "webhook_store_url": os.environ["AIRFLOW__AKOOL__WEBHOOK_STORE_URL"]})}
json.dump({"akool_default": conn}, open(sys.argv[1], "w"))
PYEOF
  )
}

start_sandbox() {
  start_part sandbox akool-flows sandbox --host 127.0.0.1 --port "$SANDBOX_PORT" \
    --job-seconds "${AKOOL_SANDBOX_JOB_SECONDS:-8}"
  wait_http sandbox "http://127.0.0.1:$SANDBOX_PORT/_sandbox/health" 60
}

start_core_parts() {  # sandbox, then API server (waited for), scheduler, triggerer: both setups, in order
  cd "$AIRFLOW_HOME"  # not the repo: its *.egg-info would make Airflow see the provider twice
  start_sandbox
  start_part api-server airflow api-server
  wait_http api-server "http://127.0.0.1:$PORT/api/v2/monitor/health" 180
  start_part scheduler airflow scheduler --skip-serve-logs
  start_part triggerer airflow triggerer --skip-serve-logs
}

airflow_env() {  # what both setups share: local-only API server, every user admin, the example DAGs
  export AIRFLOW__CORE__DAGS_FOLDER="${AIRFLOW__CORE__DAGS_FOLDER:-$REPO/dags}"
  export AIRFLOW__CORE__LOAD_EXAMPLES=False
  export AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager
  export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
  export AIRFLOW__CORE__TEST_CONNECTION=Enabled
  export AIRFLOW__API__HOST=127.0.0.1
  export AIRFLOW__API__PORT="$PORT"
  export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
  export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
  export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
  export AKOOL_EXAMPLE_POLL_SECONDS="${AKOOL_EXAMPLE_POLL_SECONDS:-3}"
  export AKOOL_EXAMPLE_DATA_DIR="$AIRFLOW_HOME/akool-data"
}
