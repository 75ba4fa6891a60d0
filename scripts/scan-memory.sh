#!/usr/bin/env bash
# Peak memory of `length` and `ids_stream` over many sessions (a measurement, not a test):
# fills a private redis-server with N sessions (default 1,000,000) and runs the
# `scan_memory` example once per listing. The figure is in README.md (Performance).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000000}
. scripts/redis-env.sh
start_private_redis
cargo build --release --quiet -p redis-sessions --example scan_memory
bin=${CARGO_TARGET_DIR:-target}/release/examples/scan_memory
echo "==> writing $N sessions" >&2
python3 - "$N" <<'PY' | redis-cli -p "$REDIS_PORT" --pipe >/dev/null
import sys
value = b'{"user_id":42,"n":1}'
out = sys.stdout.buffer
for i in range(int(sys.argv[1])):
    key = b"sess:%032d" % i
    out.write(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(key), key, len(value), value))
PY
echo "==> dbsize $(redis-cli -p "$REDIS_PORT" DBSIZE)" >&2
for listing in length ids; do "$bin" "$listing"; done
