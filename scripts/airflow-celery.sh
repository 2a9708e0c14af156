#!/usr/bin/env bash
# `make airflow-celery`: the distributed setup on one machine. Postgres (metadata DB, Celery
# results, webhook event store) and Redis (broker) as private loopback instances
# (scripts/services.sh), then in order, each waiting for the previous to be ready: the Akool
# sandbox, the API server (UI + webhook receiver), scheduler, triggerer, two Celery workers,
# DAG processor last (so no DAG runs before the API server that tasks report to is up).
# A part that dies is named with its last log lines and restarted (AKOOL_MAX_RESTARTS, 3).
#
#   UI: http://127.0.0.1:${AIRFLOW_PORT:-8080}   logs: $AIRFLOW_HOME/logs/parts/<part>.log (0600)
#   State: $AIRFLOW_HOME (default ./airflow-celery-home). Ctrl-C / SIGTERM stops everything.
set -euo pipefail

# shellcheck source=scripts/airflow-lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/airflow-lib.sh"
# 711: the postgres user must reach services/pg below; nobody else may list what is here, and
# every file with a secret is 0600.
use_airflow_home airflow-celery-home 711
PG_PORT="${AKOOL_PG_PORT:-5433}"
REDIS_PORT="${AKOOL_REDIS_PORT:-6380}"
WORKERS="${AKOOL_CELERY_WORKERS:-2}"
CONCURRENCY="${AKOOL_CELERY_CONCURRENCY:-8}"

bash "$REPO/scripts/services.sh" ensure
eval "$(bash "$REPO/scripts/services.sh" start "$AIRFLOW_HOME/services" "$PG_PORT" "$REDIS_PORT")"
cleanup() {
  stop_parts
  bash "$REPO/scripts/services.sh" stop "$AIRFLOW_HOME/services"
}
trap cleanup EXIT
trap 'exit 143' INT TERM
log "postgres on 127.0.0.1:$PG_PORT, redis on 127.0.0.1:$REDIS_PORT"

load_dev_secrets
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${PG_URL/postgresql:/postgresql+psycopg2:}/airflow"
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CELERY__BROKER_URL="$REDIS_URL"
export AIRFLOW__CELERY__RESULT_BACKEND="db+${PG_URL}/airflow"
export AIRFLOW__CELERY__WORKER_CONCURRENCY="$CONCURRENCY"
export AIRFLOW__AKOOL__WEBHOOK_STORE_URL="$PG_URL/akool"
airflow_env
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="${AKOOL_DAGS_PAUSED:-True}"
export AIRFLOW__CORE__PARALLELISM="${AIRFLOW__CORE__PARALLELISM:-64}"
export AIRFLOW__API_AUTH__JWT_SECRET="${AIRFLOW__API_AUTH__JWT_SECRET:-$(cat "$AIRFLOW_HOME/services/pg.password")-jwt}"

log "metadata DB (postgres) and the akool_default connection"
airflow db migrate > "$LOG_DIR/db-migrate.log" 2>&1 || { tail -n 30 "$LOG_DIR/db-migrate.log" >&2; exit 1; }
write_connection "$AIRFLOW_HOME/akool-connections.json" "The local Akool sandbox (make airflow-celery)"
import_connection "$AIRFLOW_HOME/akool-connections.json"

start_core_parts
for i in $(seq 1 "$WORKERS"); do
  start_part "worker-$i" airflow celery worker --skip-serve-logs --celery-hostname "worker$i@%h" \
    --concurrency "$CONCURRENCY" --without-gossip --without-mingle
done
start_part dag-processor airflow dag-processor
log "ready: UI http://127.0.0.1:$PORT; parts: ${PART_ORDER[*]}; logs in $LOG_DIR"
supervise
