#!/usr/bin/env bash
# The HTTP comparison: the same tiny app (/login, /inc, /read) on every stack, loaded by wrk,
# measured side by side in interleaved rounds on one private redis-server. Writes
# results/results.md, results/results.csv, results/raw.csv, results/commands.csv and
# results/chart.svg.
#
#   bash bench/run.sh                     # everything (about 15 minutes)
#   ROUNDS=2 DURATION=3 bash bench/run.sh # shorter
#   STACKS="axum-ours axum-tsrs" PATHS="/read" bash bench/run.sh
#   BEFORE_BIN=/path/to/old/bench-server STACKS="axum-ours axum-ours@before axum-tsrs" \
#     OUT=/tmp/before-after bash bench/run.sh   # today's stacks against an earlier build's
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD

DURATION=${DURATION:-5}       # seconds per measured run
WARMUP=${WARMUP:-2}           # seconds of warm-up per stack and path
COUNT_SECONDS=${COUNT_SECONDS:-1}  # seconds per stack and path of the commands-sent pass
ROUNDS=${ROUNDS:-3}           # interleaved rounds: A B C ... A B C ...
THREADS=${THREADS:-2}
CONNS=${CONNS:-64}
STACKS=${STACKS:-"axum-ours axum-ours-sliding axum-ours-indexed axum-ours-cached axum-ours-merged axum-tsrs axum-memory axum-none actix-ours actix-ours-sliding actix-ours-cached actix-ours-merged actix-redis actix-cookie actix-none express"}
PATHS=${PATHS:-"/login /inc /read"}
OUT=${OUT:-$BENCH/results}
mkdir -p "$OUT"
. ./lib.sh
ensure_wrk
build_stacks
start_stacks

# --- memory of one session ---------------------------------------------------------------------
echo "stack,key_bytes,value_bytes,memory_usage_bytes" >"$OUT/memory.csv"
for s in $STACKS; do
  if no_redis "$s"; then continue; fi
  rcli -n "${DB[$s]}" FLUSHDB >/dev/null          # the bench's own server
  jar="$WORK/$s.mem.jar"
  curl -sf -c "$jar" "http://127.0.0.1:${PORT[$s]}/login" >/dev/null
  curl -sf -b "$jar" "http://127.0.0.1:${PORT[$s]}/inc" >/dev/null
  # The session's key, not the per-user index set (`~user~` in its name) of the indexed stack,
  # which a scan may return first.
  key=$(rcli -n "${DB[$s]}" --scan | grep -vF '~' | head -1)
  echo "$s,${#key},$(rcli -n "${DB[$s]}" STRLEN "$key"),$(rcli -n "${DB[$s]}" MEMORY USAGE "$key" SAMPLES 0)" >>"$OUT/memory.csv"
  rcli -n "${DB[$s]}" --no-raw GET "$key" >"$WORK/$s.value"
done

# --- load ----------------------------------------------------------------------------------------
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Redis CPU seconds and total command calls (INFO itself excluded). commandstats counts the
# commands a Lua script runs as well, under the same names as the clients' (Redis 7.0 has no
# counter that tells them apart: total_commands_processed counts both too), so these are the
# commands *run*; the commands *sent* come from the counting pass below.
redis_counters() {
  rcli INFO all | tr -d '\r' | awk -F'[:=,]' '
    /^used_cpu_(sys|user):/ { cpu += $2 }
    /^cmdstat_/ && !/^cmdstat_info:/ { calls += $3 }
    END { printf "%.6f %d\n", cpu, calls }'
}
run_wrk() {   # stack path seconds -> wrk output file
  wrk -t"$THREADS" -c"$CONNS" -d"$2"s --latency -s session.lua \
    "http://127.0.0.1:${PORT[$1]}" -- "$3" $((CONNS / THREADS))
}

echo "==> warm-up: ${WARMUP}s per stack and path" >&2
for s in $STACKS; do
  for p in $PATHS; do run_wrk "$s" "$WARMUP" "$p" >/dev/null; done
done

# --- commands sent per request: a counting pass ------------------------------------------------
# Per stack and path, COUNT_SECONDS of the same wrk load with MONITOR on: every command of the
# stack's database is one line, "[DB 127.0.0.1:PORT]" when a client sent it and "[DB lua]" when a
# script ran it. Exact for the pass's requests (logins of session.lua included, as in the timed
# runs). MONITOR costs Redis CPU, so it is never on during the timed runs.
echo "==> counting commands sent: ${COUNT_SECONDS}s per stack and path, MONITOR on" >&2
echo "stack,path,requests,sent,in_scripts" >"$OUT/commands.csv"
for s in $STACKS; do
  for p in $PATHS; do
    if no_redis "$s"; then echo "$s,$p,1,0,0" >>"$OUT/commands.csv"; continue; fi
    redis-cli -p "$RPORT" MONITOR >"$WORK/monitor" &   # not rcli: $! must be redis-cli itself
    mon=$!
    until grep -q '^OK' "$WORK/monitor" 2>/dev/null; do sleep 0.01; done   # MONITOR is on
    run_wrk "$s" "$COUNT_SECONDS" "$p" >"$WORK/wrk.txt"
    sleep 0.2   # in-flight replies land
    rcli -n 0 ECHO monitor-marker >/dev/null   # everything before it is in the file
    until grep -q '"monitor-marker"' "$WORK/monitor"; do sleep 0.01; done
    kill "$mon"; wait "$mon" 2>/dev/null || true
    requests=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$WORK/wrk.txt")
    db=${DB[$s]}
    awk -v db="[$db" -v s="$s" -v p="$p" -v n="$requests" '
      $2 == db { if ($3 == "lua]") lua++; else sent++ }
      END { printf "%s,%s,%d,%d,%d\n", s, p, n, sent, lua }' "$WORK/monitor" >>"$OUT/commands.csv"
    printf '  %-19s %-6s %s\n' "$s" "$p" "$(tail -1 "$OUT/commands.csv" \
      | awk -F, '{ printf "%.3f sent + %.3f in scripts per request (%d requests)", $4 / $3, $5 / $3, $3 }')" >&2
  done
done

echo "round,path,stack,requests,seconds,rps,p50_us,p99_us,errors,server_cpu_us_per_req,redis_cpu_us_per_req,redis_calls_per_req" >"$OUT/raw.csv"
HZ=$(getconf CLK_TCK)
total=$((ROUNDS * $(echo $PATHS | wc -w) * $(echo $STACKS | wc -w)))
n=0
for round in $(seq "$ROUNDS"); do
  for p in $PATHS; do
    for s in $STACKS; do
      n=$((n + 1))
      t0=$(cpu_ticks "${PID[$s]}"); read -r c0 k0 < <(redis_counters)
      run_wrk "$s" "$DURATION" "$p" >"$WORK/wrk.txt"
      sleep 0.2   # let in-flight replies land before reading the counters
      t1=$(cpu_ticks "${PID[$s]}"); read -r c1 k1 < <(redis_counters)
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
