#!/usr/bin/env bash
# Memory per idle connection: opens N (default 10 000) idle WebSocket
# connections to ws-edge serving the bundled echo component and prints the
# server's RSS growth per connection (loopback only, bounded: ~20 s).
#
# Usage: bench/idle.sh [N] [--no-build]
#
# Environment: WS_EDGE_BIN (default: <repo>/target/release/ws-edge). Needs a hard
# open-file limit above N + 64 (`ulimit -Hn`); the load generator raises its soft
# limit (and the server's, which it starts) to the hard one.
set -euo pipefail

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
conns=10000
build=1
for arg in "$@"; do
    case "$arg" in
        --no-build) build=0 ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *[!0-9]*|"") echo "idle.sh: unknown argument $arg (see --help)" >&2; exit 2 ;;
        *) conns="$arg" ;;
    esac
done
if [[ $build == 1 ]]; then
    cargo build --release --quiet --manifest-path "$bench/Cargo.toml" --locked -p loadgen
fi
ws_edge_bin="${WS_EDGE_BIN:-$repo/target/release/ws-edge}"
if [[ ! -x "$ws_edge_bin" ]]; then
    echo "idle.sh: $ws_edge_bin not found (cargo build --release -p ws-edge-host)" >&2
    exit 2
fi
# Room for the connections plus the warm-up one.
max=$((conns + 16))
exec "$bench/target/release/loadgen" idle --conns "$conns" --server-cpu 0 -- \
    "$ws_edge_bin" serve --listen 127.0.0.1:0 --max-connections "$max"
