#!/usr/bin/env bash
# Throwaway MariaDB server on loopback, kept running for tests that need a live one (the access
# review reads its catalogs). scripts/mariadb-sandbox.sh is the other kind: a one-shot capture of
# a server_audit log from a scripted workload.
#
# Usage: scripts/mariadb-server.sh start|stop|status|env DIR
#
#   start  mariadb-install-db into DIR/data (first time only), start mariadbd with
#          --no-defaults (no system config is read) on 127.0.0.1 and a free port, and wait
#          until it answers. No-op if running.
#   stop   stop the server (SIGTERM, wait for its pid to exit). Safe to call repeatedly.
#   status exit 0 if the sandbox server is running, 3 otherwise.
#   env    print shell exports for clients (eval "$(scripts/mariadb-server.sh env DIR)").
#
# Layout under DIR: data/ (datadir), mysqld.sock (root may log in over it without a
# password), mysqld.pid, error.log, port, server_audit.log (the server_audit plugin's log of
# CONNECT, QUERY and TABLE events; the server runs with TZ=UTC, so its times are UTC).
# When run as root the server runs as the `mysql` OS user.
set -euo pipefail

die() { echo "mariadb-server: $*" >&2; exit 1; }
usage() { echo "usage: $0 start|stop|status|env DIR" >&2; exit 2; }

[[ $# -eq 2 ]] || usage
cmd=$1
if [[ $cmd == start ]]; then
  mkdir -p "$2"
elif [[ ! -d $2 ]]; then
  case $cmd in
    stop) exit 0 ;;
    status) echo stopped; exit 3 ;;
    *) die "no sandbox in $2" ;;
  esac
fi
DIR=$(cd "$2" && pwd -P)
MARIADBD=${ROLEWATCH_MARIADBD:-/usr/sbin/mariadbd}
SOCKET=$DIR/mysqld.sock
PID_FILE=$DIR/mysqld.pid
PORT_FILE=$DIR/port

if [[ $(id -u) -eq 0 ]]; then SERVER_USER=mysql; else SERVER_USER=$(id -un); fi

server_pid() { [[ -s $PID_FILE ]] && cat "$PID_FILE"; }
is_running() { local pid; pid=$(server_pid) && kill -0 "$pid" 2>/dev/null; }

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

start() {
  is_running && return 0
  [[ -x $MARIADBD ]] || die "mariadbd not found at $MARIADBD (run scripts/install-deps.sh)"
  command -v mariadb-install-db >/dev/null || die "mariadb-install-db not found (run scripts/install-deps.sh)"
  [[ $SERVER_USER == mysql ]] && chown mysql: "$DIR"
  chmod 0755 "$DIR"
  if [[ ! -d $DIR/data/mysql ]]; then
    mariadb-install-db --no-defaults --user="$SERVER_USER" --datadir="$DIR/data" \
      --auth-root-authentication-method=socket --skip-test-db >"$DIR/install.log" 2>&1 \
      || { cat "$DIR/install.log" >&2; die "mariadb-install-db failed"; }
    free_port >"$PORT_FILE"
  fi
  local port
  port=$(cat "$PORT_FILE")
  TZ=UTC "$MARIADBD" --no-defaults --user="$SERVER_USER" --datadir="$DIR/data" \
    --socket="$SOCKET" --port="$port" --bind-address=127.0.0.1 --skip-name-resolve \
    --pid-file="$PID_FILE" --log-error="$DIR/error.log" \
    --innodb-buffer-pool-size=16M --innodb-log-file-size=4M \
    --plugin-load-add=server_audit --server-audit-logging=ON \
    --server-audit-events=CONNECT,QUERY,TABLE --server-audit-file-path="$DIR/server_audit.log" \
    </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 150); do
    if mariadb --no-defaults -S "$SOCKET" -u root -e 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.1
  done
  cat "$DIR/error.log" >&2 || true
  die "mariadbd on 127.0.0.1:$port does not answer"
}

stop() {
  local pid
  pid=$(server_pid) || return 0
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 300); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "mariadbd (pid $pid) did not stop"
}

print_env() {
  [[ -f $PORT_FILE ]] || die "no sandbox in $DIR (run: $0 start $DIR)"
  printf 'export ROLEWATCH_MARIADB_HOST=%q\n' 127.0.0.1
  printf 'export ROLEWATCH_MARIADB_PORT=%q\n' "$(cat "$PORT_FILE")"
  printf 'export ROLEWATCH_MARIADB_SOCKET=%q\n' "$SOCKET"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) if is_running; then echo running; else echo stopped; exit 3; fi ;;
  env) print_env ;;
  *) usage ;;
esac
