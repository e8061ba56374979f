#!/usr/bin/env bash
# Capture real PostgreSQL 15 + pgAudit sample logs for rolewatch.
#
# Starts a throwaway sandbox (scripts/pg-sandbox.sh) in a temp dir, runs
# examples/workload/setup.sql and examples/workload/workload.sh, stops the
# server (flushing the logs) and copies into OUTDIR:
#   postgresql.log   <- log/postgresql       (stderr format, log_line_prefix)
#   postgresql.csv   <- log/postgresql.csv   (csvlog)
#   postgresql.json  <- log/postgresql.json  (jsonlog)
#   capture.env      <- settings used (LOG_LINE_PREFIX=..., versions, ...)
# The temp dir is removed on exit, also on failure. Works as root (the server
# then runs as the `postgres` OS user).
#
# Usage: scripts/capture-pg-sample.sh OUTDIR [WORKLOAD_DIR]
#   WORKLOAD_DIR (default examples/workload) holds setup.sql and workload.sh.
set -euo pipefail

[[ $# -eq 1 || $# -eq 2 ]] || { echo "usage: $0 OUTDIR [WORKLOAD_DIR]" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
SANDBOX=$ROOT/scripts/pg-sandbox.sh

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd -P)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rolewatch-pg.XXXXXX")
cleanup() {
  "$SANDBOX" stop "$TMP" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$SANDBOX" start "$TMP"
"$ROOT/scripts/pg-workload.sh" "$TMP" ${2:+"$2"}
eval "$("$SANDBOX" env "$TMP")"

# Stop so the logging collector flushes and closes all three files.
"$SANDBOX" stop "$TMP"

cp "$ROLEWATCH_PG_LOG_DIR/postgresql"      "$OUTDIR/postgresql.log"
cp "$ROLEWATCH_PG_LOG_DIR/postgresql.csv"  "$OUTDIR/postgresql.csv"
cp "$ROLEWATCH_PG_LOG_DIR/postgresql.json" "$OUTDIR/postgresql.json"
cp "$TMP/capture.env"                      "$OUTDIR/capture.env"
chmod 0644 "$OUTDIR/postgresql.log" "$OUTDIR/postgresql.csv" "$OUTDIR/postgresql.json" "$OUTDIR/capture.env"

count() { wc -l <"$OUTDIR/$1" | tr -d ' '; }
echo "captured into $OUTDIR: postgresql.log=$(count postgresql.log) lines, postgresql.csv=$(count postgresql.csv) lines, postgresql.json=$(count postgresql.json) lines"
