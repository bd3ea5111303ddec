#!/usr/bin/env bash
# ws-edge benchmarks side by side with the peers, in one command.
#
# Usage: bench/run.sh [--quick] [--only NAME[,NAME...]] [--scenarios LIST] [--no-build]
#                     [--out-dir DIR]
#
#   --quick     short bounded smoke run (~1.5 s per scenario), for CI; writes its
#               report under bench/results/ instead of docs/ unless --out-dir is given.
#               Unless --only is given it runs (and builds) only ws-edge and
#               tokio-tungstenite, so a cold smoke run stays within a few minutes;
#               its broadcast is a 100-subscriber smoke
#   --only      run only these servers (ws-edge, ws-edge-reuse, ws-edge-warm, tokio-tungstenite, fastwebsockets,
#               node-ws, node-websocket; deflate also ws-edge-level6, node-ws-deflate,
#               python-websockets; broadcast: tokio-tungstenite, node-ws,
#               ws-edge-forward, ws-edge-handler, and `ws-edge` selects both of the latter;
#               crosshost: ws-edge or ws-edge-forward; tls: ws-edge, ws-edge-warm, tokio-tungstenite)
#   --scenarios run only these of handshake,echo64,echo64k,deflate,broadcast,crosshost,tls
#               (default: all)
#   --no-build  do not build the Rust peers / install the Node peers
#   --out-dir   where bench.md and bench.svg go (default: docs/, or bench/results/ with --quick)
#
# Environment: WS_EDGE_BIN (default: <repo>/target/release/ws-edge, built with
# `cargo build --release -p ws-edge-host`), CHAT_WASM (default:
# <repo>/target/guests/wasm32-wasip2/guest/chat.wasm, examples/chat built by `make guests`;
# the ws-edge broadcast rows are skipped without it), BENCH_DURATION / BENCH_WARMUP (seconds
# per measurement, default 3 / 0.5, quick 1.5 / 0.3), BENCH_ROUNDS (default 3, quick 1),
# BENCH_CONNS (default 16), BENCH_BROADCAST (broadcast runs as SUBSCRIBERS:MESSAGES_PER_S
# pairs, default "1000:50 10000:5", quick "100:50"), BENCH_CROSSHOST (crosshost runs as
# SUBSCRIBERS:MESSAGES_PER_S pairs, default "10:1000"), NATS_SERVER (default: nats-server
# on PATH, else /usr/sbin/nats-server; the crosshost scenario needs it).
#
# crosshost (issue 14: cross-host delivery through NATS at 1 000 messages/s, p99 <= 2 ms):
# starts `nats-server -a 127.0.0.1 -p -1` (a free port) and two ws-edge hosts serving the
# chat example with `--broker nats://127.0.0.1:PORT`; the subscribers join a room on host B,
# the publisher the same room on host A (`loadgen broadcast --publish-url`). Every process
# it starts is stopped when the script exits.
#
# tls (issue 16 item 9: tls-handshake and tls-echo64, the handshake and echo64
# scenarios over TLS, ws-edge and ws-edge-warm next to tokio-tungstenite + tokio-rustls): generates a
# throwaway CA and an ECDSA P-256 server certificate for localhost and 127.0.0.1 with
# `openssl` once per run (in a temporary directory, removed on exit; without openssl the
# scenario is skipped with a message), serves it with `ws-edge serve --tls-cert --tls-key`
# and `peer-tokio-tungstenite --tls-cert --tls-key`, and the load generator trusts that CA
# only (`loadgen run --ca`; no session resumption, so every connection is a full handshake).
#
# System calls (issue 17): after the timed rounds, each request/response and TLS
# scenario runs once more per server, paced at BENCH_SYSCALL_RATE operations/s in all
# (default 1000; handshakes at a fifth of it, TLS scenarios at half) for BENCH_SYSCALL_DURATION seconds
# (default 2, quick 1), with `strace -c -f` attached to the server for the window only
# (`loadgen run --syscalls`); the report's last table gives system calls per operation
# by call. BENCH_SYSCALLS=0 skips the pass; without strace it is skipped with a message.
#
# Every server is started as `SERVER --listen 127.0.0.1:0`, pinned to CPU 0, and must
# print `listening on ws://ADDR`; the load generator runs on CPU 1. The table shows
# ratios to tokio-tungstenite (the broadcast table also to node-ws). The
# permessage-deflate scenarios (`deflate`: deflate-json and deflate-random, 64 KiB
# echoed with deflate negotiated, bytes on the wire counted) run against the servers
# that have it (ws-edge, ws-edge-level6, node-ws-deflate, python-websockets; ratios to
# node-ws-deflate), followed by memory per idle connection with deflate negotiated
# (BENCH_IDLE_CONNS connections, default 500, quick 100). Exit status is non-zero if
# any server failed a scenario.
set -euo pipefail

