#!/usr/bin/env bash
# Provision the Python engines that the lake's interoperability test reads the lake with
# (DuckDB and pyarrow, from PyPI) in a virtualenv of their own.
#
# Idempotent: does nothing when the virtualenv already imports both.
# Usage: scripts/interop-deps.sh        prints the virtualenv's python on stdout
#   The test finds it at $ROLEWATCH_PYTHON, else at the default location below.
set -euo pipefail

VENV=${ROLEWATCH_VENV:-$HOME/.cache/rolewatch/venv}
PYTHON=$VENV/bin/python

if [[ -x $PYTHON ]] && "$PYTHON" -c 'import duckdb, pyarrow' 2>/dev/null; then
  echo "$PYTHON"
  exit 0
fi

echo "interop-deps: installing duckdb and pyarrow into $VENV" >&2
python3 -m venv "$VENV"
"$PYTHON" -m pip install --quiet --disable-pip-version-check duckdb pyarrow >&2
"$PYTHON" -c 'import duckdb, pyarrow'
echo "$PYTHON"
