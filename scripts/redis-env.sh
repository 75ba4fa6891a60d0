# Sourced by the scripts: installs redis-server when missing and starts a private one.
# After `start_private_redis`, REDIS_URL points at it; it stops when the calling script exits.

ensure_redis_server() {
  # redis-cli (redis-tools, a dependency of the package) builds the test clusters.
  if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
    echo "==> installing redis-server (Debian package)" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  fi
  # The openssl command makes the certificates of the TLS tests.
  if ! command -v openssl >/dev/null 2>&1; then
    echo "==> installing openssl (Debian package)" >&2
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq openssl >/dev/null
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_private_redis() {
  ensure_redis_server
  REDIS_DIR=$(mktemp -d -t redis-sessions-XXXXXX)
  REDIS_PORT=$(free_port)
  # 64 databases: the HTTP bench gives each of its stacks one of its own.
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --databases 64 \
    --dir "$REDIS_DIR" --daemonize yes --pidfile "$REDIS_DIR/redis.pid" \
    --logfile "$REDIS_DIR/redis.log"
  trap stop_private_redis EXIT INT TERM
  for _ in $(seq 100); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  echo "==> private redis-server on $REDIS_URL (data in $REDIS_DIR)" >&2
}

stop_private_redis() {
  if [ -n "${REDIS_DIR:-}" ] && [ -f "$REDIS_DIR/redis.pid" ]; then
    kill "$(cat "$REDIS_DIR/redis.pid")" 2>/dev/null || true
    sleep 0.1
    rm -rf "$REDIS_DIR"
  fi
}
