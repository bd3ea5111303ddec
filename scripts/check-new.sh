#!/usr/bin/env bash
# Usage: scripts/check-new.sh [WS_EDGE_BINARY]
#
# Checks what README's "Writing a handler" promises, as a new author would
# do it, in a temporary directory outside this workspace:
#   1. `ws-edge new hello` creates a project;
#   2. plain `cargo build --release` builds its component;
#   3. plain `cargo test` passes (the tests run through `ws-edge run`);
#   4. `ws-edge serve` serves it: a client gets the greeting and an echo;
#   5. the handler in README's "Writing a handler" builds in that project.
# WS_EDGE_BINARY defaults to target/release/ws-edge (`make build`). Only the
# cargo settings of the project itself apply: CARGO_TARGET_DIR and
# CARGO_BUILD_TARGET are unset. KEEP=1 keeps the temporary directory.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(realpath "${1:-$root/target/release/ws-edge}")"
[ -x "$bin" ] || { echo "check-new.sh: $bin missing: run 'make build'" >&2; exit 2; }
unset CARGO_TARGET_DIR CARGO_BUILD_TARGET

work="$(mktemp -d)"
server=""
cleanup() {
    [ -n "$server" ] && { kill -TERM "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
case "$work" in "$root"/*) echo "check-new.sh: $work is inside the workspace" >&2; exit 2;; esac

# `ws-edge` on PATH, as after `cargo install --path host`.
mkdir "$work/bin"
ln -s "$bin" "$work/bin/ws-edge"
export PATH="$work/bin:$PATH"

cd "$work"
echo "== ws-edge new hello" >&2
ws-edge new hello
cd hello
# What the project's README asks for once: the target, on the toolchain
# cargo picks here (the machine's default, not this repository's pin).
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "== rustup target add wasm32-wasip2" >&2
    rustup target add wasm32-wasip2
fi
echo "== cargo build --release" >&2
cargo build --release
wasm=target/wasm32-wasip2/release/hello.wasm
[ -f "$wasm" ] || { echo "check-new.sh: $wasm was not built" >&2; exit 1; }
echo "== cargo test" >&2
cargo test 2>&1 | tee "$work/test.log"
grep -q "test tests::greets_then_echoes ... ok" "$work/test.log" \
    || { echo "check-new.sh: the template's test did not run" >&2; exit 1; }

echo "== ws-edge serve $wasm" >&2
fifo="$work/serve.out"
mkfifo "$fifo"
ws-edge serve "$wasm" --listen 127.0.0.1:0 >"$fifo" 2>"$work/serve.log" &
server=$!
exec 3<"$fifo"
read -r line <&3
addr=${line#listening on ws://}
python3 - "$addr" <<'PY'
import os, socket, struct, sys

host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.sendall(b"GET /x HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, buf = buf.split(b"\r\n\r\n", 1)
assert head.startswith(b"HTTP/1.1 101"), head

def frame():
    global buf
    while len(buf) < 2 or len(buf) < 2 + (buf[1] & 0x7F):
        buf += s.recv(4096)
    n = buf[1] & 0x7F
    assert n < 126
    opcode, payload, buf = buf[0] & 0x0F, buf[2:2 + n], buf[2 + n:]
    return opcode, payload

assert frame() == (1, b"welcome"), "no greeting"
mask = os.urandom(4)
data = b"hello, ws-edge"
s.sendall(bytes([0x81, 0x80 | len(data)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))
assert frame() == (1, data), "no echo"
print("echo round trip ok")
PY
kill -TERM "$server"; wait "$server" || true; server=""
grep -q "connection to /x" "$work/serve.log" \
    || { echo "check-new.sh: the guest's log::info! line is not in the host log" >&2; cat "$work/serve.log" >&2; exit 1; }

echo "== README's handler" >&2
awk '/^## Writing a handler/ { on = 1; next } /^## / { on = 0 }
     on && /^```rust/ { code = 1; next } code && /^```/ { exit } code { print }' \
    "$root/README.md" >src/lib.rs
[ -s src/lib.rs ] || { echo "check-new.sh: no rust block in README's Writing a handler" >&2; exit 1; }
cargo build --release
echo "check-new.sh: ok" >&2
