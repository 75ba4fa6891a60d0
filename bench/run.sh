#!/usr/bin/env bash
# The HTTP comparison: the same tiny app (/login, /inc, /read) on every stack, loaded by wrk,
# measured side by side in interleaved rounds on one private redis-server. Writes
# results/results.md, results/results.csv, results/raw.csv and results/chart.svg.
#
#   bash bench/run.sh                     # everything (about 12 minutes)
#   ROUNDS=2 DURATION=3 bash bench/run.sh # shorter
#   STACKS="axum-ours axum-tsrs" PATHS="/read" bash bench/run.sh
#   BEFORE_BIN=/path/to/old/bench-server STACKS="axum-ours axum-ours@before axum-tsrs" \
#     OUT=/tmp/before-after bash bench/run.sh   # today's stacks against an earlier build's
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD

DURATION=${DURATION:-5}       # seconds per measured run
WARMUP=${WARMUP:-2}           # seconds of warm-up per stack and path
ROUNDS=${ROUNDS:-3}           # interleaved rounds: A B C ... A B C ...
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
STACKS=${STACKS:-"axum-ours axum-ours-sliding axum-ours-indexed axum-ours-cached axum-tsrs axum-memory axum-none actix-ours actix-ours-sliding actix-ours-cached actix-redis actix-cookie actix-none express"}
PATHS=${PATHS:-"/login /inc /read"}
OUT=${OUT:-$BENCH/results}
mkdir -p "$OUT"
# cargo puts the binary under CARGO_TARGET_DIR when it is set.
SERVER=${CARGO_TARGET_DIR:-$BENCH/target}/release/bench-server
# A stack named NAME@before runs NAME on $BEFORE_BIN: a bench-server built from an earlier
# commit, measured side by side with today's in the same interleaved rounds.
server_of() {
  case $1 in
    *@before) echo "${BEFORE_BIN:?a stack NAME@before needs BEFORE_BIN, an earlier bench-server}" ;;
    *) echo "$SERVER" ;;
  esac
}

. ../scripts/redis-env.sh

# Stacks that never talk to Redis: the ceilings (no sessions) and the session layer on a store
# without Redis (tower-sessions' MemoryStore, actix-session's CookieSessionStore). They have no
# stored session to measure; their Redis CPU and commands per request come out as 0.
no_redis() { case ${1%@before} in axum-none|actix-none|axum-memory|actix-cookie) return 0 ;; esac; return 1; }

# --- tools -----------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  echo "==> installing wrk (Debian package)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
fi
command -v node >/dev/null || { echo "error: node (>= 20) and npm are required" >&2; exit 1; }

echo "==> building the bench workspace (release)" >&2
cargo build --release --quiet
echo "==> npm ci (bench/node)" >&2
(cd node && npm ci --silent --no-audit --no-fund >/dev/null)

# --- servers ---------------------------------------------------------------------------------
WORK=$(mktemp -d -t redis-sessions-bench-XXXXXX)
declare -A PID PORT DB
cleanup() {
  for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_private_redis
  rm -rf "$WORK"
}
start_private_redis
trap cleanup EXIT INT TERM
RPORT=$REDIS_PORT
rcli() { redis-cli -p "$RPORT" "$@"; }

i=0
for s in $STACKS; do
  i=$((i + 1))
  DB[$s]=$i                   # one database per stack: keys never mix, MEMORY USAGE finds them
  PORT[$s]=$(free_port)
  url="redis://127.0.0.1:$RPORT/$i"
  if [ "$s" = express ]; then
    (cd node && PORT=${PORT[$s]} REDIS_URL=$url exec node server.js) 2>"$WORK/$s.log" &
  else
    "$(server_of "$s")" --stack "${s%@before}" --listen "127.0.0.1:${PORT[$s]}" --redis "$url" \
      2>"$WORK/$s.log" &
  fi
  PID[$s]=$!
done
for s in $STACKS; do
  for _ in $(seq 200); do
    curl -s -o /dev/null "http://127.0.0.1:${PORT[$s]}/read" && break
    sleep 0.05
  done
  # Sanity: identical behaviour on every stack.
  jar="$WORK/$s.jar"
  curl -sf -c "$jar" "http://127.0.0.1:${PORT[$s]}/login" >/dev/null
  curl -sf -b "$jar" -c "$jar" "http://127.0.0.1:${PORT[$s]}/inc" >/dev/null
  two=$(curl -sf -b "$jar" -c "$jar" "http://127.0.0.1:${PORT[$s]}/inc")
  read=$(curl -sf -b "$jar" "http://127.0.0.1:${PORT[$s]}/read")
  if [ "$s" != axum-none ] && [ "$s" != actix-none ] && { [ "$two" != 2 ] || [ "$read" != 2 ]; }; then
    echo "error: $s: /inc /inc /read gave $two, $read (want 2, 2); log: $(cat "$WORK/$s.log")" >&2
    exit 1
  fi
done
echo "==> $(echo $STACKS | wc -w) stacks up and behaving alike" >&2

