#!/usr/bin/env bash
# Soak: bounded load on the demo (login, reads, writes, logouts; one session in ten abandoned
# to the idle timeout) for MINUTES (default 2), sampling the demo's RSS (VmRSS) and Redis's
# used_memory every 5 s into a CSV, then a verdict on growth. It measures; it asserts nothing.
#
#   bash scripts/soak.sh [MINUTES] [--restart-redis]
#
# --restart-redis restarts Redis (no persistence) midway: the demo must carry on (sessions
# lost in the restart answer 401 and the load logs in again).
# Starts its own redis-server and demo (debug build: `cargo build -p demo`) on free loopback
# ports and stops both on exit. CSV: $SOAK_CSV (default target/soak.csv).
# Verdict: the first quarter of the run is warm-up; of the remaining time, the mean of the last
# quarter is compared with the mean of the first quarter; growth over 10% is reported.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/redis-env.sh

minutes=2
restart=no
for a in "$@"; do
  case "$a" in
    --restart-redis) restart=yes ;;
    *[!0-9]* | '') echo "usage: soak.sh [MINUTES] [--restart-redis]" >&2; exit 2 ;;
    *) minutes=$a ;;
  esac
done
seconds=${SOAK_SECONDS:-$((minutes * 60))} # SOAK_SECONDS: a quick check
interval=5
threshold_pct=10
clients=${SOAK_CLIENTS:-4}
pause_ms=${SOAK_PAUSE_MS:-5}
target=${CARGO_TARGET_DIR:-target}
csv=${SOAK_CSV:-target/soak.csv}
mkdir -p "$(dirname "$csv")"

ensure_redis_server
echo "==> building the demo and the load tool (debug)" >&2
cargo build -q -p demo --bin demo --example load

work=$(mktemp -d -t redis-sessions-soak-XXXXXX)
demo_pid="" load_pid=""
cleanup() {
  if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
  if [ -n "$demo_pid" ]; then kill "$demo_pid" 2>/dev/null || true; fi
  if [ -f "$work/redis.pid" ]; then kill "$(cat "$work/redis.pid")" 2>/dev/null || true; fi
  sleep 0.2
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

redis_port=$(free_port)
start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$work" --daemonize yes --pidfile "$work/redis.pid" --logfile "$work/redis.log"
  for _ in $(seq 200); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "redis-server did not start" >&2
  return 1
}
start_redis

demo_port=$(free_port)
RUST_LOG=warn,tower_sessions=off "$target/debug/demo" --listen "127.0.0.1:$demo_port" \
  --redis-url "redis://127.0.0.1:$redis_port" --idle-timeout 30 >"$work/demo.log" 2>&1 &
demo_pid=$!
for _ in $(seq 200); do
  curl -fsS "http://127.0.0.1:$demo_port/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fsS "http://127.0.0.1:$demo_port/healthz" >/dev/null || { cat "$work/demo.log" >&2; exit 1; }

echo "==> soak: ${seconds} s, $clients clients (${pause_ms} ms between requests), restart Redis midway: $restart" >&2
"$target/debug/examples/load" soak "127.0.0.1:$demo_port" "$clients" "$seconds" "$pause_ms" \
  >"$work/totals" &
load_pid=$!

echo "elapsed_s,demo_rss_kb,redis_used_memory_bytes,redis_keys" >"$csv"
start=$(date +%s)
restarted=no
while kill -0 "$load_pid" 2>/dev/null; do
  now=$(($(date +%s) - start))
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$demo_pid/status" 2>/dev/null) ||
    { echo "the demo exited:" >&2; cat "$work/demo.log" >&2; exit 1; }
  mem=$(redis-cli -p "$redis_port" info memory 2>/dev/null | tr -d '\r' |
    awk -F: '$1 == "used_memory" {print $2}' || true)
  keys=$(redis-cli -p "$redis_port" dbsize 2>/dev/null || echo "")
  echo "$now,$rss,${mem:-},${keys:-}" >>"$csv"
  if [ "$restart" = yes ] && [ "$restarted" = no ] && [ "$now" -ge $((seconds / 2)) ]; then
    echo "==> restarting Redis at ${now} s" >&2
    kill "$(cat "$work/redis.pid")"
    while redis-cli -p "$redis_port" ping >/dev/null 2>&1; do sleep 0.05; done
    start_redis
    restarted=yes
  fi
  sleep "$interval"
done
wait "$load_pid"
load_pid=""
echo "==> load: $(cat "$work/totals")"

# Mean of column $2 over rows whose elapsed is in [$3, $4).
mean() {
  awk -F, -v c="$1" -v lo="$2" -v hi="$3" \
    'NR > 1 && $1 >= lo && $1 < hi && $c != "" {s += $c; n++} END {if (n) printf "%.0f", s / n; else print "nan"}' "$csv"
}
warm=$((seconds / 4))
rest=$((seconds - warm))
early_hi=$((warm + rest / 4))
late_lo=$((seconds - rest / 4))
verdict() { # name column unit
  local early late
  early=$(mean "$2" "$warm" "$early_hi")
  late=$(mean "$2" "$late_lo" $((seconds + interval)))
  if [ "$early" = nan ] || [ "$late" = nan ]; then
    echo "$1: not enough samples for a verdict (run longer)"
    return
  fi
  awk -v n="$1" -v e="$early" -v l="$late" -v u="$3" -v t="$threshold_pct" 'BEGIN {
    g = (e > 0) ? (l - e) * 100 / e : 0
    printf "%s: %s %s after warm-up, %s %s at the end (%+.1f%%): %s\n", n, e, u, l, u, g,
      (g > t) ? "GROWS (over " t "%)" : "no growth (within " t "%)"
  }'
}
first_rss=$(awk -F, 'NR == 2 {print $2}' "$csv")
last_rss=$(awk -F, 'END {print $2}' "$csv")
first_mem=$(awk -F, 'NR == 2 {print $3}' "$csv")
last_mem=$(awk -F, 'END {print $3}' "$csv")
echo "==> samples: $csv ($(($(wc -l <"$csv") - 1)) rows every ${interval} s)"
echo "demo RSS: first sample ${first_rss} kB, last ${last_rss} kB"
echo "Redis used_memory: first sample ${first_mem} B, last ${last_mem} B"
verdict "demo RSS" 2 kB
verdict "Redis used_memory" 3 B
