#!/usr/bin/env bash
# rolewatch sample workload: normal activity plus planted risky actions.
# See EXPECTED.md for what each step should leave in the server logs.
#
# Every client connects over TCP with password auth (PGPASSWORD) and its own
# application_name (PGAPPNAME) to database `shop`. Passwords are <role>_pw
# (set by setup.sql). Each run_sql call is one psql session; statements in a
# heredoc are sent one by one by psql (-f -), so pgAudit logs each separately.
#
# Usage: PGPORT=NNNN [PGHOST=127.0.0.1] examples/workload/workload.sh
#   (scripts/capture-pg-sample.sh sets these up via scripts/pg-sandbox.sh env)
set -euo pipefail

: "${PGPORT:?PGPORT must be set (eval \"\$(scripts/pg-sandbox.sh env DIR)\")}"
HOST=${PGHOST:-127.0.0.1}
DB=${WORKLOAD_DB:-shop}
PSQL=${PSQL:-psql}

step() { echo "workload: $*" >&2; }

# run_sql ROLE APP [PASSWORD] -- psql args...   (stdout discarded)
run_sql() {
  local role=$1 app=$2 password="${1}_pw"
  shift 2
  if [[ $1 != -- ]]; then password=$1; shift; fi
  shift # --
  PGPASSWORD=$password PGAPPNAME=$app \
    "$PSQL" -X -q -w -v ON_ERROR_STOP=1 -h "$HOST" -p "$PGPORT" -U "$role" -d "$DB" "$@" >/dev/null
}

# expect_fail PATTERN ROLE APP [PASSWORD] -- psql args...
# The session must fail with an error matching PATTERN (else the workload aborts).
expect_fail() {
  local pattern=$1 err
  shift
  if err=$(run_sql "$@" 2>&1); then
    echo "workload: expected failure ($pattern) but the command succeeded" >&2
    exit 1
  fi
  if ! grep -q -- "$pattern" <<<"$err"; then
    echo "workload: expected error matching '$pattern', got: $err" >&2
    exit 1
  fi
}

# ---------------------------------------------------------------- a. normal work
step "a. normal work"
run_sql app_writer billing -- -f - <<'SQL'
INSERT INTO orders (customer, amount, note) VALUES ('walk-in 1', 10.00, 'counter sale');
INSERT INTO orders (customer, amount, note) VALUES ('walk-in 2', 20.50, 'counter sale');
INSERT INTO orders (customer, amount, note) VALUES ('walk-in 3', 30.25, 'counter sale');
INSERT INTO orders (customer, amount, note) VALUES ('walk-in 4', 40.00, 'phone order');
INSERT INTO orders (customer, amount, note) VALUES ('walk-in 5', 55.55, 'phone order');
UPDATE orders SET amount = 33.33, note = 'price corrected' WHERE customer = 'walk-in 3';
INSERT INTO orders (customer, amount, note)
VALUES ('Acme, Inc.', 1234.56,
        'multi-line note, with a comma, a "double quote"
and a second line');
SQL

run_sql app_reader webapp -- -c 'SELECT * FROM orders WHERE id = 42' -c 'SELECT count(*) FROM orders'

run_sql report_reader reports -- -f - <<'SQL'
WITH per_customer AS (
    SELECT customer, count(*) AS n_orders, sum(amount) AS total
    FROM orders
    GROUP BY customer
)
SELECT customer, n_orders, total
FROM per_customer
ORDER BY total DESC, customer
LIMIT 5;
SQL

run_sql app_reader webapp -- -f - <<'SQL'
PREPARE q(int) AS SELECT id, customer, amount FROM orders WHERE id = $1;
EXECUTE q(7);
SQL

run_sql dba_admin psql -- -f - <<'SQL'
CREATE INDEX orders_customer_idx ON orders (customer);
ALTER TABLE orders ADD COLUMN region text;
SQL

# Routine clean-up of the rows inserted above, so that `orders` holds exactly
# the 20000 seed rows again for the planted exports below.
run_sql app_writer billing -- -c 'DELETE FROM orders WHERE id > 20000'

# ------------------------------------------ b. PLANTED 1: large single export
step "b. planted 1: SELECT * FROM orders (20000 rows)"
run_sql app_reader webapp -- -c 'SELECT * FROM orders'

# ------------------------------------------------ c. PLANTED 2: chunked export
step "c. planted 2: chunked export, 3 x 4000 rows in one session"
run_sql report_reader reports -- \
  -c 'SELECT * FROM orders ORDER BY id LIMIT 4000 OFFSET 0' \
  -c 'SELECT * FROM orders ORDER BY id LIMIT 4000 OFFSET 4000' \
  -c 'SELECT * FROM orders ORDER BY id LIMIT 4000 OFFSET 8000'

# -------------------------------------------- d. PLANTED 3: DDL by non-admin
step "d. planted 3: DDL by app_writer"
run_sql app_writer billing -- -f - <<'SQL'
CREATE TABLE public.orders_copy AS SELECT * FROM orders WHERE id < 10;
ALTER TABLE public.orders_copy ADD COLUMN exfil text;
SQL

# ---------------------------------------- e. PLANTED 4: permission denied read
step "e. planted 4: app_reader reads hr.salaries (denied)"
expect_fail 'permission denied for table salaries' \
  app_reader webapp -- -c 'SELECT * FROM hr.salaries'

# ------------------------------------- f. PLANTED 5: password brute force
step "f. planted 5: 6 failed logins for app_reader, then a successful one"
for i in 1 2 3 4 5 6; do
  expect_fail 'password authentication failed for user "app_reader"' \
    app_reader webapp "wrong_password_$i" -- -c 'SELECT 1'
done
run_sql app_reader webapp -- -c 'SELECT 1'

# ------------------------------------ g. PLANTED 6: superuser login over TCP
step "g. planted 6: postgres over TCP from api-server"
run_sql postgres api-server -- -c 'SELECT 1'

# ---------------------------------------------- h. PLANTED 7: COPY TO STDOUT
step "h. planted 7: COPY orders TO STDOUT"
run_sql app_reader webapp -- -c 'COPY orders TO STDOUT'

# ------------------------------------ i. privilege escalation attempt (denied)
step "i. app_writer tries CREATE ROLE (denied)"
expect_fail 'permission denied to create role' \
  app_writer billing -- -c 'CREATE ROLE sneaky LOGIN'

step "done"