# --- memory of one session ---------------------------------------------------------------------
echo "stack,key_bytes,value_bytes,memory_usage_bytes" >"$OUT/memory.csv"
for s in $STACKS; do
  if no_redis "$s"; then continue; fi
  rcli -n "${DB[$s]}" FLUSHDB >/dev/null          # the bench's own server
  jar="$WORK/$s.mem.jar"
  curl -sf -c "$jar" "http://127.0.0.1:${PORT[$s]}/login" >/dev/null
  curl -sf -b "$jar" "http://127.0.0.1:${PORT[$s]}/inc" >/dev/null
  key=$(rcli -n "${DB[$s]}" --scan | head -1)
  echo "$s,${#key},$(rcli -n "${DB[$s]}" STRLEN "$key"),$(rcli -n "${DB[$s]}" MEMORY USAGE "$key" SAMPLES 0)" >>"$OUT/memory.csv"
  rcli -n "${DB[$s]}" --no-raw GET "$key" >"$WORK/$s.value"
done

# --- load ----------------------------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Redis CPU seconds, total command calls (INFO itself excluded), EVALSHA calls, and calls of
# the commands the cached stacks' scripts run inside (commandstats counts those too).
redis_counters() {
  rcli INFO all | tr -d '\r' | awk -F'[:=,]' '
    /^used_cpu_(sys|user):/ { cpu += $2 }
    /^cmdstat_/ && !/^cmdstat_info:/ { calls += $3 }
    /^cmdstat_evalsha:/ { evalsha += $3 }
    /^cmdstat_(get|set|pttl|pexpire):/ { inner += $3 }
    END { printf "%.6f %d %d %d\n", cpu, calls, evalsha, inner }'
}
# Commands the clients sent between two counter readings: a run whose store sends EVALSHA
# (the cached stacks, whose store sends nothing else) does not count its scripts' inner calls.
sent_calls() {   # k0 e0 i0 k1 e1 i1 -> k1 as the clients' commands since k0
  if [ "$5" -gt "$2" ]; then echo $(($4 - ($6 - $3))); else echo "$4"; fi
}
run_wrk() {   # stack path seconds -> wrk output file
  wrk -t"$THREADS" -c"$CONNS" -d"$2"s --latency -s session.lua \
    "http://127.0.0.1:${PORT[$1]}" -- "$3" $((CONNS / THREADS))
}

echo "==> warm-up: ${WARMUP}s per stack and path" >&2
for s in $STACKS; do
  for p in $PATHS; do run_wrk "$s" "$WARMUP" "$p" >/dev/null; done
done

echo "round,path,stack,requests,seconds,rps,p50_us,p99_us,errors,server_cpu_us_per_req,redis_cpu_us_per_req,redis_cmds_per_req" >"$OUT/raw.csv"
HZ=$(getconf CLK_TCK)
total=$((ROUNDS * $(echo $PATHS | wc -w) * $(echo $STACKS | wc -w)))
n=0
for round in $(seq "$ROUNDS"); do
  for p in $PATHS; do
    for s in $STACKS; do
      n=$((n + 1))
      t0=$(cpu_ticks "${PID[$s]}"); read -r c0 k0 e0 i0 < <(redis_counters)
      run_wrk "$s" "$DURATION" "$p" >"$WORK/wrk.txt"
      sleep 0.2   # let in-flight replies land before reading the counters
      t1=$(cpu_ticks "${PID[$s]}"); read -r c1 k1 e1 i1 < <(redis_counters)
      k1=$(sent_calls "$k0" "$e0" "$i0" "$k1" "$e1" "$i1")
      row=$(python3 report.py parse-wrk "$WORK/wrk.txt" "$HZ" "$t0" "$t1" "$c0" "$c1" "$k0" "$k1")
      echo "$round,$p,$s,$row" >>"$OUT/raw.csv"
      printf '  [%3d/%d] round %s %-6s %-19s %s\n' "$n" "$total" "$round" "$p" "$s" "$row" >&2
    done
  done
done

# --- report --------------------------------------------------------------------------------------
{
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "nproc=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "kernel=$(uname -r)"
  echo "redis=$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/')"
  echo "wrk=$(wrk -v 2>&1 | head -1 | awk '{print $2}')"
  echo "rustc=$(rustc --version | awk '{print $2}')"
  echo "node=$(node --version)"
  echo "load=wrk -t$THREADS -c$CONNS -d${DURATION}s, warm-up ${WARMUP}s, $ROUNDS interleaved rounds"
  for crate in axum actix-web actix-session tower-sessions tower-sessions-memory-store tower-sessions-redis-store fred redis; do
    echo "crate.$crate=$(cargo tree -p bench-server --depth 2 -e normal --prefix none 2>/dev/null \
      | awk -v c="$crate" '$1 == c { print $2 }' | sort -u | tr '\n' ' ' | sed 's/ $//')"
  done
  for pkg in express express-session connect-redis redis; do
    echo "npm.$pkg=$(node -p "require('./node/node_modules/$pkg/package.json').version")"
  done
} >"$OUT/machine.txt"
for s in $STACKS; do
  [ -f "$WORK/$s.value" ] && { echo "== $s"; cat "$WORK/$s.value"; echo; }
done >"$OUT/values.txt"
python3 report.py report "$OUT"
echo "==> wrote $OUT/results.md, results.csv, raw.csv, chart.svg" >&2
