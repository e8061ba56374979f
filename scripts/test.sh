#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then runs the
# checks a developer runs (format, lints, docs) and every test, end-to-end ones included.
#
# Usage: scripts/test.sh
#   CARGO_TARGET_DIR  reuse a build directory between runs (CI keeps one outside the clone)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$ROOT"

step() { printf '\n== %s\n' "$*" >&2; }

step "installing test dependencies"
scripts/install-deps.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

step "shellcheck"
shellcheck scripts/*.sh .ci/run examples/workload/*.sh

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "starting the Kafka broker (scripts/kafka.sh)"
# The Kafka tests would start it themselves; starting it here shows its log on failure and
# lets the suite stop it afterwards when it was not running before.
if ! scripts/kafka.sh status >/dev/null 2>&1; then
  trap 'scripts/kafka.sh stop' EXIT
fi
scripts/kafka.sh start

step "cargo test"
cargo test --workspace --locked

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

step "all checks passed"
