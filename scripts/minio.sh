#!/usr/bin/env bash
# A real S3-compatible server for the lake's tests: MinIO, built from the Go module proxy.
#
# Usage:
#   scripts/minio.sh install        build minio and mc into $ROLEWATCH_TOOLS (idempotent)
#   scripts/minio.sh start DIR      start it on 127.0.0.1 with data, pid and log in DIR; started
#                                   again in the same DIR, it serves the same data on the same port
#   scripts/minio.sh env DIR        print the variables that point `rolewatch --lake s3://...` at it
#   scripts/minio.sh mb DIR BUCKET  create a bucket
#   scripts/minio.sh mc DIR ARGS..  run the MinIO client as the root user, with the server known
#                                   as `local` (e.g. `mc DIR admin user add local NAME SECRET`)
#   scripts/minio.sh stop DIR       stop the server started in DIR and wait until it is gone
#
# The lake's S3 test starts its own server from the installed binary (on a free port); this
# script is for installing it and for trying the lake by hand.
set -euo pipefail

# The newest MinIO module version the Go module proxy served (a pseudo-version: MinIO tags its
# releases RELEASE.*, which are not semver). It needs the Go that the machine has (1.26).
MINIO_VERSION=${MINIO_VERSION:-v0.0.0-20260212201848-7aac2a2c5b7c}
# The MinIO client (users, policies) for the tests that make the server refuse writes: the
# version the Go module proxy serves as latest (also a pseudo-version).
MC_VERSION=${MC_VERSION:-v0.0.0-20250313080218-cf909e1063a9}
TOOLS=${ROLEWATCH_TOOLS:-$HOME/.cache/rolewatch/bin}
BIN=$TOOLS/minio
MC=$TOOLS/mc
USER_NAME=rolewatch
PASSWORD=rolewatch-local-secret

install() {
  go_install "$BIN" "github.com/minio/minio@$MINIO_VERSION"
  go_install "$MC" "github.com/minio/mc@$MC_VERSION"
}

# Builds a Go command into $TOOLS unless it is there.
go_install() {
  local bin=$1 module=$2
  if [[ -x $bin ]]; then
    return 0
  fi
  command -v go >/dev/null || { echo "minio.sh: go is required to build $module" >&2; exit 1; }
  mkdir -p "$TOOLS"
  echo "minio.sh: building $module (several minutes)" >&2
  GOBIN=$TOOLS GOFLAGS=-buildvcs=false go install "$module"
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
  # A restart keeps the port, so that clients configured with the endpoint find the server
  # again (the tests stop and start it under a running daemon).
  if [[ -f $(port_file "$dir") ]]; then
    port=$(cat "$(port_file "$dir")")
  else
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    echo "$port" > "$(port_file "$dir")"
  fi
  MINIO_ROOT_USER=$USER_NAME MINIO_ROOT_PASSWORD=$PASSWORD MINIO_BROWSER=off \
    nohup "$BIN" server --quiet --address "127.0.0.1:$port" "$dir/data" > "$dir/minio.log" 2>&1 &
  echo $! > "$dir/pid"
  for _ in $(seq 100); do
    # -f: the port answers 503 while the server still initializes its drive.
    if curl -sf -o /dev/null "http://127.0.0.1:$port/minio/health/ready"; then
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
  local dir=$1 bucket=$2 status=""
  # A busy machine may still answer 503 for a moment after the server reported ready.
  for _ in $(seq 50); do
    status=$(curl -s -o /dev/null -w '%{http_code}' -X PUT --aws-sigv4 "aws:amz:us-east-1:s3" \
      --user "$USER_NAME:$PASSWORD" "http://127.0.0.1:$(cat "$(port_file "$dir")")/$bucket" || true)
    [[ $status == 200 ]] && return 0
    [[ $status == 5* || $status == 000 || -z $status ]] || break
    sleep 0.2
  done
  echo "minio.sh: cannot create bucket $bucket (last answer: HTTP ${status:-none}); see $dir/minio.log" >&2
  exit 1
}

mc_client() {
  local dir=$1
  shift
  install
  MC_HOST_local="http://$USER_NAME:$PASSWORD@127.0.0.1:$(cat "$(port_file "$dir")")" \
    "$MC" --config-dir "$dir/mc" --quiet --no-color "$@"
}

stop() {
  local dir=$1
  if [[ -f $dir/pid ]]; then
    local pid
    pid=$(cat "$dir/pid")
    kill "$pid" 2>/dev/null || true
    # Gone means gone: a caller that stops the server to test an outage must not race its exit.
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    rm -f "$dir/pid"
  fi
}

case ${1:-} in
  install) install ;;
  start) start "${2:?usage: minio.sh start DIR}" ;;
  env) env_vars "${2:?usage: minio.sh env DIR}" ;;
  mb) make_bucket "${2:?usage: minio.sh mb DIR BUCKET}" "${3:?usage: minio.sh mb DIR BUCKET}" ;;
  mc) mc_client "${2:?usage: minio.sh mc DIR ARGS...}" "${@:3}" ;;
  stop) stop "${2:?usage: minio.sh stop DIR}" ;;
  *) echo "usage: minio.sh install | start DIR | env DIR | mb DIR BUCKET | mc DIR ARGS... | stop DIR" >&2; exit 2 ;;
esac
