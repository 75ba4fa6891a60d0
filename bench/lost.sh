#!/usr/bin/env bash
# The lost-fields bench: 8 keep-alive connections share one session and each sets its own field
# (f0..f7) to 1, 2, 3, ... (POST /set/f{i}/{v}); at the end GET /fields shows which fields are
# missing or older than the last value their connection got acknowledged (lost updates). Each
# stack runs as in run.sh (lib.sh: one private redis-server, a database per stack). Writes
# results/lost.md and results/lost.csv.
#
#   bash bench/lost.sh                        # every session stack, 5 rounds of 8 x 200 writes
#   ROUNDS=2 WRITES=50 STACKS="axum-ours-merged axum-tsrs" OUT=/tmp/lost bash bench/lost.sh
set -euo pipefail
cd "$(dirname "$0")"
BENCH=$PWD

ROUNDS=${ROUNDS:-5}           # rounds per stack, each on a new session
CONNS=${CONNS:-8}             # connections (and fields) per session
WRITES=${WRITES:-200}         # writes per connection and round
STACKS=${STACKS:-"axum-ours axum-ours-merged axum-tsrs actix-ours actix-ours-merged actix-redis express"}
OUT=${OUT:-$BENCH/results}
mkdir -p "$OUT"
. ./lib.sh
build_stacks
start_stacks

echo "stack,round,acked,errors,missing,stale,conns" >"$OUT/lost.csv"
for s in $STACKS; do
  echo "==> $s: $ROUNDS rounds, $CONNS connections x $WRITES writes on one session" >&2
  "$BIN_DIR/lost" --addr "127.0.0.1:${PORT[$s]}" --conns "$CONNS" --writes "$WRITES" \
    --rounds "$ROUNDS" | tail -n +2 | sed "s/^/$s,/" | tee -a "$OUT/lost.csv" >&2
done

# --- report --------------------------------------------------------------------------------------
{
  echo "# Lost fields: $CONNS connections, one session, one field each"
  echo
  echo "Measured $(date -u +%Y-%m-%dT%H:%MZ) by \`bench/lost.sh\` ($(nproc) cores, Redis" \
    "$(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/'), $ROUNDS rounds per stack). A round:" \
    "one \`/login\`, then $CONNS keep-alive connections with its cookie, connection *i* sending" \
    "\`POST /set/f{i}/1\`, \`/2\`, ... \`/$WRITES\` one after the other, then \`GET /fields\`." \
    "A field is lost when it is missing or holds a value older than the last one its" \
    "connection got acknowledged (\`200\` with the value). Raw rows: \`lost.csv\`."
  echo
  echo "| stack | writes acknowledged | errors | fields lost (missing + stale) | of | rounds | rounds with a loss |"
  echo "|---|---|---|---|---|---|---|"
  for s in $STACKS; do
    awk -F, -v s="$s" '$1 == s {
        n++; acked += $3; errors += $4; missing += $5; stale += $6; fields += $7
        if ($5 + $6 > 0) lossy++
      }
      END { printf "| `%s` | %d | %d | %d (%d + %d) | %d | %d | %d |\n",
              s, acked, errors, missing + stale, missing, stale, fields, n, lossy }' "$OUT/lost.csv"
  done
} >"$OUT/lost.md"
cat "$OUT/lost.md"
echo "==> wrote $OUT/lost.md and $OUT/lost.csv" >&2
