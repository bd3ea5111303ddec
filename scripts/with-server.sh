#!/usr/bin/env bash
# Usage: scripts/with-server.sh [COMPONENT.wasm] [SERVE FLAGS...] -- COMMAND [ARGS...]
# Starts `ws-edge serve` on a free port, runs COMMAND with the server's
# ws:// URL appended as its last argument, then stops the server (SIGTERM).
# Everything before `--` goes to `ws-edge serve` as it is, for example
# `--env WS_EDGE_MAX_MESSAGE=16777216` (the component's configuration).
set -euo pipefail
cd "$(dirname "$0")/.."

serve_args=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do serve_args+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 [COMPONENT.wasm] [SERVE FLAGS...] -- COMMAND [ARGS...]" >&2; exit 2; }

bin=target/release/ws-edge
[ -x "$bin" ] || { echo "$bin missing: run 'cargo build --release -p ws-edge-host'" >&2; exit 1; }

fifo=$(mktemp -u)
mkfifo "$fifo"
"$bin" serve "${serve_args[@]}" --listen 127.0.0.1:0 >"$fifo" &
server=$!
trap 'kill -TERM $server 2>/dev/null || true; wait $server 2>/dev/null || true; rm -f "$fifo"' EXIT
exec 3<"$fifo"
read -r line <&3
url=${line#listening on }
echo "server pid $server at $url" >&2
"$@" "$url"
