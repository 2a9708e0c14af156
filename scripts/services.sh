#!/usr/bin/env bash
# Postgres and Redis for the distributed Airflow setup (`make airflow-celery`) and its tests:
# private instances on loopback ports, state under one directory, passwords generated there
# (0600), nothing of the machine's own services touched.
#
#   scripts/services.sh ensure                      install postgresql + redis-server if missing (apt, root)
#   scripts/services.sh start DIR PG_PORT REDIS_PORT start both; prints the URLs as shell assignments
#   scripts/services.sh stop DIR                    stop both
#   scripts/services.sh status DIR                  exit 0 when both answer
set -euo pipefail

pg_bin() {
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [[ -n "$d" && -x "$d/pg_ctl" ]]; then echo "$d"; return; fi
  command -v pg_ctl >/dev/null && dirname "$(command -v pg_ctl)" && return
  return 1
}

as_pg() {
  # Postgres refuses to run as root: run its tools as the postgres user when we are root.
  if [[ "$(id -u)" == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure() {
  local missing=()
  pg_bin >/dev/null || missing+=(postgresql)
  command -v redis-server >/dev/null || missing+=(redis-server)
  if (( ${#missing[@]} )); then
    echo "[services] installing ${missing[*]}" >&2
    if [[ "$(id -u)" != 0 ]]; then echo "[services] need root to apt-get install ${missing[*]}" >&2; exit 1; fi
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
  fi
}

secret() { python3 -c 'import secrets; print(secrets.token_hex(16))'; }

start() {
  local dir="$1" pg_port="$2" redis_port="$3" bin
  bin="$(pg_bin)" || { echo "[services] postgres not installed: run scripts/services.sh ensure" >&2; exit 1; }
  mkdir -p "$dir"
  chmod 711 "$dir"  # the postgres user must reach its data directory below
  (umask 077; [[ -f "$dir/pg.password" ]] || secret > "$dir/pg.password")
  (umask 077; [[ -f "$dir/redis.password" ]] || secret > "$dir/redis.password")
  if [[ ! -d "$dir/pg/data" ]]; then
    mkdir -p "$dir/pg"
    install -m 600 "$dir/pg.password" "$dir/pg/pwfile"
    [[ "$(id -u)" == 0 ]] && chown -R postgres "$dir/pg"
    as_pg "$bin/initdb" -D "$dir/pg/data" -U postgres --pwfile="$dir/pg/pwfile" \
      --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 >"$dir/pg/initdb.log" 2>&1 \
      || { echo "[services] initdb failed (the postgres user must be able to traverse $dir's parents):" >&2
           cat "$dir/pg/initdb.log" >&2; exit 1; }
    rm -f "$dir/pg/pwfile"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$dir/pg/data" status >/dev/null 2>&1; then
    # Default max_connections (100): the point of the shared trigger store is to fit in it.
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 start \
      -o "-p $pg_port -k $dir/pg -c listen_addresses=127.0.0.1" >/dev/null
  fi
  local pw; pw="$(cat "$dir/pg.password")"
  for db in airflow akool; do
    PGPASSWORD="$pw" "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
      || PGPASSWORD="$pw" "$bin/psql" -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE $db"
  done
  if ! redis-cli -p "$redis_port" -a "$(cat "$dir/redis.password")" --no-auth-warning ping >/dev/null 2>&1; then
    (umask 077; printf 'port %s\nbind 127.0.0.1\ndaemonize yes\ndir %s\npidfile %s/redis.pid\nlogfile %s/redis.log\nsave ""\nappendonly no\nrequirepass %s\n' \
      "$redis_port" "$dir" "$dir" "$dir" "$(cat "$dir/redis.password")" > "$dir/redis.conf")
    redis-server "$dir/redis.conf"
    for _ in $(seq 1 50); do
      redis-cli -p "$redis_port" -a "$(cat "$dir/redis.password")" --no-auth-warning ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  fi
  echo "PG_URL=postgresql://postgres:$pw@127.0.0.1:$pg_port"
  echo "REDIS_URL=redis://:$(cat "$dir/redis.password")@127.0.0.1:$redis_port/0"
}

stop() {
  local dir="$1" bin
  if bin="$(pg_bin)" && [[ -d "$dir/pg/data" ]]; then
    as_pg "$bin/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ -f "$dir/redis.pid" ]]; then kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; fi
}

case "${1:-}" in
  ensure) ensure ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) sed -n '2,10p' "$0" >&2; exit 2 ;;
esac
