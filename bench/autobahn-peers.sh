#!/usr/bin/env bash
# Autobahn|Testsuite (cases 1-7, 9, 10) against every benchmark peer, to show
# what correct (and not quite correct) servers score with scripts/autobahn.sh.
#
# Usage: bench/autobahn-peers.sh [OUT.md]   (default: docs/bench-autobahn-peers.md)
#
# Builds the Rust peers and installs the Node peers like bench/run.sh. Takes
# about 30-50 s per peer. Exit status is 0 even when a peer has FAILED cases
# (that is what this documents); it is non-zero only if a run could not happen.
set -euo pipefail

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
out="${1:-$repo/docs/bench-autobahn-peers.md}"
tmp="$bench/results/autobahn"
mkdir -p "$tmp" "$(dirname "$out")"

cargo build --release --quiet --manifest-path "$bench/Cargo.toml" --locked
if [[ ! -d "$bench/peers/node/node_modules/ws" || ! -d "$bench/peers/node/node_modules/websocket" ]]; then
    (cd "$bench/peers/node" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

names=(tokio-tungstenite fastwebsockets node-ws node-websocket)
declare -A cmds=(
    [tokio-tungstenite]="$bench/target/release/peer-tokio-tungstenite"
    [fastwebsockets]="$bench/target/release/peer-fastwebsockets"
    [node-ws]="node $bench/peers/node/ws-echo.js"
    [node-websocket]="node $bench/peers/node/websocket-echo.js"
)

server_pid=""
stop_server() {
    if [[ -n "$server_pid" ]]; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

{
    echo "# Autobahn|Testsuite results of the benchmark peers"
    echo
    echo "Produced by \`bench/autobahn-peers.sh\` (each peer started with \`--listen 127.0.0.1:0\`, then"
    echo "\`scripts/autobahn.sh URL\`). These are the reference points for ws-edge's own run."
    echo
    echo "The FAILED cases of the Node peers are their default size limits, not framing bugs:"
    echo "WebSocket-Node's defaults (\`maxReceivedFrameSize\` 64 KiB, \`maxReceivedMessageSize\` 1 MiB)"
    echo "close the 9.x cases (messages/frames up to 16 MiB) with 1009; ws 8.23's"
    echo "\`maxFragments\`/\`maxBufferedChunks\` limits close 9.3.1, 9.3.2, 9.4.1 and 9.4.2 (4 MiB in"
    echo "64- or 256-byte pieces) with 1008. A server needs limits of at least 16 MiB per message and"
    echo "per frame to pass 9.x."
    echo
} >"$out.tmp"

for name in "${names[@]}"; do
    log="$tmp/$name.server.log"
    # shellcheck disable=SC2086 # the command is split on purpose
    ${cmds[$name]} --listen 127.0.0.1:0 >"$log" 2>&1 &
    server_pid=$!
    url=""
    for _ in $(seq 100); do
        url=$(sed -n 's/^listening on //p' "$log" | head -n1)
        [[ -n "$url" ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if [[ -z "$url" ]]; then
        echo "autobahn-peers.sh: $name did not start (see $log)" >&2
        exit 2
    fi
    echo "== $name at $url" >&2
    rc=0
    AUTOBAHN_AGENT="$name" "$repo/scripts/autobahn.sh" "$url" "$tmp/$name.md" >/dev/null || rc=$?
    stop_server
    if [[ $rc -ge 2 ]]; then
        echo "autobahn-peers.sh: the Autobahn run against $name did not complete" >&2
        exit 2
    fi
    # Demote the per-peer title one level under this document's title.
    sed 's/^# Autobahn|Testsuite fuzzingclient summary/## '"$name"'/' "$tmp/$name.md" >>"$out.tmp"
    echo >>"$out.tmp"
done
mv "$out.tmp" "$out"
echo "wrote $out" >&2
