#!/usr/bin/env bash
# Compose the generic protocol component with a handler component.
#
# Usage: scripts/compose.sh PROTOCOL.wasm HANDLER.wasm OUT.wasm
#
#   PROTOCOL  a component that imports ws-edge:websocket/handler@0.2.0 and
#             exports websocket-request (examples/compose/protocol)
#   HANDLER   a component that exports ws-edge:websocket/handler@0.2.0, in
#             any language (examples/compose/handler)
#   OUT       the composed component: exports websocket-request, imports
#             only what the two import from WASI
#
# Runs `wac plug PROTOCOL --plug HANDLER -o OUT`.
#
# Environment:
#   WAC  the wac binary (default: `wac` on PATH, else ~/.cargo/bin/wac). When
#        none is found, wac-cli is installed with `cargo install
#        wac-cli@0.12.0 --locked` (a few minutes; the version these scripts
#        were tested with).
#
# Exit status: 0 on success, 1 if wac fails, 2 on usage or setup errors.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" || $# -ne 3 ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    [[ $# -eq 3 ]] || exit 2
    exit 0
fi
protocol="$1" handler="$2" out="$3"
for f in "$protocol" "$handler"; do
    [[ -f "$f" ]] || { echo "compose.sh: no component at $f" >&2; exit 2; }
done

wac="${WAC:-}"
if [[ -z "$wac" ]]; then
    if command -v wac >/dev/null; then
        wac=wac
    elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/wac" ]]; then
        wac="${CARGO_HOME:-$HOME/.cargo}/bin/wac"
    else
        echo "compose.sh: wac not found; installing wac-cli (a few minutes)" >&2
        cargo install wac-cli@0.12.0 --locked >&2
        wac="${CARGO_HOME:-$HOME/.cargo}/bin/wac"
    fi
fi
"$wac" --version >/dev/null || { echo "compose.sh: cannot run $wac" >&2; exit 2; }

mkdir -p "$(dirname "$out")"
"$wac" plug "$protocol" --plug "$handler" -o "$out" || exit 1
echo "compose.sh: $out ($(wc -c <"$out") bytes) = $(basename "$protocol") + $(basename "$handler")"
