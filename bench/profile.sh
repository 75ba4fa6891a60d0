#!/usr/bin/env bash
# Where the CPU of one stack goes: runs the bench server under valgrind's callgrind (perf's
# hardware counters are not available on the shared VM), drives one path with a light wrk load,
# and writes results/profile-STACK-PATH.txt (inclusive cost per function, top entries).
#
#   bash bench/profile.sh axum-ours-sliding /read
#   bash bench/profile.sh axum-memory /read     # the session layer alone (no Redis)
#   SERVER=/path/to/old/bench-server OUT=/tmp/old.txt bash bench/profile.sh actix-ours /inc
#
# STACK: any stack of bench-server (`target/release/bench-server` alone lists them): axum-ours,
# axum-ours-sliding, axum-tsrs, axum-memory, axum-none, actix-ours, actix-ours-sliding,
# actix-redis, actix-cookie, actix-none. axum-memory, actix-cookie and the -none stacks never
# connect to the private redis-server.
set -euo pipefail
cd "$(dirname "$0")"
STACK=${1:?stack}; PATH_=${2:-/read}; SECONDS_=${SECONDS_:-20}
. ../scripts/redis-env.sh
cargo build --release --quiet
SERVER=${SERVER:-${CARGO_TARGET_DIR:-target}/release/bench-server}
WORK=$(mktemp -d -t redis-sessions-prof-XXXXXX)
start_private_redis
PORT=$(free_port)
valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" \
  "$SERVER" --stack "$STACK" --listen "127.0.0.1:$PORT" --redis "$REDIS_URL/1" \
  2>"$WORK/vg.log" &
VG=$!
trap 'kill $VG 2>/dev/null || true; stop_private_redis' EXIT
for _ in $(seq 600); do
  curl -s -o /dev/null "http://127.0.0.1:$PORT/read" && break
  kill -0 "$VG" 2>/dev/null || { echo "error: bench-server exited: $(cat "$WORK/vg.log")" >&2; exit 1; }
  sleep 0.1
done
callgrind_control -z "$VG" >/dev/null          # count only the load below
wrk -t1 -c4 -d"${SECONDS_}"s -s session.lua "http://127.0.0.1:$PORT" -- "$PATH_" 4 | tee "$WORK/wrk.txt" >&2
requests=$(awk '/requests in/ {print $1}' "$WORK/wrk.txt")
callgrind_control -d "$VG" >/dev/null
sleep 1
kill -KILL "$VG" 2>/dev/null; wait "$VG" 2>/dev/null || true   # the dump above is the profile
out=${OUT:-results/profile-$STACK-${PATH_#/}.txt}
dump=$(ls -t "$WORK"/cg.out* | head -1)
{
  echo "# callgrind: $STACK $PATH_, $requests requests (wrk -t1 -c4), instructions inclusive"
  echo "# total Ir / request: $(callgrind_annotate "$dump" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); printf "%.0f", $1 / '"$requests"'}')"
  callgrind_annotate --inclusive=yes --threshold=99 "$dump" 2>/dev/null | head -150
} >"$out"
echo "==> $out" >&2
