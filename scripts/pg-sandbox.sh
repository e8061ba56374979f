#!/usr/bin/env bash
# Throwaway PostgreSQL 15 + pgAudit cluster for capturing sample audit logs.
#
# Usage: scripts/pg-sandbox.sh start|stop|status|env DIR
#
#   start  initdb DIR/data (first time only), configure pgAudit + logging, start
#          the server and wait until it accepts connections. No-op if running.
#   stop   fast shutdown (pg_ctl -m fast). Safe to call repeatedly.
#   status exit 0 if the sandbox server is running, 3 otherwise.
#   env    print shell exports for clients (eval "$(scripts/pg-sandbox.sh env DIR)").
#
# Layout under DIR:
#   DIR/data         cluster (owned by the server OS user)
#   DIR/log          postgresql, postgresql.csv, postgresql.json (logging_collector)
#   DIR/.s.PGSQL.N   unix socket (only the `postgres` superuser may use it: trust)
#   DIR/capture.env  the logging settings in effect (KEY='value' lines)
#   DIR/pg_ctl.log   server stderr before the logging collector takes over
#
# Network: listens on 127.0.0.1 only, port $ROLEWATCH_PG_PORT or a free one.
# When run as root the server runs as the `postgres` OS user (initdb refuses
# root); DIR is chowned to that user. Otherwise it runs as the invoking user.
set -euo pipefail

PG_MAJOR=15
PG_BIN=${ROLEWATCH_PG_BIN:-/usr/lib/postgresql/${PG_MAJOR}/bin}
# Keep this literally in sync with what gets written into capture.env.
# ROLEWATCH_PG_LOG_LINE_PREFIX overrides it (tests use a prefix with %e, the SQLSTATE).
LOG_LINE_PREFIX=${ROLEWATCH_PG_LOG_LINE_PREFIX:-'%m [%p] %q%u@%d %r %a %c '}
PGAUDIT_LOG='read, write, ddl, role, function, misc, misc_set'

die() { echo "pg-sandbox: $*" >&2; exit 1; }

usage() { echo "usage: $0 start|stop|status|env DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
cmd=$1
if [[ $cmd == start ]]; then
  mkdir -p "$2"
elif [[ ! -d $2 ]]; then
  # stop/status/env on a missing sandbox: nothing is running there.
  case $cmd in
    stop) exit 0 ;;
    status) echo stopped; exit 3 ;;
    *) echo "pg-sandbox: no sandbox in $2" >&2; exit 1 ;;
  esac
fi
DIR=$(cd "$2" && pwd -P)
DATA=$DIR/data
LOGDIR=$DIR/log
PORT_FILE=$DIR/port

[[ -x $PG_BIN/pg_ctl ]] || die "PostgreSQL $PG_MAJOR binaries not found in $PG_BIN (run scripts/install-deps.sh)"

# Run a command as the server's OS user.
if [[ $(id -u) -eq 0 ]]; then
  as_server() { runuser -u postgres -- "$@"; }
  SERVER_USER=postgres
else
  as_server() { "$@"; }
  SERVER_USER=$(id -un)
fi