bench="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$bench/.." && pwd)"
quick=0
build=1
only=""
out_dir=""
all_scenarios="handshake,echo64,echo64k,deflate,broadcast,crosshost,tls"
scenarios="$all_scenarios"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --no-build) build=0 ;;
        --only) only="${2:?--only needs a list}"; shift ;;
        --out-dir) out_dir="${2:?--out-dir needs a directory}"; shift ;;
        --scenarios) scenarios="${2:?--scenarios needs a list}"; shift ;;
        -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
        *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

if [[ $quick == 1 ]]; then
    duration="${BENCH_DURATION:-1.5}"
    warmup="${BENCH_WARMUP:-0.3}"
    rounds="${BENCH_ROUNDS:-1}"
    out_dir="${out_dir:-$bench/results}"
    only="${only:-ws-edge,tokio-tungstenite}"
    broadcast_runs="${BENCH_BROADCAST:-100:50}"
    crosshost_runs="${BENCH_CROSSHOST:-10:1000}"
else
    duration="${BENCH_DURATION:-3}"
    warmup="${BENCH_WARMUP:-0.5}"
    rounds="${BENCH_ROUNDS:-3}"
    out_dir="${out_dir:-$repo/docs}"
    broadcast_runs="${BENCH_BROADCAST:-1000:50 10000:5}"
    crosshost_runs="${BENCH_CROSSHOST:-10:1000}"
fi
echo_scenarios=()
for scenario in handshake echo64 echo64k; do
    [[ ",$scenarios," == *",$scenario,"* ]] && echo_scenarios+=("$scenario")
done
broadcast=0
[[ ",$scenarios," == *",broadcast,"* ]] && broadcast=1
crosshost=0
[[ ",$scenarios," == *",crosshost,"* ]] && crosshost=1
tls_scenarios=()
[[ ",$scenarios," == *",tls,"* ]] && tls_scenarios=(tls-handshake tls-echo64)
deflate=0
deflate_scenarios=()
if [[ ",$scenarios," == *",deflate,"* ]]; then
    deflate=1
    deflate_scenarios=(deflate-json deflate-random)
fi
for scenario in ${scenarios//,/ }; do
    case "$scenario" in
        handshake | echo64 | echo64k | deflate | broadcast | crosshost | tls) ;;
        *) echo "run.sh: unknown scenario $scenario (handshake, echo64, echo64k, deflate, broadcast, crosshost, tls)" >&2; exit 2 ;;
    esac
done
for run in $crosshost_runs; do
    [[ "$run" =~ ^[0-9]+:[0-9.]+$ ]] || { echo "run.sh: bad BENCH_CROSSHOST entry $run (SUBSCRIBERS:RATE)" >&2; exit 2; }
done
conns="${BENCH_CONNS:-16}"
mkdir -p "$bench/results" "$out_dir"

# --- build -------------------------------------------------------------------
if [[ $build == 1 ]]; then
    # Build only what will run: the load generator plus the selected Rust peers.
    packages=(-p loadgen)
    for peer in tokio-tungstenite fastwebsockets; do
        if [[ -z "$only" || ",$only," == *",$peer,"* ]]; then
            packages+=(-p "peer-$peer")
        fi
    done
    echo "== building the load generator and Rust peers (release): ${packages[*]}" >&2
    cargo build --release --quiet --manifest-path "$bench/Cargo.toml" --locked "${packages[@]}"
    if [[ -z "$only" || ",$only," == *",node-"* ]] &&
        [[ ! -d "$bench/peers/node/node_modules/ws" || ! -d "$bench/peers/node/node_modules/websocket" ]]; then
        echo "== installing the Node peers (npm ci)" >&2
        (cd "$bench/peers/node" && npm ci --no-audit --no-fund --loglevel=error >&2)
    fi
fi
loadgen="$bench/target/release/loadgen"

# --- CPU pinning --------------------------------------------------------------
cpus=$(nproc --all)
if [[ $cpus -ge 2 ]] && command -v taskset >/dev/null; then
    server_cpu=0
    server_pin=(taskset -c 0)
    client=(taskset -c 1)
    pinning="server on CPU 0, load generator on CPU 1"
else
    server_cpu=none
    server_pin=()
    client=()
    pinning="not pinned (fewer than 2 CPUs or no taskset)"
fi

