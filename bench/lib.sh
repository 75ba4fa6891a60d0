# Sourced by run.sh and lost.sh (from bench/, after `set -euo pipefail`): the tools, the build,
# a private redis-server and every stack of $STACKS started on 127.0.0.1, each on its own
# database number, and checked to behave alike. Defines PID, PORT and DB (by stack), WORK (a
# temporary directory), RPORT and rcli; everything started stops when the calling script exits.
BENCH=${BENCH:-$PWD}
# cargo puts the binaries under CARGO_TARGET_DIR when it is set.
BIN_DIR=${CARGO_TARGET_DIR:-$BENCH/target}/release
SERVER=$BIN_DIR/bench-server
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
ensure_wrk() {
  if ! command -v wrk >/dev/null 2>&1; then
    echo "==> installing wrk (Debian package)" >&2
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
  fi
}

build_stacks() {
  command -v node >/dev/null || { echo "error: node (>= 20) and npm are required" >&2; exit 1; }
  echo "==> building the bench workspace (release)" >&2
  cargo build --release --quiet
  echo "==> npm ci (bench/node)" >&2
  (cd node && npm ci --silent --no-audit --no-fund >/dev/null)
}

# --- servers ---------------------------------------------------------------------------------
declare -A PID PORT DB
WORK=
cleanup() {
  for s in "${!PID[@]}"; do kill "${PID[$s]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  stop_private_redis
  [ -n "$WORK" ] && rm -rf "$WORK"
}
rcli() { redis-cli -p "$RPORT" "$@"; }

start_stacks() {
  WORK=$(mktemp -d -t redis-sessions-bench-XXXXXX)
  start_private_redis
  trap cleanup EXIT INT TERM
  RPORT=$REDIS_PORT
  local i=0 s url
  for s in $STACKS; do
    i=$((i + 1))
    DB[$s]=$i                 # one database per stack: keys never mix, MEMORY USAGE finds them
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
  local two read jar
  for s in $STACKS; do
    local up=""
    for _ in $(seq 200); do
      curl -s -o /dev/null "http://127.0.0.1:${PORT[$s]}/read" && { up=1; break; }
      sleep 0.05
    done
    if [ -z "$up" ]; then
      echo "error: $s did not start within 10 s; log: $(cat "$WORK/$s.log")" >&2
      exit 1
    fi
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
}
