#!/usr/bin/env bash
# `make airflow`: a local Airflow 3 (the parts of `airflow standalone`: API server + UI,
# scheduler with the LocalExecutor, DAG processor, triggerer) with the Akool sandbox behind
# the `akool_default` connection, the example DAGs from dags/, and the webhook receiver
# mounted at /akool. The parts run without their log servers (`--skip-serve-logs`): those
# bind every interface, and the API server reads the task logs from $AIRFLOW_HOME/logs.
#
#   UI:       http://127.0.0.1:${AIRFLOW_PORT:-8080}   (local only; every user is admin)
#   Sandbox:  http://127.0.0.1:${AKOOL_SANDBOX_PORT:-8765} (jobs finish ~8 s after creation)
#   State:    $AIRFLOW_HOME (default ./airflow-home): metadata DB, logs, ledgers, sample data
#
# Everything binds to 127.0.0.1. Ctrl-C stops Airflow and the sandbox.
set -euo pipefail

# shellcheck source=scripts/airflow-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/airflow-lib.sh"
use_airflow_home airflow-home 700
load_dev_secrets

airflow_env
export AIRFLOW__CORE__PLUGINS_FOLDER="$REPO/plugins"
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
# Unpaused on arrival: akool_bulk_moderation picks up dropped files every 15 minutes and
# akool_moderation_results_ready runs on its asset events without a click. The DAG processor
# starts last, once the API server (which tasks report to) answers, so nothing fires early.
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__AKOOL__WEBHOOK_STORE_URL="sqlite:///$AIRFLOW_HOME/akool-webhooks.sqlite"

trap stop_parts EXIT
trap 'exit 143' INT TERM

echo "[akool] metadata DB and the akool_default connection"
airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1
write_connection "$AIRFLOW_HOME/akool-connections.json" "The local Akool sandbox (make airflow)"
import_connection "$AIRFLOW_HOME/akool-connections.json"  # and removed: it holds the secrets

# A sample file for akool_bulk_moderation: it is picked up on the DAG's next run.
INCOMING="$AKOOL_EXAMPLE_DATA_DIR/moderation/incoming"
mkdir -p "$INCOMING"
if [[ -f "$REPO/notebooks/data/comments.csv" && ! -e "$INCOMING/comments.csv" ]]; then
  "$PY" - "$REPO/notebooks/data/comments.csv" "$INCOMING/comments.csv" <<'EOF'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
with open(sys.argv[2], "w", newline="") as out:
    w = csv.DictWriter(out, fieldnames=["id", "text", "channel"])
    w.writeheader()
    for r in rows:
        w.writerow({"id": r["comment_id"], "text": r["comment"], "channel": r.get("channel", "")})
EOF
fi

cat <<EOF
[akool] Airflow UI: http://127.0.0.1:$PORT  (DAGs tagged "akool"; unpause one and trigger it)
[akool] Drop CSVs with a "text" column into $INCOMING for akool_bulk_moderation.
[akool] Webhooks: the sandbox calls http://127.0.0.1:$PORT/akool/webhook/<token>; deferred tasks finish from them.
EOF
start_core_parts
start_part dag-processor airflow dag-processor
log "ready: UI http://127.0.0.1:$PORT; logs in $LOG_DIR/<part>.log"
supervise