# --- servers ------------------------------------------------------------------
ws_edge_bin="${WS_EDGE_BIN:-$repo/target/release/ws-edge}"
# examples/chat builds as chat.wasm (its library is named `chat`).
chat_wasm="${CHAT_WASM:-$repo/target/guests/wasm32-wasip2/guest/chat.wasm}"
names=(ws-edge ws-edge-reuse ws-edge-warm tokio-tungstenite fastwebsockets node-ws node-websocket
    ws-edge-level6 node-ws-deflate python-websockets)
# The servers of the permessage-deflate scenarios (the others do not have it).
deflate_names=" ws-edge ws-edge-level6 node-ws-deflate python-websockets "
python="$repo/.venv/bin/python"
declare -A cmds=(
    [ws-edge]="$ws_edge_bin serve --listen 127.0.0.1:0"
    [ws-edge-reuse]="$ws_edge_bin serve --listen 127.0.0.1:0 --instance-reuse 1000"
    [ws-edge-warm]="$ws_edge_bin serve --listen 127.0.0.1:0 --warm-memory-kib 128"
    [ws-edge-level6]="$ws_edge_bin serve --listen 127.0.0.1:0 --env WS_EDGE_DEFLATE_LEVEL=6"
    [tokio-tungstenite]="$bench/target/release/peer-tokio-tungstenite --listen 127.0.0.1:0"
    [fastwebsockets]="$bench/target/release/peer-fastwebsockets --listen 127.0.0.1:0"
    [node-ws]="node $bench/peers/node/ws-echo.js --listen 127.0.0.1:0"
    [node-websocket]="node $bench/peers/node/websocket-echo.js --listen 127.0.0.1:0"
    [node-ws-deflate]="node $bench/peers/node/ws-deflate-echo.js --listen 127.0.0.1:0"
    [python-websockets]="$python $bench/peers/python/websockets_echo.py --listen 127.0.0.1:0"
)

