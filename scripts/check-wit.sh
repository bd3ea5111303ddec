#!/usr/bin/env bash
# Check that built components implement exactly the documented contract.
#
# Usage: scripts/check-wit.sh [COMPONENT.wasm...]
#        scripts/check-wit.sh --handler HANDLER.wasm...
#        scripts/check-wit.sh --self-test [COMPONENT.wasm]
#
#   COMPONENT  components to check (default: $COMPONENT, else
#              target/guests/wasm32-wasip2/guest/echo.wasm, what `make guests`
#              builds).
#
# For each component, with `wasm-tools component wit`:
#   1. it is a component (not a core module) and decodes;
#   2. it exports exactly ws-edge:websocket/websocket-request@0.2.0,
#      ws-edge:websocket/preview@0.2.0 and ws-edge:websocket/delivery@0.2.0
#      (world `websocket-tooling`, what the guest library builds);
#   3. those interfaces are the ones in wit/ item for item (types, fields,
#      cases, functions, resource methods; doc comments are ignored);
#   4. every import is the types-only ws-edge:websocket/types@0.2.0, the
#      host's ws-edge:websocket/pubsub@0.2.0 (only if the handler uses it),
#      wasi:logging/logging@0.1.0-draft (only with the guest's `log` feature) or a WASI
#      interface the Rust standard library pulls in (wasi:io, wasi:cli,
#      wasi:clocks, wasi:random, wasi:filesystem); anything else
#      (wasi:sockets, wasi:http, a non-WASI import) is an error;
#   5. `wasm-tools component targets` agrees that it targets the
#      `websocket-tooling` world once those WASI imports are allowed.
# --handler checks handler components instead (what `wac plug` plugs into the
# protocol component, examples/compose): the same steps with
# ws-edge:websocket/handler@0.2.0 and the `websocket-handler` world.
# --self-test checks COMPONENT (default as above), then builds wrong
# components (a core module; dummies from edited copies of wit/) and fails
# unless each one is rejected.
#
# Environment:
#   WIT_DIR     the contract (default: <repo>/wit)
#   ALLOW_IMPORTS  an extended regular expression: imports that match it
#               (whole) are allowed too, for example
#               'wasi:sockets/[a-z-]+@0\.2\.[0-9]+' for a Python handler
#               (scripts/polyglot.sh)
#   WASM_TOOLS  the wasm-tools binary (default: `wasm-tools` on PATH, else
#               ~/.cargo/bin/wasm-tools). When none is found, wasm-tools 1.263.0
#               is installed with `cargo install --locked` (about 4 minutes).
#
# Exit status: 0 when every component passes, 1 on a mismatch, 2 on usage or
# setup errors.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
wit_dir="${WIT_DIR:-$root/wit}"
version="0.2.0"
exported=(websocket-request preview delivery)
world="websocket-tooling"
if [[ "${1:-}" == "--handler" ]]; then
    shift
    (($# > 0)) || { echo "check-wit.sh: --handler needs at least one component" >&2; exit 2; }
    exported=(handler)
    world="websocket-handler"
fi
# The interfaces compared item for item: the exported ones, and for a server
# the shared `types` too (a handler's copy holds only the types it uses;
# `component targets` checks those).
iface_names=("${exported[@]}")
[[ "$world" == websocket-handler ]] || iface_names=(types "${exported[@]}")
# The exports expected, one per line, sorted.
interface="$(printf "ws-edge:websocket/%s@$version\n" "${exported[@]}" | sort)"
allowed_imports='^(wasi:(io|cli|clocks|random|filesystem)/[a-z0-9-]+@0\.2\.[0-9]+|wasi:logging/logging@0\.1\.0-draft|ws-edge:websocket/(types|pubsub)@'"${version//./\\.}"')$'
[[ -z "${ALLOW_IMPORTS:-}" ]] || allowed_imports="$allowed_imports|^(${ALLOW_IMPORTS})\$"

want_version=1.263.0
wasm_tools="${WASM_TOOLS:-}"
if [[ -z "$wasm_tools" ]]; then
    if command -v wasm-tools >/dev/null; then
        wasm_tools=wasm-tools
    elif [[ -x "${CARGO_HOME:-$HOME/.cargo}/bin/wasm-tools" ]]; then
        wasm_tools="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-tools"
    else
        echo "check-wit.sh: wasm-tools not found; installing wasm-tools $want_version (about 4 minutes)" >&2
        cargo install "wasm-tools@$want_version" --locked >&2
        wasm_tools="${CARGO_HOME:-$HOME/.cargo}/bin/wasm-tools"
    fi
fi
"$wasm_tools" --version >/dev/null || { echo "check-wit.sh: cannot run $wasm_tools" >&2; exit 2; }

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# The body of `interface NAME { ... }` in WIT text, one item per line, without
# comments, blank lines or indentation, so that the standalone package and the
# copy nested in a component's WIT compare equal.
interface_body() { # WIT-FILE NAME
    awk -v name="$2" '
        !inside && $1 == "interface" && $2 == name && $3 == "{" { inside = 1; depth = 1; next }
        inside {
            line = $0
            sub(/^[ \t]+/, "", line); sub(/[ \t]+$/, "", line)
            if (line == "" || line ~ /^\/\//) next
            depth += gsub(/\{/, "{", line) - gsub(/\}/, "}", line)
            if (depth == 0) exit
            print line
        }' "$1"
}

# interface_body with each top-level item (a record, variant, resource, ...
# with all its lines) on one line, items sorted: composition may reorder the
# items of an interface without changing it.
interface_items() { # WIT-FILE NAME
    interface_body "$1" "$2" | awk '
        { item = item (item == "" ? "" : " ") $0
          depth += gsub(/\{/, "{") - gsub(/\}/, "}")
          if (depth == 0) { print item; item = "" } }' | LC_ALL=C sort
}

# The top-level `import`/`export` lines of the component's root world.
world_items() { # WIT-FILE import|export
    awk -v kind="$2" '
        $1 == "world" && $3 == "{" { inside = 1; next }
        inside && $1 == "}" { exit }
        inside && $1 == kind { sub(/^[ \t]*[a-z]+[ \t]+/, ""); sub(/;$/, ""); print }' "$1"
}

"$wasm_tools" component wit "$wit_dir" >"$tmp/contract.wit" ||
    { echo "check-wit.sh: cannot read the contract in $wit_dir" >&2; exit 2; }
# The bodies of every checked interface, each under a `== NAME` line.
interface_bodies() { # WIT-FILE
    local name
    for name in "${iface_names[@]}"; do
        echo "== $name"
        interface_items "$1" "$name"
    done
}
interface_bodies "$tmp/contract.wit" >"$tmp/contract.iface"
for name in "${iface_names[@]}"; do
    [[ -n "$(interface_body "$tmp/contract.wit" "$name")" ]] ||
        { echo "check-wit.sh: no interface $name in $wit_dir" >&2; exit 2; }
done

# A world for `component targets`: websocket-server plus the WASI interfaces
# the component imports (their definitions come from the component itself).
targets_check() { # COMPONENT COMPONENT-WIT
    local dir="$tmp/targets" imports
    rm -rf "$dir" && mkdir -p "$dir/deps"
    cp "$wit_dir"/*.wit "$dir/"
    # The component's WIT holds every WASI package it uses as a nested
    # package: split them out as dependencies.
    awk -v out="$dir/deps" '
        /^package wasi:[a-z-]+@[0-9a-z.-]+ \{$/ { name = $2; gsub(/[:@]/, "-", name); file = out "/" name ".wit"; print "package " $2 ";" > file; inside = 1; depth = 1; next }
        inside {
            line = $0
            depth += gsub(/\{/, "{", line) - gsub(/\}/, "}", line)
            if (depth == 0) { inside = 0; close(file); next }
            print > file
        }' "$2"
    # Imports of this package itself (the types-only `types`) come with
    # the world; naming them again in the same package would be a cycle.
    imports="$(world_items "$2" import | grep -v '^ws-edge:websocket/' | sed 's/^/  import /; s/$/;/')"
    printf 'world ws-edge-check {\n  include %s;\n%s\n}\n' "$world" "$imports" >>"$dir/websocket.wit"
    "$wasm_tools" component targets "$dir" "$1" --world ws-edge-check
}

# Checks one component; prints what it found, returns 1 on any mismatch.
check_component() { # COMPONENT
    local c="$1" w="$tmp/component.wit" ok=0 exports imports bad
    if ! "$wasm_tools" component wit "$c" >"$w" 2>"$tmp/err"; then
        echo "FAIL: $c: not a decodable component: $(head -n 1 "$tmp/err")" >&2
        return 1
    fi
    exports="$(world_items "$w" export | sort)"
    imports="$(world_items "$w" import)"
    if [[ "$exports" != "$interface" ]]; then
        echo "FAIL: $c: exports [${exports//$'\n'/, }], expected exactly [${interface//$'\n'/, }]" >&2
        ok=1
    fi
    bad="$(grep -Ev "$allowed_imports" <<<"$imports" || true)"
    if [[ -n "$bad" ]]; then
        echo "FAIL: $c: imports beyond what std pulls in: ${bad//$'\n'/, }" >&2
        ok=1
    fi
    interface_bodies "$w" >"$tmp/component.iface"
    if ! diff -u --label "contract ($wit_dir)" --label "component ($c)" \
        "$tmp/contract.iface" "$tmp/component.iface" >"$tmp/diff"; then
        echo "FAIL: $c: interfaces ${iface_names[*]} differ from the contract:" >&2
        sed 's/^/    /' "$tmp/diff" >&2
        ok=1
    fi
    if ((ok == 0)) && ! targets_check "$c" "$w" >"$tmp/targets.out" 2>&1; then
        echo "FAIL: $c: wasm-tools component targets --world $world:" >&2
        sed 's/^/    /' "$tmp/targets.out" >&2
        ok=1
    fi
    if ((ok == 0)); then
        echo "ok: $c: exports ${interface//$'\n'/ } ($(grep -vc '^== ' "$tmp/component.iface") items, same as $wit_dir); imports ${imports//$'\n'/ }"
    fi
    return "$ok"
}

if [[ "${1:-}" != "--self-test" ]]; then
    (($# > 0)) || set -- "${COMPONENT:-$root/target/guests/wasm32-wasip2/guest/echo.wasm}"
    status=0
    for c in "$@"; do
        [[ -f "$c" ]] || { echo "check-wit.sh: no component at $c (run \`make guests\`)" >&2; exit 2; }
        check_component "$c" || status=1
    done
    exit "$status"
fi

# --self-test: the real component passes and every wrong one is rejected.
shift
component="${1:-${COMPONENT:-$root/target/guests/wasm32-wasip2/guest/echo.wasm}}"
[[ -f "$component" ]] || { echo "check-wit.sh: no component at $component (run \`make guests\`)" >&2; exit 2; }
failures=0
expect() { # pass|fail DESCRIPTION COMPONENT
    local got=pass out
    echo "--- $2"
    if [[ ! -f "$3" ]]; then
        echo "SELF-TEST FAIL: $2: could not build the test component" >&2
        failures=$((failures + 1))
        return
    fi
    out="$(check_component "$3" 2>&1)" || got=fail
    sed 's/^/    /' <<<"$out"
    if [[ "$got" == "$1" ]]; then
        echo "self-test ok: $2: ${got}ed as expected"
    else
        echo "SELF-TEST FAIL: $2: expected $1, got $got" >&2
        failures=$((failures + 1))
    fi
}

# A component built from an edited copy of the contract (sed EXPR on every
# .wit file); its core module is a dummy with the right signatures.
dummy() { # NAME SED-EXPR [EXTRA-WIT]
    local d="$tmp/wit-$1"
    mkdir -p "$d" && cp "$wit_dir"/*.wit "$d/"
    sed -i "$2" "$d"/*.wit
    [[ -z "${3:-}" ]] || printf '%s\n' "$3" >>"$d/websocket.wit"
    "$wasm_tools" component embed --dummy "$d" --world "${4:-$world}" -o "$tmp/$1.core.wasm" >&2
    "$wasm_tools" component new "$tmp/$1.core.wasm" -o "$tmp/$1.wasm" >&2
    echo "$tmp/$1.wasm"
}

expect pass "the component under test" "$component"
expect pass "a dummy built from the unchanged contract" "$(dummy same '')"
expect fail "a dummy whose transport.tls is a u8" "$(dummy tls-u8 's/tls: bool,/tls: u8,/')"
expect fail "a dummy without preview-head" "$(dummy no-preview '/preview-head: func/d')"
expect fail "a dummy whose transport.peer is a string" \
    "$(dummy peer-string 's/peer: option<socket-address>,/peer: option<string>,/')"
expect fail "a dummy with an extra function" \
    "$(dummy extra-func 's/^\( *\)preview-head: func/\1ping: func();\n\1preview-head: func/')"
expect fail "a dummy whose connection lacks tick" "$(dummy no-tick '/tick: func(now: milliseconds) -> transmit;/d')"
expect fail "a dummy of package version 0.1.0" "$(dummy v010 's/ws-edge:websocket@0.2.0/ws-edge:websocket@0.1.0/')"
expect fail "a dummy that also exports another interface" \
    "$(dummy extra-export '' $'interface extra { f: func(); }\nworld with-extra { include websocket-tooling; export extra; }' with-extra)"
expect fail "a dummy that imports a host function" \
    "$(dummy extra-import '' $'world with-import { include websocket-tooling; import log: func(msg: string); }' with-import)"
# The `targets` step on its own (the steps before it would catch these first).
for case in "pass:$component" "fail:$tmp/tls-u8.wasm" "fail:$tmp/no-tick.wasm"; do
    want="${case%%:*}" c="${case#*:}" got=pass
    "$wasm_tools" component wit "$c" >"$tmp/self.wit"
    targets_check "$c" "$tmp/self.wit" >"$tmp/self.out" 2>&1 || got=fail
    if [[ "$got" == "$want" ]]; then
        echo "self-test ok: component targets alone on $(basename "$c"): ${got}ed as expected"
    else
        echo "SELF-TEST FAIL: component targets alone on $c: expected $want, got $got" >&2
        sed 's/^/    /' "$tmp/self.out" >&2
        failures=$((failures + 1))
    fi
done
"$wasm_tools" parse -o "$tmp/core.wasm" <<<'(module (func (export "preview-head")))'
expect fail "a core module, not a component" "$tmp/core.wasm"

if ((failures > 0)); then
    echo "check-wit.sh --self-test: $failures case(s) wrong" >&2
    exit 1
fi
echo "check-wit.sh --self-test: all cases behaved as expected"
