#!/usr/bin/env bash
# Instructions per warm handshake through wasmtime, per function, counted
# by callgrind (repeatable on a noisy machine, unlike timings).
#
#   bench/callgrind-handshake.sh [COMPONENT.wasm] [N]
#
# Without a component it builds the echo component unstripped (so the
# perf map names its functions) under target/guests-named. Only the
# handshakes themselves are counted (`--toggle-collect` on
# `BenchConn::handshake`: `handle-head` plus dropping the accepted
# connection); compilation and start-up are not.
#
#   LOOP=receive bench/callgrind-handshake.sh [COMPONENT.wasm] [N]
#
# counts `connection.receive` of one masked 64-byte text frame on an open
# connection instead (`BenchConn::receive`), and
#
#   LOOP=lifetime bench/callgrind-handshake.sh [COMPONENT.wasm] [N]
#
# a whole connection's guest lifetime without instance reuse: a fresh
# instance, `handle-head` and teardown (`GuestBench::lifetime`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "callgrind-handshake.sh: valgrind is not installed" >&2; exit 2; }

wasm="${1:-}"
n="${2:-2000}"
what="${LOOP:-handshake}"
case "$what" in
    handshake | receive) toggle="*BenchConn*::$what*" ;;
    lifetime) toggle="*GuestBench*::lifetime*" ;;
    *) echo "callgrind-handshake.sh: LOOP=$what: expected handshake, receive or lifetime" >&2; exit 2 ;;
esac
export LOOP="$what"
if [[ -z "$wasm" ]]; then
    CARGO_PROFILE_GUEST_STRIP=false cargo build -q --profile guest --target wasm32-wasip2 \
        --target-dir target/guests-named -p example-echo
    wasm=target/guests-named/wasm32-wasip2/guest/echo.wasm
fi
cargo build -q --release -p ws-edge-host --example handshake_loop
bin=target/release/examples/handshake_loop

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
# The perf map is written as /tmp/perf-PID.map; PID is valgrind's process.
# `*BenchConn*::`: since Rust 1.99 (v0 symbol mangling) the functions
# demangle as `<ws_edge_host::measure::BenchConn>::handshake`.
WASM="$wasm" WS_EDGE_PERFMAP=1 valgrind --tool=callgrind --callgrind-out-file="$tmp/out" \
    --toggle-collect="$toggle" "$bin" "$n" 2>"$tmp/log" >/dev/null
pid="$(sed -n 's/^==\([0-9]*\)==.*/\1/p' "$tmp/log" | head -1)"
map="/tmp/perf-$pid.map"
# The 1000 warm-up calls are counted too.
calls=$((n + 1000))
callgrind_annotate "$tmp/out" >"$tmp/annotated"
python3 - "$tmp/annotated" "$map" "$calls" "$what" <<'PY'
import bisect, re, sys
annotated, perf_map, calls, what = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
spans = []
try:
    for line in open(perf_map):
        start, size, name = line.split(" ", 2)
        spans.append((int(start, 16), int(size, 16), name.strip()))
except FileNotFoundError:
    pass
spans.sort()
starts = [s[0] for s in spans]
total, guest, per = 0, 0, {}
for line in open(annotated):
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    count, where = int(m.group(1).replace(",", "")), m.group(2)
    # Call-tree lines ("fn (3,001x)") are inclusive: skip them.
    if re.search(r"\([\d,]+x\)", where) or "events annotated" in where:
        continue
    if "PROGRAM TOTALS" in where:
        total = count
        continue
    jit = re.match(r"\?\?\?:0x([0-9a-f]+)", where)
    if jit:
        addr = int(jit.group(1), 16)
        i = bisect.bisect_right(starts, addr) - 1
        if i >= 0 and addr < spans[i][0] + spans[i][1]:
            name = "guest " + spans[i][2].split("::", 2)[-1]
            guest += count
        else:
            name = "jit " + where
    else:
        name = "host  " + where.split(":", 1)[-1]
    per[name] = per.get(name, 0) + count
print(f"{total / calls:8.0f}  instructions per {what} ({calls} calls)")
print(f"{guest / calls:8.0f}  of them in guest code")
for name, count in sorted(per.items(), key=lambda kv: -kv[1])[:25]:
    print(f"{count / calls:8.0f}  {name[:100]}")
PY
rm -f "$map"
