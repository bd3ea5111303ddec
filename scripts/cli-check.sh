#!/usr/bin/env bash
# Drive a ws-edge component with the wasmtime CLI (`wasmtime run --invoke`).
#
# Usage: scripts/cli-check.sh [COMPONENT.wasm]
#
#   COMPONENT  a component of world ws-edge:websocket/websocket-tooling that
#              accepts plain upgrade requests (default: $COMPONENT, else
#              target/guests/wasm32-wasip2/guest/echo.wasm, what `make guests`
#              builds).
#
# Calls `preview-head` (the resource-free twin of `handle-head`; WAVE cannot
# express the `connection` resource) with raw request heads written as WAVE
# `list<u8>` literals, and checks the printed WAVE results:
#   1. the RFC 6455 §1.3 sample request       -> complete, 101, the RFC's
#      Sec-WebSocket-Accept value in `wire` (decoded from the printed list)
#   2. the same with Sec-WebSocket-Version: 7 -> complete, 426
#   3. the sample request without its final empty line -> incomplete
#
# Environment:
#   WASMTIME  the wasmtime binary (default: `wasmtime` on PATH, else
#             ~/.cargo/bin/wasmtime, whichever is wasmtime 50.0.1). When
#             neither is 50.0.1, wasmtime-cli 50.0.1 is installed with
#             `cargo install --locked` into ~/.cargo/bin, replacing another
#             version there (about 10 minutes on a quiet 2-core machine,
#             1.9 GB peak memory). A WASMTIME of another version is used as
#             given, with a warning.
#
# Exit status: 0 when every case passes, 1 on a failed check, 2 on usage or
# setup errors.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
component="${1:-${COMPONENT:-$root/target/guests/wasm32-wasip2/guest/echo.wasm}}"
[[ -f "$component" ]] || { echo "cli-check.sh: no component at $component (run \`make guests\`)" >&2; exit 2; }

# The version the host's wasmtime crate has (Cargo.toml); WAVE output and
# `--invoke` syntax are checked against it.
want_version=50.0.1
cargo_wasmtime="${CARGO_HOME:-$HOME/.cargo}/bin/wasmtime"
# The version a wasmtime binary reports ("wasmtime 50.0.1 (...)"), or nothing.
version_of() { "$1" --version 2>/dev/null | awk '{ print $2; exit }'; }
wasmtime="${WASMTIME:-}"
if [[ -z "$wasmtime" ]]; then
    found=()
    previous=
    for candidate in "$(command -v wasmtime || true)" "$cargo_wasmtime"; do
        [[ -n "$candidate" && -x "$candidate" ]] || continue
        # ~/.cargo/bin/wasmtime is often the one on PATH.
        [[ -n "$previous" && "$candidate" -ef "$previous" ]] && continue
        previous="$candidate"
        have="$(version_of "$candidate")"
        if [[ "$have" == "$want_version" ]]; then
            wasmtime="$candidate"
            break
        fi
        found+=("$candidate is ${have:-unusable}")
    done
    if [[ -z "$wasmtime" ]]; then
        seen="$(IFS=,; echo "${found[*]}")"
        echo "cli-check.sh: no wasmtime $want_version${seen:+ (${seen//,/, })};" \
            "installing wasmtime-cli $want_version (about 10 minutes)" >&2
        # From the checkout, so that its pinned toolchain (rust-toolchain.toml)
        # builds it.
        (cd "$root" && cargo install "wasmtime-cli@$want_version" --locked --force) >&2
        wasmtime="$cargo_wasmtime"
    fi
fi
version="$("$wasmtime" --version)" || { echo "cli-check.sh: cannot run $wasmtime" >&2; exit 2; }
echo "cli-check.sh: $version, $component"
[[ "$version" == *" $want_version"* ]] ||
    echo "cli-check.sh: warning: tested with wasmtime $want_version; output format may differ" >&2

# A request head as a WAVE list<u8>: "[71, 69, 84, ...]".
wave_bytes() {
    printf '%s' "$1" | od -An -tu1 -v | tr -s ' \n' ' ' | sed 's/^ //; s/ $//; s/ /, /g; s/^/[/; s/$/]/'
}

# Decodes the first `wire: [...]` list in a printed WAVE value into text.
wire_text() {
    grep -o 'wire: \[[0-9, ]*\]' <<<"$1" | head -n 1 | tr -cs '0-9' '\n' | awk 'NF { printf "%c", $1 }'
}

# Invokes preview-head on HEAD with TRANSPORT (a WAVE record); prints the result.
preview_head() {
    local call="ws-edge:websocket/preview.preview-head@0.2.0($(wave_bytes "$1"), $2)"
    timeout 60 "$wasmtime" run -C cache=n --invoke "$call" "$component"
}

failures=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1" >&2; failures=$((failures + 1)); }

# The RFC 6455 §1.3 sample request head, with Sec-WebSocket-Version $1.
sample() {
    head=$'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n'
    head+=$'Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
    head+=$'Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n'
    head+="Sec-WebSocket-Version: $1"$'\r\n\r\n'
}

# 1. The RFC sample: 101 with the RFC's accept value.
sample 13
out="$(preview_head "$head" '{peer: some({address: ipv4((203, 0, 113, 7)), port: 51234}), tls: false}')" ||
    { echo "FAIL: wasmtime run failed on the sample request" >&2; exit 1; }
wire="$(wire_text "$out")"
lines="${wire//$'\r'/}"
sed 's/^/    | /' <<<"$lines"
if [[ "$out" == "complete({status: 101, "* && "$wire" == "HTTP/1.1 101 "* ]]; then
    ok "RFC 6455 §1.3 sample request -> complete, status 101, wire starts with the 101 status line"
else
    bad "sample request: expected complete with status 101, got: ${out:0:160}"
fi
if grep -qix 'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=' <<<"$lines"; then
    ok "wire carries Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo= (the RFC's value)"
else
    bad "sample request: the RFC's Sec-WebSocket-Accept value is not in the wire bytes"
fi

# 2. An unsupported version: 426.
sample 7
out="$(preview_head "$head" '{peer: some({address: ipv6((8193, 3512, 0, 0, 0, 0, 0, 1)), port: 443}), tls: false}')" ||
    { echo "FAIL: wasmtime run failed on the version 7 request" >&2; exit 1; }
wire="$(wire_text "$out")"
if [[ "$out" == "complete({status: 426, "* && "$wire" == "HTTP/1.1 426 "* ]]; then
    ok "Sec-WebSocket-Version: 7 -> complete, status 426"
else
    bad "version 7: expected complete with status 426, got: ${out:0:160}"
fi

# 3. Without its final empty line the head is incomplete.
sample 13
out="$(preview_head "${head%$'\r\n'}" '{peer: none, tls: true}')" ||
    { echo "FAIL: wasmtime run failed on the partial request" >&2; exit 1; }
if [[ "$out" == "incomplete" ]]; then
    ok "head without its final empty line -> incomplete"
else
    bad "partial head: expected incomplete, got: ${out:0:160}"
fi

if ((failures > 0)); then
    echo "cli-check.sh: $failures check(s) failed" >&2
    exit 1
fi
echo "cli-check.sh: all checks passed"
