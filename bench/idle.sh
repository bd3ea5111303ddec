#!/usr/bin/env bash
# Memory per idle connection, side by side: opens N (default 10 000) idle
# WebSocket connections to each server in turn (ws-edge serving the bundled
# echo component with a fresh instance per connection, fastwebsockets,
# tokio-tungstenite) and prints each server's RSS and PSS growth per
# connection (loopback only, bounded: ~20 s per server).
#
# Usage: bench/idle.sh [N] [--only NAME[,NAME...]] [--no-build]
#
# RSS counts a page once per mapping of it; PSS divides a shared page among
# its mappings. They differ for ws-edge only: wasmtime maps the component's
# data image copy-on-write into every instance's memory, so each instance's
# read-only data pages count in RSS once per connection but are one copy in
# memory (docs/bench.md, "Memory per idle connection").
#
# Environment: WS_EDGE_BIN (default: <repo>/target/release/ws-edge). Needs a hard
# open-file limit above N + 64 (`ulimit -Hn`); the load generator raises its soft
# limit (and the server's, which it starts) to the hard one.
set -euo pipefail

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
conns=10000
build=1
only="ws-edge,fastwebsockets,tokio-tungstenite"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --no-build) build=0 ;;
        --only) only="${2:?--only needs a list}"; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *[!0-9]*|"") echo "idle.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
        *) conns="$1" ;;
    esac
    shift
done
if [[ $build == 1 ]]; then
    cargo build --release --quiet --manifest-path "$bench/Cargo.toml" --locked \
        -p loadgen -p peer-fastwebsockets -p peer-tokio-tungstenite
fi
ws_edge_bin="${WS_EDGE_BIN:-$repo/target/release/ws-edge}"
# Room for the connections plus the warm-up one.
max=$((conns + 16))
declare -A cmds=(
    [ws-edge]="$ws_edge_bin serve --listen 127.0.0.1:0 --max-connections $max"
    [fastwebsockets]="$bench/target/release/peer-fastwebsockets --listen 127.0.0.1:0"
    [tokio-tungstenite]="$bench/target/release/peer-tokio-tungstenite --listen 127.0.0.1:0"
)
status=0
IFS=, read -ra names <<<"$only"
for name in "${names[@]}"; do
    cmd="${cmds[$name]:-}"
    if [[ -z $cmd ]]; then
        echo "idle.sh: unknown server $name (ws-edge, fastwebsockets, tokio-tungstenite)" >&2
        exit 2
    fi
    if [[ ! -x ${cmd%% *} ]]; then
        echo "idle.sh: ${cmd%% *} not found (cargo build --release -p ws-edge-host, or drop --no-build)" >&2
        exit 2
    fi
    printf '%-18s ' "$name"
    # shellcheck disable=SC2086 # the command is split into words on purpose
    "$bench/target/release/loadgen" idle --conns "$conns" --server-cpu 0 -- $cmd || status=1
done
exit "$status"
