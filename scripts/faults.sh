#!/usr/bin/env bash
# Measures the demo under Redis faults and prints a markdown table (it measures; the fault
# suite in demo/tests/faults asserts the behaviour). Six runs, each with fresh Redis processes
# and a fresh demo on free loopback ports, and 6 HTTP clients incrementing their counters
# (demo/examples/load.rs, one connection per request) for 12 s; the fault comes 2 s in:
#   kill -9   a standalone Redis (AOF, appendfsync always) killed, restarted on the same port
#             after DOWN s;
#   SIGSTOP   a standalone Redis stopped, SIGCONT after DOWN s;
# each with the demo's fail-fast on and off (--fail-fast true|false); then, fail-fast on:
#   Sentinel  one primary, one replica, three sentinels (quorum 2, down-after 1 s), the demo on
#             the redis+sentinel:// URL; kill -9 of the primary (FAULTS_SENTINEL=failover:
#             SENTINEL FAILOVER instead);
#   Cluster   three primaries with a replica each (cluster-node-timeout 2 s), the demo on the
#             redis+cluster:// URL; kill -9 of the primary holding the most sessions.
# The two topologies are started by demo/examples/topology.rs (crates/redis-harness, as in the
# tests), which performs the fault on command and reports its times.
# Columns: the error window (start of the first failed request to the end of the last); "back
# → first 200": from Redis being back to the end of the first 200 of a request that started
# after that, on a client that had a failed request. "Back" is, for the standalone runs,
# Redis answering PING after the restart, or SIGCONT sent; for Sentinel and Cluster, the
# promotion: the killed primary's replica first answering ROLE as master (polled every
# 10 ms). Then the p50/p99 latency of the failed requests, failed requests, unclean answers
# (dropped connections, statuses other than a 503 with JSON, e.g. an empty 500), and
# successful requests.
# Bounded: each run takes 12 s plus its start (a cluster or a sentinel group: a few seconds),
# about two minutes in all plus the build; it stops everything it started, also on Ctrl-C.
#
#   bash scripts/faults.sh   # FAULTS_PROFILE=release (default) | debug: the build measured;
#                            # FAULTS_DOWN=5 (seconds a standalone Redis is down);
#                            # FAULTS_CLIENTS=6; FAULTS_SENTINEL=kill (default) | failover
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis-env.sh

before=2
down=${FAULTS_DOWN:-5}
after=5
seconds=$((before + down + after))
clients=${FAULTS_CLIENTS:-6}
profile=${FAULTS_PROFILE:-release}
sentinel_fault=${FAULTS_SENTINEL:-kill}
target=${CARGO_TARGET_DIR:-target}
case "$profile" in
  release) build_flags=(--release) ;;
  debug) build_flags=() ;;
  *) echo "FAULTS_PROFILE must be release or debug, not $profile" >&2; exit 2 ;;
esac
case "$sentinel_fault" in
  kill | failover) ;;
  *) echo "FAULTS_SENTINEL must be kill or failover, not $sentinel_fault" >&2; exit 2 ;;
esac
bin="$target/$profile"

ensure_redis_server
echo "==> building the demo, the load tool and the topology tool ($profile)" >&2
cargo build -q "${build_flags[@]}" -p demo --bin demo --example load --example topology

