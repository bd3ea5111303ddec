#!/usr/bin/env bash
# Serves a ws-edge component with the Node host (host.mjs): transpiles it
# with jco, then runs the host in this process (exec), so signals sent to
# this script reach the host. What the conformance kit starts for the jco
# host (`make conformance`).
#
# Usage: portability/serve.sh COMPONENT.wasm [ADDR:PORT]
#   The transpiled module goes to $WS_EDGE_JCO_DIR (default target/jco under
#   the repository), one directory per component file name.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
[[ $# -ge 1 && -f $1 ]] || { echo "usage: serve.sh COMPONENT.wasm [ADDR:PORT]" >&2; exit 2; }
component=$(realpath "$1")
listen=${2:-127.0.0.1:8080}

if [[ ! -x $here/node_modules/.bin/jco ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) >&2
fi
out=${WS_EDGE_JCO_DIR:-$root/target/jco}/$(basename "$component" .wasm)
rm -rf "$out"
timeout 120 "$here/node_modules/.bin/jco" transpile "$component" -o "$out" \
    --name component --instantiation sync --quiet
exec node "$here/host.mjs" "$out/component.js" "$listen"
