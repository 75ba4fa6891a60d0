#!/usr/bin/env bash
# Runs the demo web app (axum + tower-sessions on redis-sessions) against a private
# redis-server on a free port, installed from Debian's packages when missing, and stops that
# server when the demo exits (Ctrl-C). Open http://127.0.0.1:3000/ (LISTEN=addr:port to change).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis-env.sh
start_private_redis
# `cargo run` finds the binary wherever cargo puts it (CARGO_TARGET_DIR, a workspace target).
cargo run -q -p demo --bin demo -- --redis-url "$REDIS_URL" "$@"
