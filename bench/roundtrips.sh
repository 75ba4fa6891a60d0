#!/usr/bin/env bash
# Redis commands and round trips per request, exactly, for a few stacks: each stack on its own
# database of a private redis-server, N sequential requests per path with curl, and Redis's
# MONITOR counting what they sent. A line from a client address is one command sent (one
# round trip: nothing is pipelined); a line from "lua" is a command run inside a script.
#
#   STACKS="axum-ours axum-ours-indexed" N=50 bash bench/roundtrips.sh
set -euo pipefail
cd "$(dirname "$0")"
STACKS=${STACKS:-"axum-ours axum-ours-indexed"}
N=${N:-50}
SERVER=${CARGO_TARGET_DIR:-$PWD/target}/release/bench-server
. ../scripts/redis-env.sh
cargo build --release --quiet
WORK=$(mktemp -d -t redis-sessions-rt-XXXXXX)
declare -A PID PORT
cleanup() {
  for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
  [ -n "${MON:-}" ] && kill "$MON" 2>/dev/null || true
  wait 2>/dev/null || true
  stop_private_redis
  rm -rf "$WORK"
}
start_private_redis
trap cleanup EXIT INT TERM
i=0
for s in $STACKS; do
  i=$((i + 1))
  PORT[$s]=$(free_port)
  "$SERVER" --stack "$s" --listen "127.0.0.1:${PORT[$s]}" --redis "redis://127.0.0.1:$REDIS_PORT/$i" 2>"$WORK/$s.log" &
  PID[$s]=$!
  for _ in $(seq 200); do curl -s -o /dev/null "http://127.0.0.1:${PORT[$s]}/read" && break; sleep 0.05; done
done
echo "| stack | path | commands sent / request (= round trips) | commands run / request (scripts' included) |"
echo "|---|---|---|---|"
for s in $STACKS; do
  jar="$WORK/$s.jar"
  curl -sf -c "$jar" "http://127.0.0.1:${PORT[$s]}/login" >/dev/null
  for p in /login /inc /read; do
    redis-cli -p "$REDIS_PORT" MONITOR >"$WORK/monitor" &
    MON=$!
    # MONITOR is on once its OK is out; then every command is in the file.
    until grep -q OK "$WORK/monitor" 2>/dev/null; do sleep 0.01; done
    for _ in $(seq "$N"); do
      if [ "$p" = /login ]; then
        curl -sf "http://127.0.0.1:${PORT[$s]}/login" >/dev/null
      else
        curl -sf -b "$jar" "http://127.0.0.1:${PORT[$s]}$p" >/dev/null
      fi
    done
    redis-cli -p "$REDIS_PORT" PING >/dev/null   # the marker: everything before it is in
    until grep -q '"PING"' "$WORK/monitor"; do sleep 0.01; done
    kill "$MON"; wait "$MON" 2>/dev/null || true; MON=
    sent=$(grep -v '"PING"' "$WORK/monitor" | grep -c '\] "' | tr -d ' ' || true)
    lua=$(grep -c ' lua\] "' "$WORK/monitor" || true)
    top=$((sent - lua))
    awk -v s="$s" -v p="$p" -v n="$N" -v t="$top" -v a="$sent" \
      'BEGIN { printf "| `%s` | `%s` | %.2f | %.2f |\n", s, p, t / n, a / n }'
  done
done
