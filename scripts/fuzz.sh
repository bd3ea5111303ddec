#!/usr/bin/env bash
# Run every cargo-fuzz target of fuzz/ for a bounded time, one after another.
#
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
#
#   SECONDS  time per target (default 60)
#   TARGET   targets to run (default: every target `cargo fuzz list` shows)
#
# Each target runs as
#   cargo +nightly fuzz run TARGET WORK SEED -- -max_total_time=SECONDS -dict=...
# where SEED is the committed fuzz/corpus/seed-TARGET/ and WORK is a scratch
# corpus outside git (fuzz/corpus/work-TARGET/, ignored). Crash inputs land in
# fuzz/artifacts/TARGET/.
#
# Environment:
#   FUZZ_NICE       niceness for the fuzzers (default 10)
#   FUZZ_SANITIZER  cargo-fuzz --sanitizer (default: cargo-fuzz's own, address);
#                   "none" runs many more executions (the targets' own
#                   assertions and Rust's checks stay on)
#   FUZZ_ARGS       extra libFuzzer flags, e.g. "-runs=10000000"
#   HOST_PATH_INSTANCE_REUSE
#                   host_path only: serve the inputs with instance reuse N
#                   (one instance meets many connections; default 1)
#
# host_path (the whole host, wasmtime included) is built with its `host`
# feature and, unless FUZZ_SANITIZER says otherwise, without a sanitizer
# (wasmtime's signal handlers and a sanitizer build of it do not mix well,
# and the uninstrumented build runs several times faster). It embeds the
# echo component from target/guests/ (`make guests` builds it) through
# WS_EDGE_PREBUILT_ECHO, so the host's build script does not build it again
# with the nightly toolchain. It is built
# with -O: cargo-fuzz would otherwise enable debug assertions in wasmtime and
# Cranelift too; fuzz/Cargo.toml keeps them (and overflow checks) on for
# ws-edge's own crates.
#
# Installs cargo-fuzz if it is missing (needs the nightly toolchain).
# Exit status: 0 when no target crashed, 1 when one did (the rest still run),
# 2 on usage or setup errors.
set -euo pipefail

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
    awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"
    exit 0
fi

seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
    echo "fuzz.sh: SECONDS must be a positive integer (got '$seconds')" >&2
    exit 2
fi
shift || true

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root/fuzz"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo +nightly install cargo-fuzz --locked
fi

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
if [[ ${#targets[@]} -eq 0 ]]; then
    echo "fuzz.sh: no fuzz targets found" >&2
    exit 2
fi

dict="$root/fuzz/http-websocket.dict"
failed=()
for t in "${targets[@]}"; do
    build=()
    if [[ -n "${FUZZ_SANITIZER:-}" ]]; then
        build+=(--sanitizer "$FUZZ_SANITIZER")
    elif [[ "$t" == host_path ]]; then
        build+=(--sanitizer none)
    fi
    if [[ "$t" == host_path ]]; then
        if [[ ! -f "$root/target/guests/wasm32-wasip2/guest/echo.wasm" ]]; then
            echo "fuzz.sh: host_path needs the guest components: run 'make guests' first" >&2
            exit 2
        fi
        # -O: no debug assertions in wasmtime/Cranelift (fuzz/Cargo.toml keeps
        # them, and overflow checks, on for ws-edge's own crates).
        build+=(--features host -O)
        export WS_EDGE_PREBUILT_ECHO="$root/target/guests/wasm32-wasip2/guest/echo.wasm"
    fi
    seed="corpus/seed-$t"
    work="corpus/work-$t"
    mkdir -p "$seed" "$work"
    flags=(-max_total_time="$seconds" -print_final_stats=1)
    # The HTTP/WebSocket token dictionary only helps the handshake targets.
    [[ "$t" == parse_* || "$t" == host_path ]] && flags+=(-dict="$dict")
    # shellcheck disable=SC2206
    flags+=(${FUZZ_ARGS:-})
    echo "== fuzz $t for ${seconds}s"
    if nice -n "${FUZZ_NICE:-10}" cargo +nightly fuzz run "${build[@]}" "$t" "$work" "$seed" -- "${flags[@]}"; then
        echo "== $t: no crash"
    else
        echo "== $t: FAILED (see fuzz/artifacts/$t/)" >&2
        failed+=("$t")
    fi
done

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "fuzz.sh: crashes in: ${failed[*]}" >&2
    exit 1
fi
echo "fuzz.sh: ${#targets[@]} target(s), no crash"