active=()
skipped=""
[[ ${#echo_scenarios[@]} -eq 0 && $deflate == 0 ]] && names=()
for name in "${names[@]}"; do
    if [[ -n "$only" && ",$only," != *",$name,"* ]]; then
        continue
    fi
    if [[ $name == ws-edge* && ! -x "$ws_edge_bin" ]]; then
        echo "== SKIPPING ws-edge: $ws_edge_bin not found (build it with \`cargo build --release -p ws-edge-host\` at the repo root, or set WS_EDGE_BIN)" >&2
        skipped="ws-edge (binary not built)"
        continue
    fi
    if [[ $name == python-websockets ]] && ! "$python" -c 'import websockets' 2>/dev/null; then
        echo "== SKIPPING python-websockets: $python with websockets not found (make test-deps)" >&2
        skipped+="${skipped:+, }python-websockets (no .venv)"
        continue
    fi
    active+=("$name")
done
plain=()
deflate_active=()
for name in "${active[@]}"; do
    [[ $name == ws-edge-level6 || $name == node-ws-deflate || $name == python-websockets ]] ||
        plain+=("$name")
    [[ $deflate == 1 && $deflate_names == *" $name "* ]] && deflate_active+=("$name")
done

# Broadcast: one publisher, many subscribers of one room (`loadgen broadcast`).
# The ws-edge modes serve the chat example (examples/chat) with its delivery
# mode set; the subscribers need more than the default 10 000 connections.
max_subscribers=0
for run in $broadcast_runs; do
    subscribers="${run%%:*}"
    [[ "$run" =~ ^[0-9]+:[0-9.]+$ ]] || { echo "run.sh: bad BENCH_BROADCAST entry $run (SUBSCRIBERS:RATE)" >&2; exit 2; }
    ((subscribers > max_subscribers)) && max_subscribers=$subscribers
done
ws_edge_chat="$ws_edge_bin serve --listen 127.0.0.1:0 --max-connections $((max_subscribers + 100)) $chat_wasm"
broadcast_names=(ws-edge-forward ws-edge-handler tokio-tungstenite node-ws)
declare -A broadcast_cmds=(
    [ws-edge-forward]="$ws_edge_chat --env CHAT_DELIVERY=forward"
    [ws-edge-handler]="$ws_edge_chat --env CHAT_DELIVERY=handler"
    [tokio-tungstenite]="$bench/target/release/peer-tokio-tungstenite-broadcast --listen 127.0.0.1:0"
    [node-ws]="node $bench/peers/node/ws-broadcast.js --listen 127.0.0.1:0"
)
broadcast_active=()
if [[ $broadcast == 1 ]]; then
    for name in "${broadcast_names[@]}"; do
        if [[ -n "$only" && ",$only," != *",$name,"* ]] &&
            ! [[ $name == ws-edge-* && ",$only," == *",ws-edge,"* ]]; then
            continue
        fi
        if [[ $name == ws-edge-* && ! -x "$ws_edge_bin" ]]; then
            [[ -n $skipped ]] || echo "== SKIPPING ws-edge: $ws_edge_bin not found (build it with \`cargo build --release -p ws-edge-host\` at the repo root, or set WS_EDGE_BIN)" >&2
            skipped="ws-edge (binary not built)"
            continue
        fi
        if [[ $name == ws-edge-* && ! -f "$chat_wasm" ]]; then
            if [[ $name == ws-edge-forward ]]; then
                echo "== SKIPPING ws-edge broadcast (forward, handler): chat component $chat_wasm not found (build it with \`make guests\` at the repo root, or set CHAT_WASM)" >&2
                skipped+="${skipped:+; }ws-edge broadcast (chat component not built)"
            fi
            continue
        fi
        broadcast_active+=("$name")
    done
fi

# Cross-host: two ws-edge hosts sharing a local NATS server (run_crosshost).
crosshost_active=()
nats_server=""
if [[ $crosshost == 1 ]] &&
    [[ -z "$only" || ",$only," == *",ws-edge,"* || ",$only," == *",ws-edge-forward,"* ]]; then
    nats_server="${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}"
    if [[ ! -x "$nats_server" ]]; then
        echo "run.sh: the crosshost scenario needs nats-server, not found at $nats_server (install it, e.g. \`apt-get install nats-server\`, set NATS_SERVER, or leave crosshost out of --scenarios)" >&2
        exit 2
    fi
    if [[ ! -x "$ws_edge_bin" ]]; then
        [[ -n $skipped ]] || echo "== SKIPPING ws-edge: $ws_edge_bin not found (build it with \`cargo build --release -p ws-edge-host\` at the repo root, or set WS_EDGE_BIN)" >&2
        skipped="ws-edge (binary not built)"
    elif [[ ! -f "$chat_wasm" ]]; then
        echo "== SKIPPING crosshost: chat component $chat_wasm not found (build it with \`make guests\` at the repo root, or set CHAT_WASM)" >&2
        skipped+="${skipped:+; }crosshost (chat component not built)"
    else
        crosshost_active=(ws-edge-forward)
    fi
fi

# TLS: the servers that have it, with a throwaway CA and server certificate.
tls_names=(ws-edge ws-edge-warm tokio-tungstenite)
tls_active=()
tls_dir=""
if [[ ${#tls_scenarios[@]} -gt 0 ]]; then
    for name in "${tls_names[@]}"; do
        [[ -n "$only" && ",$only," != *",$name,"* ]] && continue
        if [[ $name == ws-edge* && ! -x "$ws_edge_bin" ]]; then
            [[ -n $skipped ]] || echo "== SKIPPING ws-edge: $ws_edge_bin not found (build it with \`cargo build --release -p ws-edge-host\` at the repo root, or set WS_EDGE_BIN)" >&2
            skipped="ws-edge (binary not built)"
            continue
        fi
        tls_active+=("$name")
    done
    if [[ ${#tls_active[@]} -gt 0 ]] && ! command -v openssl >/dev/null; then
        echo "== SKIPPING tls: openssl not found (it makes the run's throwaway certificates)" >&2
        skipped+="${skipped:+; }tls (no openssl)"
        tls_active=()
    fi
fi
if [[ ${#tls_active[@]} -gt 0 ]]; then
    tls_dir=$(mktemp -d "${TMPDIR:-/tmp}/ws-edge-bench-tls.XXXXXX")
    # A CA and a server certificate it signs, both ECDSA P-256, valid for 2 days.
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
    printf '%s
' "subjectAltName=DNS:localhost,IP:127.0.0.1" "basicConstraints=critical,CA:FALSE" \
        "keyUsage=critical,digitalSignature" "extendedKeyUsage=serverAuth" >"$tls_dir/server.ext"
    if ! {
        openssl req -x509 "${ec[@]}" -days 2 -subj "/CN=ws-edge bench CA" \
            -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
            -keyout "$tls_dir/ca.key" -out "$tls_dir/ca.pem" &&
            openssl req -new "${ec[@]}" -subj "/CN=localhost" \
                -keyout "$tls_dir/server.key" -out "$tls_dir/server.csr" &&
            openssl x509 -req -in "$tls_dir/server.csr" -CA "$tls_dir/ca.pem" -CAkey "$tls_dir/ca.key" \
                -CAcreateserial -days 2 -extfile "$tls_dir/server.ext" -out "$tls_dir/server.pem"
    } >"$tls_dir/openssl.log" 2>&1; then
        cat "$tls_dir/openssl.log" >&2
        echo "run.sh: making the TLS certificates with openssl failed" >&2
        rm -rf "$tls_dir"
        exit 1
    fi
fi
tls_files="--tls-cert $tls_dir/server.pem --tls-key $tls_dir/server.key"
declare -A tls_cmds=(
    [ws-edge]="$ws_edge_bin serve --listen 127.0.0.1:0 $tls_files"
    [ws-edge-warm]="$ws_edge_bin serve --listen 127.0.0.1:0 --warm-memory-kib 128 $tls_files"
    [tokio-tungstenite]="$bench/target/release/peer-tokio-tungstenite --listen 127.0.0.1:0 $tls_files"
)

# Processes started by this script (crosshost), stopped on exit.
started_pids=()
stop_started() {
    local pid
    for pid in "${started_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${started_pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    started_pids=()
}
on_exit() {
    stop_started
    [[ -z $tls_dir ]] || rm -rf "$tls_dir"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_ready LOG SED_SCRIPT PID WHAT: prints the first match of SED_SCRIPT in
# LOG once it appears (15 s at most); fails if PID exits first.
wait_ready() {
    local i found
    for ((i = 0; i < 150; i++)); do
        found=$(sed -n "$2" "$1" | head -n1)
        if [[ -n $found ]]; then
            echo "$found"
            return 0
        fi
        if ! kill -0 "$3" 2>/dev/null; then
            echo "run.sh: $4 exited before it was ready (log: $1)" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "run.sh: $4 printed no address within 15 s (log: $1)" >&2
    return 1
}

# run_crosshost SUBSCRIBERS RATE: nats-server and ws-edge hosts A and B (all
# pinned with the servers), the publisher on A and the subscribers on B.
run_crosshost() {
    local subscribers="$1" rate="$2" log="$bench/results/crosshost" nats_addr addr_a addr_b pid_a pid_b status=0
    "${server_pin[@]}" "$nats_server" -a 127.0.0.1 -p -1 >"$log-nats.log" 2>&1 &
    started_pids+=("$!")
    nats_addr=$(wait_ready "$log-nats.log" 's/.*Listening for client connections on \([0-9.]*:[0-9]*\).*/\1/p' $! nats-server) || { stop_started; return 1; }
    local host=("$ws_edge_bin" serve --listen 127.0.0.1:0 --broker "nats://$nats_addr" "$chat_wasm" --env CHAT_DELIVERY=forward)
    RUST_LOG="${RUST_LOG:-warn}" "${server_pin[@]}" "${host[@]}" >"$log-host-a.log" 2>&1 &
    pid_a=$!
    started_pids+=("$pid_a")
    RUST_LOG="${RUST_LOG:-warn}" "${server_pin[@]}" "${host[@]}" >"$log-host-b.log" 2>&1 &
    pid_b=$!
    started_pids+=("$pid_b")
    addr_a=$(wait_ready "$log-host-a.log" 's/.*listening on ws:\/\/\([^ ]*\).*/\1/p' "$pid_a" "ws-edge host A") &&
        addr_b=$(wait_ready "$log-host-b.log" 's/.*listening on ws:\/\/\([^ ]*\).*/\1/p' "$pid_b" "ws-edge host B") || { stop_started; return 1; }
    "${client[@]}" "$loadgen" broadcast --name ws-edge-forward \
        --subscribers "$subscribers" --rate "$rate" \
        --duration "$duration" --warmup "$warmup" --out "$results" \
        --url "ws://$addr_b" --pid "$pid_b" \
        --publish-url "ws://$addr_a" --publish-pid "$pid_a" || status=1
    stop_started
    return $status
}

if [[ ${#plain[@]} -eq 0 && ${#deflate_active[@]} -eq 0 && ${#broadcast_active[@]} -eq 0 &&
    ${#crosshost_active[@]} -eq 0 && ${#tls_active[@]} -eq 0 ]]; then
    echo "run.sh: no server to run" >&2
    exit 2
fi

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results="$bench/results/run-$stamp.jsonl"
: >"$results"
failed=()
start=$(date +%s)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# Scenario by scenario, servers interleaved (and rotated each round), so every
# server of a scenario is measured under the same background conditions.
run_one() { # NAME SCENARIO
    local name=$1 scenario=$2 cmd=${cmds[$1]:-} tls_args=()
    if [[ $scenario == tls-* ]]; then
        cmd=${tls_cmds[$name]}
        tls_args=(--ca "$tls_dir/ca.pem")
    fi
    # shellcheck disable=SC2086 # the command is split on purpose
    if ! "${client[@]}" "$loadgen" run --name "$name" --scenario "$scenario" "${tls_args[@]}" \
        --duration "$duration" --warmup "$warmup" --conns "$conns" \
        --server-cpu "$server_cpu" --out "$results" \
        --server-log "$bench/results/$name" -- $cmd; then
        [[ " ${failed[*]} " == *" $name "* ]] || failed+=("$name")
    fi
}
for ((round = 0; round < rounds; round++)); do
    for scenario in "${echo_scenarios[@]}" "${deflate_scenarios[@]}" "${tls_scenarios[@]}"; do
        if [[ $scenario == deflate-* ]]; then
            servers=("${deflate_active[@]}")
        elif [[ $scenario == tls-* ]]; then
            servers=("${tls_active[@]}")
        else
            servers=("${plain[@]}")
        fi
        for ((i = 0; i < ${#servers[@]}; i++)); do
            run_one "${servers[$(((i + round) % ${#servers[@]}))]}" "$scenario"
        done
    done
    for run in $broadcast_runs; do
        for ((i = 0; i < ${#broadcast_active[@]}; i++)); do
            name="${broadcast_active[$(((i + round) % ${#broadcast_active[@]}))]}"
            # shellcheck disable=SC2086 # the command is split on purpose
            if ! "${client[@]}" "$loadgen" broadcast --name "$name" \
                --subscribers "${run%%:*}" --rate "${run#*:}" \
                --duration "$duration" --warmup "$warmup" \
                --server-cpu "$server_cpu" --out "$results" \
                --server-log "$bench/results/$name" -- ${broadcast_cmds[$name]}; then
                [[ " ${failed[*]} " == *" $name "* ]] || failed+=("$name")
            fi
        done
    done
    for run in $crosshost_runs; do
        [[ ${#crosshost_active[@]} -gt 0 ]] || break
        if ! run_crosshost "${run%%:*}" "${run#*:}"; then
            [[ " ${failed[*]} " == *" crosshost "* ]] || failed+=(crosshost)
        fi
    done
done
# System calls per operation (issue 17): every request/response and TLS
# scenario once more per server, paced at one fixed rate, strace attached for
# the window only. Counts, not times: stable on a busy machine.
syscall_scenarios=()
if [[ ${BENCH_SYSCALLS:-1} != 0 ]]; then
    if command -v strace >/dev/null; then
        syscall_scenarios=("${echo_scenarios[@]}" "${tls_scenarios[@]}")
    else
        echo "== SKIPPING the system-call pass: strace not found (apt-get install strace)" >&2
        skipped+="${skipped:+; }system calls (no strace)"
    fi
fi
syscall_duration="${BENCH_SYSCALL_DURATION:-$([[ $quick == 1 ]] && echo 1 || echo 2)}"
for scenario in "${syscall_scenarios[@]}"; do
    if [[ $scenario == tls-* ]]; then
        servers=("${tls_active[@]}")
        tls_args=(--ca "$tls_dir/ca.pem")
    else
        servers=("${plain[@]}")
        tls_args=()
    fi
    # Handshakes cost ~10x an echo: pace them 5x slower; TLS halves both
    # again (a traced tokio-tungstenite + rustls server kept up with only
    # ~700 TLS echoes/s, and a saturated server batches its wake-ups).
    rate=${BENCH_SYSCALL_RATE:-1000}
    [[ $scenario == *handshake ]] && rate=$((rate / 5))
    [[ $scenario == tls-* ]] && rate=$((rate / 2))
    for name in "${servers[@]}"; do
        cmd=${cmds[$name]:-}
        [[ $scenario == tls-* ]] && cmd=${tls_cmds[$name]}
        # shellcheck disable=SC2086 # the command is split on purpose
        if ! "${client[@]}" "$loadgen" run --name "$name" --scenario "$scenario" "${tls_args[@]}" \
            --syscalls --rate "$rate" --duration "$syscall_duration" --warmup "$warmup" \
            --conns "$conns" --server-cpu "$server_cpu" --out "$results" \
            --server-log "$bench/results/$name.strace" -- $cmd; then
            [[ " ${failed[*]} " == *" $name "* ]] || failed+=("$name")
        fi
    done
done
# Memory per idle connection with deflate negotiated, on the deflate servers.
idle_conns="${BENCH_IDLE_CONNS:-$([[ $quick == 1 ]] && echo 100 || echo 500)}"
idle_lines=""
idle_one() { # LABEL NAME [SERVE ARGS...]
    local label=$1 name=$2 line
    shift 2
    # shellcheck disable=SC2086 # the command is split on purpose
    if line=$("${client[@]}" "$loadgen" idle --deflate --conns "$idle_conns" \
        --server-cpu "$server_cpu" -- ${cmds[$name]} "$@" 2>&1 | tail -n 1); then
        idle_lines+="  - $label: ${line#*: }"$'\n'
    else
        idle_lines+="  - $label: failed ($line)"$'\n'
        [[ " ${failed[*]} " == *" $name "* ]] || failed+=("$name")
    fi
}
for name in "${deflate_active[@]}"; do
    if [[ $name == ws-edge-level6 ]]; then
        continue
    elif [[ $name == ws-edge ]]; then
        idle_one "ws-edge, context takeover (the echo's default)" ws-edge
        idle_one "ws-edge, no context takeover" ws-edge --env WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER=true
        idle_one "ws-edge, no context takeover and 12-bit windows (DeflateConfig::low_memory())" ws-edge \
            --env WS_EDGE_DEFLATE_NO_CONTEXT_TAKEOVER=true --env WS_EDGE_DEFLATE_WINDOW_BITS=12
        idle_one "ws-edge, deflate off (the same message sent plain; the baseline)" ws-edge \
            --env WS_EDGE_DEFLATE=off
    else
        idle_one "$name" "$name"
    fi
done
elapsed=$(($(date +%s) - start))

if [[ ! -s "$results" ]]; then
    echo "run.sh: no results" >&2
    exit 1
fi

# --- report -------------------------------------------------------------------
model=$(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1)
machine="${model:-unknown CPU}, $cpus logical CPUs ($(nproc) usable), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, Linux $(uname -r); $pinning"
lock_version() {
    awk -v n="$1" '$0 == "name = \"" n "\"" { getline; gsub(/version = |"/, ""); print; exit }' "$bench/Cargo.lock"
}
node_version() {
    node -p "require('$bench/peers/node/node_modules/$1/package.json').version" 2>/dev/null || echo '?'
}
command="bench/run.sh"
[[ $quick == 1 ]] && command+=" --quick"
[[ -n $only ]] && command+=" --only $only"
[[ $scenarios != "$all_scenarios" ]] && command+=" --scenarios $scenarios"
deflate_note=""
if [[ ${#deflate_active[@]} -gt 0 ]]; then
    deflate_note="
- permessage-deflate scenarios (client: the load generator's own, \`bench/loadgen/src/deflate.rs\` on the ws-edge core's codec in the client's role; it offers what Chromium offers, \`permessage-deflate; client_max_window_bits\`, and compresses every message at level 1 with context takeover): \`deflate-json\` echoes 64 KiB of JSON-like **text**, \`deflate-random\` 64 KiB of random **binary**, one outstanding per connection; *wire B/msg* is what one echo took on the wire each way (frame headers included). Servers: ws-edge (the echo's \`DeflateConfig::default()\`: context takeover, level 2, 1 KiB threshold, 15-bit windows), ws-edge-level6 (the same at zlib's default level 6, \`--env WS_EDGE_DEFLATE_LEVEL=6\`, the level Node uses), node-ws-deflate (ws $(node_version ws) with \`perMessageDeflate: true\`: zlib in C, its default level, 1 KiB threshold, context takeover) and python-websockets (websockets $("$python" -c 'import websockets; print(websockets.__version__)' 2>/dev/null || echo '?'), library defaults: 12-bit windows, memLevel 5); ratios relative to node-ws-deflate.
- Memory per idle connection with permessage-deflate negotiated (\`loadgen idle --deflate\`: ${idle_conns} connections, each echoes one 64 KiB JSON message, then idles; server RSS growth per connection; *deflate off* is the same client against a server that declines):
${idle_lines%$'\n'}"
fi
tls_note=""
if [[ ${#tls_active[@]} -gt 0 ]]; then
    tls_note="
- TLS scenarios (\`tls-handshake\`, \`tls-echo64\`: \`handshake\` and \`echo64\` over TLS): a throwaway CA and an ECDSA P-256 server certificate made with $(openssl version | cut -d' ' -f1-2) for this run; servers: ws-edge (\`ws-edge serve --tls-cert --tls-key\`), ws-edge-warm (the same with \`--warm-memory-kib 128\`) and tokio-tungstenite (the echo server with \`--tls-cert --tls-key\`: tokio-rustls $(lock_version tokio-rustls)), all rustls $(lock_version rustls) with the ring provider, rustls' default protocol versions and ALPN \`http/1.1\`. Client: the load generator's rustls (ring), trusting that CA only, no session resumption: every connection is a full handshake (TLS 1.3, X25519 key exchange, the server's ECDSA signature; the load generator prints the version, cipher suite and group its first connection negotiated); \`tls-handshake\` is TCP connect + TLS handshake + upgrade + close handshake + the server's close."
fi
broadcast_note=""
if [[ ${#broadcast_active[@]} -gt 0 ]]; then
    broadcast_note="
- Broadcast (\`loadgen broadcast\`, SUBSCRIBERS:MESSAGES_PER_S = ${broadcast_runs// /, }): the subscribers connect (128 handshakes at a time) to \`/rooms/bench\`, a publisher joins the same room and a bystander another; after a barrier (every subscriber has received a message) the publisher sends 64-byte text messages at the fixed rate through ${warmup} s warm-up and the ${duration} s window, then the subscribers get up to 5 s to receive what is in flight. The rate is fixed per scenario (the same for every server) and low enough for every server and the one-threaded load generator to keep up; *client CPU %* says how close the load generator came to its core. Servers: ws-edge-forward / ws-edge-handler (\`ws-edge serve\` with the chat example, \`CHAT_DELIVERY=forward\` / \`handler\`), the tokio-tungstenite room server (per-room \`tokio::sync::broadcast\`, a reader and a writer task per connection) and the Node \`ws\` room server (\`room.forEach(c => c.send(m))\`)."
fi
if [[ ${#crosshost_active[@]} -gt 0 ]]; then
    broadcast_note+="
- Cross-host (\`loadgen broadcast --publish-url\`, SUBSCRIBERS:MESSAGES_PER_S = ${crosshost_runs// /, }): \`$($nats_server --version 2>/dev/null || echo nats-server)\` on loopback and two \`ws-edge serve --broker nats://127.0.0.1:PORT\` hosts with the chat example (forward delivery), all three pinned with the servers; the subscribers on host B, the publisher and no one else in the room on host A. The barrier republishes (every 200 ms without progress) until every subscriber has a message, since host B's interest takes a moment to reach NATS; then ${warmup} s warm-up and the ${duration} s window as above."
fi
notes="## Setup

- Date (UTC): $stamp; the run took ${elapsed} s: ${rounds} round(s) of ${duration} s measured + ${warmup} s warm-up per scenario and server, a fresh server each time; figures are medians over the rounds.
- Scenarios (client: tokio-tungstenite $(lock_version tokio-tungstenite), one thread, closed loop, ${conns} concurrent connections/loops):
  - \`handshake\`: connect, upgrade, close handshake, wait for the server to close TCP; latency is the whole cycle.
  - \`echo64\`: 64-byte **text** messages (server validates UTF-8), one outstanding per connection.
  - \`echo64k\`: 64 KiB **binary** messages, one outstanding per connection.
- Servers: ws-edge (\`ws-edge serve\`, bundled echo component, release build of the repo: one fresh instance per connection, the default) ws-edge-reuse (the same with \`--instance-reuse 1000\`: an instance serves up to 1 000 connections one after another) and ws-edge-warm (the same with \`--warm-memory-kib 128\`: a fresh instance per connection on a pool slot that kept its memory resident); tokio-tungstenite $(lock_version tokio-tungstenite) and fastwebsockets $(lock_version fastwebsockets) (hyper $(lock_version hyper) upgrade) echo servers on the default multi-threaded tokio runtime (one worker when pinned); Node $(node --version) with ws $(node_version ws) (permessage-deflate off) and websocket (WebSocket-Node) $(node_version websocket) (library defaults). Sources: \`bench/peers/\`.
- Rates are bounded by the load generator (one core) or, on a busy machine, by other work sharing the cores (see *client CPU %* and *server CPU %*, both in % of one core over the window), so compare servers by **CPU µs/op**. CPU/op rises when a server is far from saturated (fewer messages per wake-up), so it is comparable only between servers driven by the same client under the same conditions, as in one run here.
- Load average when the run started: ${load_before} (1/5/15 min; other work on the machine shares the cores and adds noise, the min-max column shows it).
- Servers run: ${active[*]:-none}${tls_active[*]:+; tls: ${tls_active[*]}}${broadcast_active[*]:+; broadcast: ${broadcast_active[*]}}${crosshost_active[*]:+; crosshost: ${crosshost_active[*]}}.${skipped:+ Skipped: $skipped.}${failed:+ Failed: ${failed[*]}.}${deflate_note}${tls_note}${broadcast_note}"

"${client[@]}" "$loadgen" report --results "$results" --baseline tokio-tungstenite,node-ws-deflate \
    --md "$out_dir/bench.md" --svg "$out_dir/bench.svg" \
    --command "$command" --machine "$machine" --notes "$notes"
echo "results: $results (${elapsed} s)" >&2

if [[ ${#failed[@]} -gt 0 ]]; then
    echo "run.sh: failed: ${failed[*]}" >&2
    exit 1
fi
