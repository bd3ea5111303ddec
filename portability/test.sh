#!/usr/bin/env bash
# End-to-end test of a ws-edge component under a second runtime: transpile it
# with jco and serve it from the Node host in this directory (host.mjs).
#
# Usage: portability/test.sh [COMPONENT.wasm]
#   COMPONENT defaults to $COMPONENT, else the echo example that `make guests`
#   builds (target/guests/wasm32-wasip2/guest/echo.wasm). It must echo.
#   PANIC_COMPONENT (default: guest_panic.wasm next to echo.wasm) is used,
#   when it exists, to check that a trap ends only its own connection.
# Needs node >= 18 and npm. Installs the pinned npm packages (package-lock.json)
# into portability/node_modules on first use.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
component=${1:-${COMPONENT:-$root/target/guests/wasm32-wasip2/guest/echo.wasm}}
component=$(realpath "$component")
# An echo that traps on the message `panic` (tests/components/panic), if built.
panic=${PANIC_COMPONENT:-$root/target/guests/wasm32-wasip2/guest/guest_panic.wasm}
[[ -f $component ]] || { echo "test.sh: no component at $component (run \`make guests\`)" >&2; exit 2; }

cd "$here"
if [[ ! -x node_modules/.bin/jco ]] || ! node -e 'require.resolve("ws")' 2>/dev/null; then
  echo "test.sh: installing npm packages (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
transpile() { # COMPONENT OUT-DIR
    echo "test.sh: jco transpile $1"
    timeout 120 node_modules/.bin/jco transpile "$1" -o "$2" --name component --instantiation sync --quiet
}
transpile "$component" "$out/main"
set -- "$out/main/component.js"
if [[ -f $panic ]]; then
    transpile "$panic" "$out/panic"
    set -- "$@" "$out/panic/component.js"
else
    echo "test.sh: no $panic, skipping the trap-isolation case"
fi
timeout 60 node e2e.mjs "$@"