is_running() {
  [[ -f $DATA/PG_VERSION ]] && as_server "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_is_free() {
  python3 - "$1" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

pick_port() {
  if [[ -n ${ROLEWATCH_PG_PORT:-} ]]; then
    port_is_free "$ROLEWATCH_PG_PORT" || die "port $ROLEWATCH_PG_PORT (ROLEWATCH_PG_PORT) is in use"
    echo "$ROLEWATCH_PG_PORT"
    return
  fi
  local p
  for _ in $(seq 1 50); do
    p=$(( 20000 + RANDOM % 20000 ))
    if port_is_free "$p"; then echo "$p"; return; fi
  done
  die "could not find a free TCP port on 127.0.0.1"
}

write_config() {
  local port=$1
  # Appended after the initdb defaults, so these values win. pg_hba.conf is
  # replaced wholesale (initdb ran with -A trust only to avoid a pw prompt).
  cat >>"$DATA/postgresql.conf" <<CONF

# ---- rolewatch sandbox settings ----
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$DIR'
password_encryption = 'scram-sha-256'

shared_preload_libraries = 'pgaudit'
pgaudit.log = '$PGAUDIT_LOG'
pgaudit.log_relation = on
pgaudit.log_rows = on
pgaudit.log_parameter = on
pgaudit.log_catalog = off
pgaudit.log_statement_once = off

log_connections = on
log_disconnections = on
logging_collector = on
log_destination = 'stderr,csvlog,jsonlog'
log_directory = '$LOGDIR'
log_filename = 'postgresql'
log_rotation_age = 0
log_rotation_size = 0
log_truncate_on_rotation = off
log_timezone = 'UTC'
log_line_prefix = '$LOG_LINE_PREFIX'

# Throwaway cluster: trade durability for speed.
fsync = off
synchronous_commit = off
full_page_writes = off
CONF

  cat >"$DATA/pg_hba.conf" <<HBA
# TYPE  DATABASE  USER      ADDRESS         METHOD
local   all       postgres                  trust
host    all       all       127.0.0.1/32    scram-sha-256
HBA
}

write_capture_env() {
  local port=$1 pg_version pgaudit_version
  pg_version=$("$PG_BIN/postgres" --version | awk '{print $3}')
  pgaudit_version=$(dpkg-query -W -f='${Version}' "postgresql-${PG_MAJOR}-pgaudit" 2>/dev/null || echo unknown)
  # Values are single-quoted shell strings (safe to `source`); note the
  # trailing space inside LOG_LINE_PREFIX is significant.
  cat >"$DIR/capture.env" <<ENV
PG_VERSION='$pg_version'
PGAUDIT_PACKAGE_VERSION='$pgaudit_version'
LOG_LINE_PREFIX='$LOG_LINE_PREFIX'
LOG_TIMEZONE='UTC'
LOG_DESTINATION='stderr,csvlog,jsonlog'
LOG_FILES='postgresql postgresql.csv postgresql.json'
PGAUDIT_LOG='$PGAUDIT_LOG'
PGAUDIT_LOG_RELATION='on'
PGAUDIT_LOG_ROWS='on'
PGAUDIT_LOG_PARAMETER='on'
PGAUDIT_LOG_CATALOG='off'
PGAUDIT_LOG_STATEMENT_ONCE='off'
LOG_CONNECTIONS='on'
LOG_DISCONNECTIONS='on'
PGPORT='$port'
ENV
}

start() {
  if is_running; then
    return 0
  fi
  if [[ $(id -u) -eq 0 ]]; then
    chown "$SERVER_USER": "$DIR"
  fi
  chmod 0755 "$DIR"   # clients (root or another user) must reach the socket

  local port
  if [[ ! -f $DATA/PG_VERSION ]]; then
    rm -rf "$DATA"
    as_server mkdir -p "$LOGDIR"
    as_server "$PG_BIN/initdb" -D "$DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      -N -A trust >"$DIR/initdb.log" 2>&1 \
      || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    port=$(pick_port)
    echo "$port" >"$PORT_FILE"
    write_config "$port"
    write_capture_env "$port"
  else
    port=$(cat "$PORT_FILE")
    port_is_free "$port" || die "port $port of existing sandbox $DIR is in use"
  fi

  as_server touch "$DIR/pg_ctl.log"
  as_server "$PG_BIN/pg_ctl" -D "$DATA" -l "$DIR/pg_ctl.log" -w -t 30 -s start \
    || { cat "$DIR/pg_ctl.log" >&2; die "server failed to start"; }

  # pg_ctl -w already waits; double-check the TCP listener.
  for _ in $(seq 1 50); do
    if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port"; then return 0; fi
    sleep 0.1
  done
  die "server on 127.0.0.1:$port is not accepting connections"
}

stop() {
  if is_running; then
    as_server "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 30 -s stop
  fi
}

print_env() {
  [[ -f $PORT_FILE ]] || die "no sandbox in $DIR (run: $0 start $DIR)"
  local port
  port=$(cat "$PORT_FILE")
  printf 'export PGHOST=%q\n' 127.0.0.1
  printf 'export PGPORT=%q\n' "$port"
  printf 'export PGDATABASE=%q\n' postgres
  printf 'export ROLEWATCH_PG_SOCKET_DIR=%q\n' "$DIR"
  printf 'export ROLEWATCH_PG_DATA=%q\n' "$DATA"
  printf 'export ROLEWATCH_PG_LOG_DIR=%q\n' "$LOGDIR"
  printf 'export ROLEWATCH_PG_BIN=%q\n' "$PG_BIN"
  # shellcheck disable=SC2016 # $PATH must expand in the caller's shell
  printf 'export PATH=%q:"$PATH"\n' "$PG_BIN"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo running; else echo stopped; exit 3; fi ;;
  env) print_env ;;
  *) usage ;;
esac
