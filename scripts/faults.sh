#!/usr/bin/env bash
# Measures the demo under Redis faults and prints a markdown table (it measures; the fault
# suite in demo/tests/faults asserts the behaviour). Four runs, each with a fresh Redis and a
# fresh demo (debug build) on free loopback ports and 6 HTTP clients incrementing their
# counters (demo/examples/load.rs, one connection per request):
#   kill -9   Redis (AOF, appendfsync always) killed, restarted on the same port after DOWN s;
#   SIGSTOP   Redis stopped, SIGCONT after DOWN s;
# each with the demo's fail-fast on and off (--fail-fast true|false).
# Columns: the error window (start of the first failed request to the end of the last), the
# time from Redis being back (answering PING after the restart; SIGCONT sent) to the first 200
# of a request started after that, p50/p99 latency of the failed requests, failed requests,
# unclean answers (dropped connections, statuses other than a 503 with JSON, e.g. an empty
# 500), and successful requests. Bounded: about a minute plus the build; stops what it started.
#
#   bash scripts/faults.sh        # FAULTS_DOWN=5 (seconds Redis is down), FAULTS_CLIENTS=6
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis-env.sh

before=2
down=${FAULTS_DOWN:-5}
after=5
clients=${FAULTS_CLIENTS:-6}
target=${CARGO_TARGET_DIR:-target}

ensure_redis_server
echo "==> building the demo and the load tool (debug)" >&2
cargo build -q -p demo --bin demo --example load

work=$(mktemp -d -t redis-sessions-faults-XXXXXX)
demo_pid="" load_pid=""
stop_redis() {
  if [ -f "$work/redis.pid" ]; then
    local pid
    pid=$(cat "$work/redis.pid")
    kill -CONT "$pid" 2>/dev/null || true # a stopped process would not act on TERM
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
    rm -f "$work/redis.pid"
  fi
}
stop_all() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  if [ -n "$demo_pid" ]; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  demo_pid="" load_pid=""
  stop_redis
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_redis() { # port, extra options...
  local port=$1
  shift
  redis-server --port "$port" --bind 127.0.0.1 --save "" --dir "$work/data" \
    --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log" "$@"
  for _ in $(seq 400); do
    redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
    sleep 0.025
  done
  echo "redis-server on $port did not start" >&2
  return 1
}

mark() { echo "$1 $(date +%s%3N)" >>"$work/marks"; }

run() { # fault (kill|stop), fail-fast (true|false)
  local fault=$1 fail_fast=$2 port demo_port label
  rm -rf "$work/data" "$work/marks"
  mkdir -p "$work/data"
  port=$(free_port)
  if [ "$fault" = kill ]; then
    start_redis "$port" --appendonly yes --appendfsync always
    label="kill -9, restart after ${down} s"
  else
    start_redis "$port" --appendonly no
    label="SIGSTOP, SIGCONT after ${down} s"
  fi
  if [ "$fail_fast" = true ]; then label="$label, fail-fast on"; else label="$label, fail-fast off"; fi
  demo_port=$(free_port)
  RUST_LOG=error,tower_sessions=off "$target/debug/demo" --listen "127.0.0.1:$demo_port" \
    --redis-url "redis://127.0.0.1:$port" --fail-fast "$fail_fast" >>"$work/demo.log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 400); do
    curl -fsS "http://127.0.0.1:$demo_port/healthz" >/dev/null 2>&1 && break
    sleep 0.025
  done
  curl -fsS "http://127.0.0.1:$demo_port/healthz" >/dev/null || { cat "$work/demo.log" >&2; exit 1; }
  "$target/debug/examples/load" faults "127.0.0.1:$demo_port" "$clients" \
    $((before + down + after)) "$work/marks" "$label" >>"$work/rows" &
  load_pid=$!
  sleep "$before"
  local pid
  pid=$(cat "$work/redis.pid")
  mark down
  if [ "$fault" = kill ]; then
    kill -9 "$pid"
    rm -f "$work/redis.pid"
    sleep "$down"
    start_redis "$port" --appendonly yes --appendfsync always
  else
    kill -STOP "$pid"
    sleep "$down"
    kill -CONT "$pid"
  fi
  mark up
  wait "$load_pid"
  load_pid=""
  stop_all
}

echo "==> 4 runs of $((before + down + after)) s: $clients clients, Redis down for ${down} s after ${before} s" >&2
for fault in kill stop; do
  for fail_fast in true false; do
    run "$fault" "$fail_fast"
  done
done

echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores, $(redis-server --version | awk '{sub("v=", "Redis ", $3); print $3}'), demo debug build"
echo
echo "| fault | error window | back → first 200 | failed p50 | failed p99 | failed | unclean | ok |"
echo "|---|---|---|---|---|---|---|---|"
cat "$work/rows"
