#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: installs redis-server when missing, then
# fmt, clippy (-D warnings), docs (-D warnings) and every test with every feature.
# Tests start their own redis-server processes on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/redis-env.sh
ensure_redis_server
redis-server --version

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --all-features -- -D warnings
echo "==> cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps
echo "==> cargo test"
cargo test --workspace --all-features
