#!/usr/bin/env bash
# Runs the demo against a private redis-server on a free port (installed from Debian's packages
# when missing), and stops that server when the demo exits.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis-env.sh
start_private_redis
cargo run -q -p redis-sessions --example quickstart
