#!/usr/bin/env bash
# `rolewatch ingest` beside DuckDB converting the same pgAudit jsonlog to zstd Parquet, both on
# one core (BENCHMARKS.md, "Ingest to the lake beside DuckDB").
#
# Makes a jsonlog of N pgAudit records (the bundled sample's AUDIT lines, repeated with distinct
# session ids),
# then on one core (taskset -c 0), with GNU time for wall time and peak memory:
#   1. DuckDB (Python package, one thread): COPY (SELECT * FROM read_json(log)) TO x.parquet
#      (COMPRESSION zstd) -- a plain conversion, no normalization, no detection;
#   2. rolewatch ingest: parse, normalize, detect, write zstd Parquet, commit manifests.
# Prints both times, peak RSS, Parquet bytes and rows.
#
# Usage: scripts/bench-lake.sh [N|LOG.json] [ROLEWATCH_BINARY]
#   N         synthesize N records (default 1000000)
#   LOG.json  use a real pgAudit jsonlog instead, e.g. the one scripts/pgbench-logs.sh captures
#   the binary defaults to the release build
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
N=${1:-1000000}
BIN=${2:-${CARGO_TARGET_DIR:-$ROOT/target}/release/rolewatch}
[[ -x $BIN ]] || { echo "no rolewatch binary at $BIN (cargo build --release -p rolewatch)" >&2; exit 2; }
PYTHON=$("$ROOT/scripts/interop-deps.sh")
command -v /usr/bin/time >/dev/null || { echo "GNU time is needed (apt-get install time)" >&2; exit 2; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rolewatch-bench-lake.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [[ -f $N ]]; then
  ln -s "$(cd "$(dirname "$N")" && pwd -P)/$(basename "$N")" "$WORK/postgresql.json"
else
python3 - "$ROOT/examples/logs/postgresql.json" "$N" >"$WORK/postgresql.json" <<'PY'
import sys
# Only the pgAudit records: every line is then one record for both tools.
lines = [line for line in open(sys.argv[1]).read().splitlines() if '"message":"AUDIT: ' in line]
n = int(sys.argv[2])
out = sys.stdout
copy = 0
written = 0
while written < n:
    for line in lines:
        if written == n:
            break
        out.write(line.replace('"session_id":"', '"session_id":"b%d.' % copy, 1) + "\n")
        written += 1
    copy += 1
PY
fi
echo "input: $(wc -l <"$WORK/postgresql.json") lines, $(wc -c <"$WORK/postgresql.json") bytes" >&2

# GNU time's %e (wall seconds) and %M (peak RSS, KiB) go to a file of their own.
timed() { local out=$1; shift; /usr/bin/time -f '%e %M' -o "$out" taskset -c 0 "$@"; }

timed "$WORK/duckdb.time" "$PYTHON" - "$WORK" <<'PY'
import sys, duckdb
work = sys.argv[1]
con = duckdb.connect()
con.execute("SET threads = 1")
con.execute(f"COPY (SELECT * FROM read_json('{work}/postgresql.json', format='newline_delimited')) "
            f"TO '{work}/duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)")
PY
duck_rows=$("$PYTHON" -c "import duckdb,sys; print(duckdb.sql(\"SELECT count(*) FROM '$WORK/duckdb.parquet'\").fetchall()[0][0])")

cat >"$WORK/rolewatch.toml" <<TOML
[lake]
path = "$WORK/lake"
[state]
path = "$WORK/state"
TOML
timed "$WORK/rolewatch.time" "$BIN" ingest --config "$WORK/rolewatch.toml" --format pgaudit-jsonlog \
  "$WORK/postgresql.json" >/dev/null 2>"$WORK/ingest.err" || { cat "$WORK/ingest.err" >&2; exit 1; }
events=$(grep -o 'stored [0-9]* events' "$WORK/ingest.err" | grep -o '[0-9]*')

read -r duck_seconds duck_kib <"$WORK/duckdb.time"
read -r rw_seconds rw_kib <"$WORK/rolewatch.time"
duck_bytes=$(stat -c %s "$WORK/duckdb.parquet")
rw_bytes=$(find "$WORK/lake/events" -name '*.parquet' -printf '%s\n' | awk '{ s += $1 } END { print s }')
printf 'duckdb:    %6.2f s  peak %4d MiB  %10d bytes  %8d rows    %5.1f bytes/row\n' \
  "$duck_seconds" $((duck_kib / 1024)) "$duck_bytes" "$duck_rows" "$(echo "$duck_bytes / $duck_rows" | bc -l)"
printf 'rolewatch: %6.2f s  peak %4d MiB  %10d bytes  %8d events  %5.1f bytes/row\n' \
  "$rw_seconds" $((rw_kib / 1024)) "$rw_bytes" "$events" "$(echo "$rw_bytes / $events" | bc -l)"
