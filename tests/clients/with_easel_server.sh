#!/usr/bin/env bash
# Runs a client against a real easel-server: the built-in model, a throw-away data dir, a free loopback
# port, and a premium account made with the admin CLI. The command gets the base URL and the API key
# as its last two arguments; its exit status is the test's.
#   with_easel_server.sh <easel-server binary> <command> [args...]
set -euo pipefail
server=$1
shift
data=$(mktemp -d "${TMPDIR:-/tmp}/easel-client-XXXXXX")
log="$data/server.log"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

created=$(printf 'correct horse battery\n' |
  "$server" admin create-user --email client@example.com --plan premium --data-dir "$data/state")
key=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["api_key"])' <<<"$created")

"$server" --listen 127.0.0.1:0 --data-dir "$data/state" >"$log" 2>&1 &
pid=$!
port=""
for _ in $(seq 1200); do  # up to two minutes: the built-in model loads first
  port=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$log" | head -n1)
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$port" ]; then
  echo "FAIL: easel-server did not start:"
  cat "$log"
  exit 1
fi
echo "easel-server listening on 127.0.0.1:$port"
status=0
"$@" "http://127.0.0.1:$port" "$key" || status=$?
if [ $status -ne 0 ]; then
  echo "--- server log ---"
  tail -n 50 "$log"
fi
exit $status