work=$(mktemp -d -t redis-sessions-faults-XXXXXX)
demo_pid="" load_pid="" topo_pid="" topo_in="" topo_out=""
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
stop_topology() {
  # The end of its stdin makes the topology tool kill its processes and exit.
  if [ -n "$topo_in" ]; then exec {topo_in}>&- 2>/dev/null || true; fi
  if [ -n "$topo_out" ]; then exec {topo_out}<&- 2>/dev/null || true; fi
  topo_in="" topo_out=""
  if [ -n "$topo_pid" ]; then
    for _ in $(seq 300); do
      kill -0 "$topo_pid" 2>/dev/null || break
      sleep 0.05
    done
    kill "$topo_pid" 2>/dev/null || true # SIGTERM: it still tears down
    wait "$topo_pid" 2>/dev/null || true
    topo_pid=""
  fi
}
stop_all() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  if [ -n "$demo_pid" ]; then
    kill "$demo_pid" 2>/dev/null || true
    wait "$demo_pid" 2>/dev/null || true
  fi
  demo_pid="" load_pid=""
  stop_topology
  stop_redis
}
cleanup() {
  stop_all
  rm -rf "$work"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

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

start_demo() { # redis URL, fail-fast (true|false)
  local demo_port
  demo_port=$(free_port)
  RUST_LOG=error,tower_sessions=off "$bin/demo" --listen "127.0.0.1:$demo_port" \
    --redis-url "$1" --fail-fast "$2" >>"$work/demo.log" 2>&1 &
  demo_pid=$!
  for _ in $(seq 400); do
    curl -fsS "http://127.0.0.1:$demo_port/healthz" >/dev/null 2>&1 && break
    sleep 0.025
  done
  curl -fsS "http://127.0.0.1:$demo_port/healthz" >/dev/null || { cat "$work/demo.log" >&2; exit 1; }
  demo_addr="127.0.0.1:$demo_port"
}

start_load() { # label
  "$bin/examples/load" faults "$demo_addr" "$clients" "$seconds" "$work/marks" "$1" \
    >>"$work/row" &
  load_pid=$!
}

finish_run() {
  wait "$load_pid"
  load_pid=""
  cat "$work/row" >>"$work/rows"
  stop_all
}

mark() { echo "$1 $(date +%s%3N)" >>"$work/marks"; }

run_standalone() { # fault (kill|stop), fail-fast (true|false)
  local fault=$1 fail_fast=$2 port label
  rm -rf "$work/data" "$work/marks" "$work/row"
  mkdir -p "$work/data"
  port=$(free_port)
  if [ "$fault" = kill ]; then
    start_redis "$port" --appendonly yes --appendfsync always
    label="\`kill -9\`, restart after ${down} s"
  else
    start_redis "$port" --appendonly no
    label="\`SIGSTOP\`, \`SIGCONT\` after ${down} s"
  fi
  if [ "$fail_fast" = true ]; then label="$label, fail-fast on"; else label="$label, fail-fast off"; fi
  start_demo "redis://127.0.0.1:$port" "$fail_fast"
  start_load "$label"
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
  finish_run
}

# The next line of the topology tool that starts with WORD, without WORD; fails on its
# `error` lines, its exit, or after SECONDS.
topo_expect() { # word, seconds
  local line
  while true; do
    if ! IFS= read -r -t "$2" -u "$topo_out" line; then
      echo "topology tool: no \`$1\` within $2 s" >&2
      cat "$work/topology.log" >&2
      return 1
    fi
    case "$line" in
      "$1 "* | "$1") echo "${line#"$1"}" | sed 's/^ //'; return 0 ;;
      error*) echo "topology tool: $line" >&2; return 1 ;;
    esac
  done
}

run_topology() { # sentinel|cluster
  local kind=$1 url label fault victim keys total at
  rm -f "$work/marks" "$work/row"
  coproc TOPO { exec "$bin/examples/topology" "$kind" 2>>"$work/topology.log"; }
  topo_pid=$TOPO_PID topo_out=${TOPO[0]} topo_in=${TOPO[1]}
  url=$(topo_expect url 120)
  topo_expect ready 10 >/dev/null
  if [ "$kind" = sentinel ]; then
    fault=$sentinel_fault
    if [ "$fault" = kill ]; then
      label="Sentinel: \`kill -9\` of the primary, fail-fast on"
    else
      label="Sentinel: \`SENTINEL FAILOVER\`, fail-fast on"
    fi
  else
    fault=kill
    label="Cluster: \`kill -9\` of the primary holding @held@ `sess:` keys, fail-fast on"
  fi
  start_demo "$url" true
  start_load "$label"
  sleep "$before"
  echo "$fault" >&"$topo_in"
  victim=$(topo_expect victim 10)
  read -r victim keys total <<<"$victim"
  at=$(topo_expect down 10)
  echo "down $at" >>"$work/marks"
  at=$(topo_expect up 30)
  echo "up $at" >>"$work/marks"
  topo_expect settled 60 >/dev/null
  echo "==> $kind: primary $victim killed (it held $keys of $total session keys)" >&2
  finish_run
  sed -i "s/@held@/$keys of $total/" "$work/rows"
}

echo "==> 6 runs of $seconds s, $clients clients, the fault after $before s" >&2
for fault in kill stop; do
  for fail_fast in true false; do
    run_standalone "$fault" "$fail_fast"
  done
done
run_topology sentinel
run_topology cluster

cpu=$(grep -m1 '^model name' /proc/cpuinfo | sed 's/.*: //')
echo
echo "$(date -u +%Y-%m-%d), $(nproc) cores ($cpu), $(redis-server --version | awk '{sub("v=", "Redis ", $3); print $3}'), demo $profile build"
echo
echo "| fault | error window | back → first 200 | failed p50 | failed p99 | failed | unclean | ok |"
echo "|---|---|---|---|---|---|---|---|"
cat "$work/rows"
