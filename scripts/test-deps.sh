#!/usr/bin/env bash
# Installs what the end-to-end tests need, only when missing:
#   - the wasm32-wasip2 Rust target (guest components),
#   - a Python venv at .venv with the `websockets` client and
#     `prometheus_client` (its parser reads /metrics in a test),
#   - headless Chromium (/usr/bin/chromium, Debian package `chromium`),
#   - nats-server (Debian package `nats-server`; the pub/sub tests start
#     their own on a free loopback port, never the system service),
#   - Node `ws` (the pinned packages of bench/peers/node, `npm ci`) for the
#     permessage-deflate end-to-end test.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
    echo "installing the wasm32-wasip2 target"
    rustup target add wasm32-wasip2
fi

if ! .venv/bin/python -c 'import websockets, prometheus_client' 2>/dev/null; then
    echo "creating .venv with websockets and prometheus_client"
    python3 -m venv .venv
    .venv/bin/pip install --quiet --disable-pip-version-check websockets prometheus_client
fi

if ! [ -x /usr/bin/chromium ]; then
    echo "installing chromium"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && apt-get install -y -qq chromium
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq chromium
    fi
fi

if ! command -v nats-server >/dev/null && ! [ -x /usr/sbin/nats-server ]; then
    echo "installing nats-server"
    if [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq && apt-get install -y -qq nats-server
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq nats-server
    fi
fi

if ! [ -d bench/peers/node/node_modules/ws ]; then
    echo "installing the Node packages of bench/peers/node (ws)"
    npm ci --prefix bench/peers/node --no-audit --no-fund --loglevel=error
fi
