#!/usr/bin/env bash
# A real S3-compatible server for the lake's tests: MinIO, built from the Go module proxy.
#
# Usage:
#   scripts/minio.sh install        build minio into $ROLEWATCH_TOOLS (idempotent)
#   scripts/minio.sh start DIR      start it on 127.0.0.1 with data, pid and log in DIR
#   scripts/minio.sh env DIR        print the variables that point `rolewatch --lake s3://...` at it
#   scripts/minio.sh stop DIR       stop the server started in DIR
#
# The lake's S3 test starts its own server from the installed binary (on a free port); this
# script is for installing it and for trying the lake by hand.
set -euo pipefail

# The newest MinIO module version the Go module proxy served (a pseudo-version: MinIO tags its
# releases RELEASE.*, which are not semver). It needs the Go that the machine has (1.26).
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
TOOLS=${ROLEWATCH_TOOLS:-$HOME/.cache/rolewatch/bin}
BIN=$TOOLS/minio
USER_NAME=rolewatch
PASSWORD=rolewatch-local-secret

install() {
  if [[ -x $BIN ]]; then
    return 0
  fi
  command -v go >/dev/null || { echo "minio.sh: go is required to build MinIO" >&2; exit 1; }
  mkdir -p "$TOOLS"
  echo "minio.sh: building github.com/minio/minio@$MINIO_VERSION (several minutes)" >&2
  GOBIN=$TOOLS GOFLAGS=-buildvcs=false go install "github.com/minio/minio@$MINIO_VERSION"
}

port_file() { echo "$1/port"; }

start() {
  local dir=$1
  install
  mkdir -p "$dir/data"
  if [[ -f $dir/pid ]] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
    return 0
  fi
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  echo "$port" > "$(port_file "$dir")"
  MINIO_ROOT_USER=$USER_NAME MINIO_ROOT_PASSWORD=$PASSWORD MINIO_BROWSER=off \
    nohup "$BIN" server --quiet --address "127.0.0.1:$port" "$dir/data" > "$dir/minio.log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do
    if curl -s -o /dev/null "http://127.0.0.1:$port/minio/health/ready"; then
      echo "minio.sh: MinIO on http://127.0.0.1:$port (pid $(cat "$dir/pid"))" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "minio.sh: MinIO did not start; see $dir/minio.log" >&2
  exit 1
}

env_vars() {
  local dir=$1
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$(cat "$(port_file "$dir")")"
  echo "export AWS_ACCESS_KEY_ID=$USER_NAME"
  echo "export AWS_SECRET_ACCESS_KEY=$PASSWORD"
  echo "export AWS_REGION=us-east-1"
}

make_bucket() {
  local dir=$1 bucket=$2
  curl -sf -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" --user "$USER_NAME:$PASSWORD" \
    "http://127.0.0.1:$(cat "$(port_file "$dir")")/$bucket" > /dev/null
}

stop() {
  local dir=$1
  if [[ -f $dir/pid ]]; then
    kill "$(cat "$dir/pid")" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
}

case ${1:-} in
  install) install ;;
  start) start "${2:?usage: minio.sh start DIR}" ;;
  env) env_vars "${2:?usage: minio.sh env DIR}" ;;
  mb) make_bucket "${2:?usage: minio.sh mb DIR BUCKET}" "${3:?usage: minio.sh mb DIR BUCKET}" ;;
  stop) stop "${2:?usage: minio.sh stop DIR}" ;;
  *) echo "usage: minio.sh install | start DIR | env DIR | mb DIR BUCKET | stop DIR" >&2; exit 2 ;;
esac
