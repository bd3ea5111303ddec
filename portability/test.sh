#!/usr/bin/env bash
# End-to-end test of a ws-edge component under a second runtime: transpile it
# with jco and serve it from the Node host in this directory (host.mjs).
#
# Usage: portability/test.sh [COMPONENT.wasm]
#   COMPONENT defaults to $COMPONENT, else the echo example that `make guests`
#   builds (target/guests/wasm32-wasip2/guest/echo.wasm). It must echo.
# Needs node >= 18 and npm. Installs the pinned npm packages (package-lock.json)
# into portability/node_modules on first use.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
component=${1:-${COMPONENT:-$root/target/guests/wasm32-wasip2/guest/echo.wasm}}
component=$(realpath "$component")
[[ -f $component ]] || { echo "test.sh: no component at $component (run \`make guests\`)" >&2; exit 2; }

cd "$here"
if [[ ! -x node_modules/.bin/jco ]] || ! node -e 'require.resolve("ws")' 2>/dev/null; then
  echo "test.sh: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo "test.sh: jco transpile $component"
timeout 120 node_modules/.bin/jco transpile "$component" -o "$out/gen" --name component --quiet
# The generated module imports @bytecodealliance/preview2-shim: resolve it
# from this directory's node_modules.
ln -s "$here/node_modules" "$out/node_modules"
timeout 60 node e2e.mjs "$out/gen/component.js"
