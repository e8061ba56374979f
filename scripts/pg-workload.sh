#!/usr/bin/env bash
# Run the sample workload (examples/workload/: setup.sql, then workload.sh with its planted
# risky actions) against a running pg-sandbox in DIR.
#
# Usage: scripts/pg-workload.sh DIR [WORKLOAD_DIR]   (after scripts/pg-sandbox.sh start DIR)
#   WORKLOAD_DIR (default examples/workload) holds setup.sql and workload.sh.
set -euo pipefail

[[ $# -eq 1 || $# -eq 2 ]] || { echo "usage: $0 DIR [WORKLOAD_DIR]" >&2; exit 2; }

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
WORKLOAD_DIR=$(cd "${2:-$ROOT/examples/workload}" && pwd -P)
eval "$("$ROOT/scripts/pg-sandbox.sh" env "$1")"

# Setup as superuser over the unix socket (local trust for postgres only).
PGAPPNAME=setup psql -X -q -w -v ON_ERROR_STOP=1 -h "$ROLEWATCH_PG_SOCKET_DIR" \
  -U postgres -d postgres -f "$WORKLOAD_DIR/setup.sql" >/dev/null

# Workload over TCP with passwords.
PGHOST=127.0.0.1 "$WORKLOAD_DIR/workload.sh"
