#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: installs redis-server when missing, then
# fmt, a warning-free `cargo check` of the library under every feature set, clippy
# (-D warnings), docs (-D warnings) and every test with every feature.
# Tests start their own redis-server processes on free loopback ports; the demo's browser test
# drives headless Chromium through chromedriver (Debian's chromium and chromium-driver,
# installed here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/redis-env.sh
ensure_redis_server
redis-server --version
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  echo "==> installing chromium and chromium-driver (Debian packages) for the browser test" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
fi
chromedriver --version

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo check of the library per feature set (-D warnings)"
# The library alone, without tests: no features, the defaults, each feature alone, all of
# them. In a target dir of its own, so the different RUSTFLAGS and feature sets do not
# invalidate the main build's artifacts.
feature_check_dir=target/feature-check
lib_features=$(sed -n '/^\[features\]/,/^\[/{s/^\([a-z0-9-]*\) *=.*/\1/p}' \
  crates/redis-sessions/Cargo.toml | grep -vx default)
check_lib() {
  echo "    cargo check -p redis-sessions $*"
  RUSTFLAGS="-D warnings" cargo check -q -p redis-sessions --target-dir "$feature_check_dir" "$@"
}
check_lib --no-default-features
check_lib
for feature in $lib_features; do
  check_lib --no-default-features --features "$feature"
done
check_lib --all-features
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps
echo "==> cargo test"
# Six tests at a time in each test binary: the integration tests spend their time waiting on
# the servers each one starts, not on the CPU (the suite takes a third of the time it takes at
# the default of one thread per core). RUST_TEST_THREADS set by the caller wins.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-6}
cargo test --workspace --all-features
