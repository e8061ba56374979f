#!/usr/bin/env bash
# Benchmark workload (scripts/pgbench-logs.sh): pgbench -i -s 1, then
# $PGBENCH_TRANSACTIONS (default 100000) TPC-B-like transactions on one client over TCP.
set -euo pipefail
: "${PGPORT:?PGPORT must be set}"
export PGPASSWORD=bench_pw PGAPPNAME=pgbench
pgbench -q -i -s 1 -h "${PGHOST:-127.0.0.1}" -p "$PGPORT" -U bench bench >/dev/null 2>&1
pgbench -n -c 1 -t "${PGBENCH_TRANSACTIONS:-100000}" -h "${PGHOST:-127.0.0.1}" -p "$PGPORT" -U bench bench >/dev/null
