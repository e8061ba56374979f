#!/usr/bin/env bash
# Capture a real MariaDB server_audit log from a scripted workload.
#
# Starts a throwaway mariadbd in a temp dir (loopback TCP on a free port, its own socket,
# --no-defaults so no system config is read) with the server_audit plugin logging CONNECT,
# QUERY and TABLE events to a file, runs the workload below, stops the server and copies
# into OUTDIR:
#   server_audit.log  the audit log
#   capture.env       the settings used (KEY='value' lines)
# The temp dir is removed on exit, also on failure. Works as root (the server then runs as
# the `mysql` OS user).
#
# The server runs with TZ=$ROLEWATCH_MARIADB_TZ (default Asia/Kolkata, +05:30 all year) so
# that the log's zone-less local times differ from UTC: readers must pass --timezone.
#
# Usage: scripts/mariadb-sandbox.sh OUTDIR
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }

die() { echo "mariadb-sandbox: $*" >&2; exit 1; }

MARIADBD=${ROLEWATCH_MARIADBD:-/usr/sbin/mariadbd}
SERVER_TZ=${ROLEWATCH_MARIADB_TZ:-Asia/Kolkata}
[[ -x $MARIADBD ]] || die "mariadbd not found at $MARIADBD (run scripts/install-deps.sh)"
command -v mariadb-install-db >/dev/null || die "mariadb-install-db not found (run scripts/install-deps.sh)"
command -v mariadb >/dev/null || die "the mariadb client is not installed (run scripts/install-deps.sh)"

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd -P)
TMP=$(mktemp -d "${TMPDIR:-/tmp}/rolewatch-mariadb.XXXXXX")
SOCKET=$TMP/mysqld.sock
SERVER_PID=

cleanup() {
  if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ $(id -u) -eq 0 ]]; then
  SERVER_USER=mysql
  chown "$SERVER_USER": "$TMP"
else
  SERVER_USER=$(id -un)
fi
chmod 0755 "$TMP"

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}
PORT=$(free_port)

mariadb-install-db --no-defaults --user="$SERVER_USER" --datadir="$TMP/data" \
  --auth-root-authentication-method=normal --skip-test-db >"$TMP/install.log" 2>&1 \
  || { cat "$TMP/install.log" >&2; die "mariadb-install-db failed"; }

TZ=$SERVER_TZ "$MARIADBD" --no-defaults --user="$SERVER_USER" --datadir="$TMP/data" \
  --socket="$SOCKET" --port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve \
  --pid-file="$TMP/mysqld.pid" --log-error="$TMP/error.log" \
  --innodb-buffer-pool-size=16M --innodb-log-file-size=4M \
  --plugin-load-add=server_audit --server-audit-logging=ON \
  --server-audit-events=CONNECT,QUERY,TABLE \
  --server-audit-file-path="$TMP/server_audit.log" 2>>"$TMP/error.log" &
SERVER_PID=$!

for _ in $(seq 1 100); do
  if mariadb --no-defaults -S "$SOCKET" -u root -e 'SELECT 1' >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$TMP/error.log" >&2; die "mariadbd exited"; }
  sleep 0.1
done
mariadb --no-defaults -S "$SOCKET" -u root -e 'SELECT 1' >/dev/null || die "mariadbd does not answer"

as_root() { mariadb --no-defaults -S "$SOCKET" -u root; }
# as_user USER PASSWORD [mariadb args...]: a TCP session from 127.0.0.1.
as_user() {
  local user=$1 password=$2
  shift 2
  mariadb --no-defaults --protocol=TCP -h 127.0.0.1 -P "$PORT" -u "$user" -p"$password" "$@"
}
# expect_fail PATTERN command...: the command must fail with an error matching PATTERN.
expect_fail() {
  local pattern=$1 err
  shift
  if err=$("$@" 2>&1); then die "expected a failure ($pattern) but it succeeded: $*"; fi
  grep -q -- "$pattern" <<<"$err" || die "expected an error matching '$pattern', got: $err"
}

# ---- setup (root over the socket)
as_root <<'SQL'
CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY AUTO_INCREMENT, customer VARCHAR(64), amount DECIMAL(10,2), note TEXT);
INSERT INTO shop.orders (customer, amount, note) VALUES ('seed 1', 10.00, 'a'), ('seed 2', 20.00, 'b');
CREATE TABLE shop.salaries (employee_id INT PRIMARY KEY, salary DECIMAL(10,2));
CREATE USER app_reader@'127.0.0.1' IDENTIFIED BY 'app_reader_pw';
CREATE USER app_writer@'127.0.0.1' IDENTIFIED BY 'app_writer_pw';
GRANT SELECT ON shop.orders TO app_reader@'127.0.0.1';
GRANT SELECT ON shop.orders TO app_writer@'127.0.0.1';
GRANT INSERT, CREATE ON shop.* TO app_writer@'127.0.0.1';
SQL

# ---- normal work: a multi-line statement with quotes, commas, a backslash and a tab
as_user app_writer app_writer_pw shop <<'SQL'
INSERT INTO orders (customer, amount, note)
VALUES ('Acme, Inc.', 1234.56,
	'multi-line note, with a comma, a \'quote\', a "double quote", a back\\slash
and a second line');
SQL
as_user app_reader app_reader_pw shop -e 'SELECT * FROM orders WHERE id = 1' >/dev/null

# ---- denied read
expect_fail 'SELECT command denied' as_user app_reader app_reader_pw shop -e 'SELECT * FROM salaries'

# ---- failed logins
for i in 1 2 3; do
  expect_fail 'Access denied for user' as_user app_reader "wrong_password_$i" shop -e 'SELECT 1'
done

# ---- CTAS by a non-admin
as_user app_writer app_writer_pw shop -e 'CREATE TABLE orders_copy AS SELECT * FROM orders WHERE id < 10'

# ---- privilege escalation attempt (denied)
expect_fail 'Access denied' as_user app_writer app_writer_pw shop -e "CREATE USER sneaky@'%' IDENTIFIED BY 'x'"

# ---- stop (the audit file is flushed on shutdown)
kill "$SERVER_PID"
wait "$SERVER_PID" || true
SERVER_PID=

cp "$TMP/server_audit.log" "$OUTDIR/server_audit.log"
cat >"$OUTDIR/capture.env" <<ENV
MARIADB_VERSION='$("$MARIADBD" --version | awk '{print $3}')'
SERVER_TZ='$SERVER_TZ'
SERVER_AUDIT_EVENTS='CONNECT,QUERY,TABLE'
PORT='$PORT'
ENV
chmod 0644 "$OUTDIR/server_audit.log" "$OUTDIR/capture.env"
echo "captured into $OUTDIR: server_audit.log=$(wc -l <"$OUTDIR/server_audit.log" | tr -d ' ') lines"
