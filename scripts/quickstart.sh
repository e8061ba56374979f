#!/usr/bin/env bash
# The quick start: installs what building rolewatch needs (Debian packages), builds it, and
# ingests the bundled sample of real pgAudit logs into ./rolewatch-data, printing the alerts.
#
# Usage: scripts/quickstart.sh [INGEST_ARGS...]   (default: the bundled sample and config)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
"$ROOT/scripts/install-deps.sh" --build
if [[ $# -eq 0 ]]; then
  set -- --config "$ROOT/examples/rolewatch.toml" "$ROOT/examples/logs/postgresql.json"
fi
exec cargo run --quiet --release --manifest-path "$ROOT/Cargo.toml" -p rolewatch -- ingest "$@"
