#!/usr/bin/env bash
# Build the Python or JavaScript example handler and compose it with the
# protocol component.
#
# Usage: scripts/polyglot.sh py|js PROTOCOL.wasm OUT_DIR
#
#   py  examples/handler-py/app.py with componentize-py
#   js  examples/handler-js/app.js with componentize-js
#
# Writes OUT_DIR/handler_LANG.wasm (world websocket-handler, from wit/) and
# OUT_DIR/composed_LANG.wasm (scripts/compose.sh: `wac plug` into
# PROTOCOL.wasm), then checks the composed component with
# scripts/check-wit.sh (`wasm-tools component wit`).
#
# The toolchains are installed on first use, at pinned versions, under the
# example's own directory (both are ignored by git):
#   py  examples/handler-py/.venv, componentize-py==$COMPONENTIZE_PY
#       (python3 -m venv, pip install; ~70 MB)
#   js  examples/handler-js/node_modules, @bytecodealliance/componentize-js
#       as pinned by examples/handler-js/package-lock.json (npm ci; ~150 MB;
#       @bytecodealliance/preview2-shim is pinned next to it because
#       componentize-js 0.23.0 imports it when it runs but declares it only
#       as a development dependency)
# A later run reuses them; delete the directory to reinstall.
#
# The JavaScript handler is built with `--disable http` and
# `--disable fetch-event`: the ws-edge host does not provide
# wasi:http (docs/composition.md, "Outgoing HTTP").
#
# Exit status: 0 on success, 1 if a build, the composition or the check
# fails, 2 on usage or setup errors.
set -euo pipefail

COMPONENTIZE_PY=0.25.1

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" || $# -ne 3 ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    [[ $# -eq 3 ]] || exit 2
    exit 0
fi
lang="$1" protocol="$2" out_dir="$3"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ -f "$protocol" ]] || { echo "polyglot.sh: no protocol component at $protocol" >&2; exit 2; }
mkdir -p "$out_dir"
out_dir="$(cd "$out_dir" && pwd)"
handler="$out_dir/handler_$lang.wasm"
composed="$out_dir/composed_$lang.wasm"

case "$lang" in
py)
    src="$root/examples/handler-py"
    venv="$src/.venv"
    if [[ "$("$venv/bin/componentize-py" --version 2>/dev/null)" != "componentize-py $COMPONENTIZE_PY" ]]; then
        echo "polyglot.sh: installing componentize-py $COMPONENTIZE_PY in $venv" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY" >&2
    fi
    start=$SECONDS
    (cd "$src" && "$venv/bin/componentize-py" -d "$root/wit" -w websocket-handler \
        componentize app -o "$handler") || exit 1
    ;;
js)
    src="$root/examples/handler-js"
    bin="$src/node_modules/.bin/componentize-js"
    want="$(node -p 'require(process.argv[1]).packages["node_modules/@bytecodealliance/componentize-js"].version' \
        "$src/package-lock.json")"
    if [[ "$("$bin" --version 2>/dev/null)" != "$want" ]]; then
        echo "polyglot.sh: installing componentize-js $want in $src/node_modules (npm ci)" >&2
        npm ci --prefix "$src" --no-audit --no-fund --loglevel=error >&2
    fi
    # componentize-js wants the WIT inside its working directory: build in
    # a staging directory holding the source and a copy of wit/.
    stage="$out_dir/handler-js-build"
    rm -rf "$stage" && mkdir -p "$stage/wit"
    cp "$src/app.js" "$stage/"
    cp -r "$root/wit/." "$stage/wit/"
    start=$SECONDS
    (cd "$stage" && "$bin" app.js --wit wit --world-name websocket-handler \
        --disable http --disable fetch-event -o "$handler") || exit 1
    ;;
*)
    echo "polyglot.sh: unknown language '$lang' (py or js)" >&2
    exit 2
    ;;
esac
echo "polyglot.sh: $handler ($(wc -c <"$handler") bytes) built in $((SECONDS - start)) s"

"$root/scripts/compose.sh" "$protocol" "$handler" "$composed" || exit 1
# CPython links the wasi:sockets interfaces (its socket module); the host
# links them with every address refused.
ALLOW_IMPORTS='wasi:sockets/[a-z-]+@0\.2\.[0-9]+' "$root/scripts/check-wit.sh" "$composed" || exit 1
