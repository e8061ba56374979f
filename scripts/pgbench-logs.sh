#!/usr/bin/env bash
# Large real pgAudit logs for benchmarks: PostgreSQL 15 + pgAudit under pgbench.
#
# Runs scripts/capture-pg-sample.sh with the workload in scripts/pgbench-workload:
# `pgbench -i -s 1`, then TRANSACTIONS TPC-B-like transactions on one client over TCP. Every
# statement is audited (all classes, log_relation = on), about seven records a transaction,
# written to postgresql.{log,csv,json} in OUTDIR at once.
#
# Usage: scripts/pgbench-logs.sh OUTDIR [TRANSACTIONS]   (default 100000)
set -euo pipefail

[[ $# -ge 1 && $# -le 2 ]] || { echo "usage: $0 OUTDIR [TRANSACTIONS]" >&2; exit 2; }
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PGBENCH_TRANSACTIONS=${2:-100000} exec "$ROOT/scripts/capture-pg-sample.sh" "$1" "$ROOT/scripts/pgbench-workload"
