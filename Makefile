# ws-edge: `make run` serves the echo component, `make test` runs everything.

CARGO    ?= cargo
LISTEN   ?= 127.0.0.1:8080
GUESTS   := example-echo example-chat example-chat-auth example-reject \
            test-guest-panic test-guest-spin test-guest-hog \
            test-guest-keepalive test-guest-pubsub \
            compose-protocol compose-handler compose-monolithic \
            conformance-noisy conformance-closer
GUEST_DIR := target/guests/wasm32-wasip2/guest
COMPOSED  := $(GUEST_DIR)/composed.wasm
COMPOSED_PY := $(GUEST_DIR)/composed_py.wasm
COMPOSED_JS := $(GUEST_DIR)/composed_js.wasm

# The build scripts of the host (the bundled echo component) and of
# tests/programs (the components of the tests) build into their OUT_DIR by
# default; here they share target/guests with `make guests`, so each
# component is built once, not once per build profile and crate.
export WS_EDGE_GUEST_TARGET_DIR := $(CURDIR)/target/guests

.PHONY: run build chat guests sizes test test-deps fmt-check clippy unit e2e autobahn check-new \
        check-wit cli-check portability fuzz bench bench-smoke compose compose-polyglot drills \
        conformance conformance-guests conformance-host

## Build the host (it builds and embeds the echo component) and serve it on
## $(LISTEN).
run: build
	target/release/ws-edge serve --listen $(LISTEN)

build: wasm32-wasip2
	$(CARGO) build --release -p ws-edge-host

## The toolchain of rust-toolchain.toml with its wasm32-wasip2 target
## (rustup installs both by itself unless its auto-install is off).
.PHONY: wasm32-wasip2
wasm32-wasip2:
	@rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2 || \
		{ rustup toolchain install && rustup target add wasm32-wasip2; }

## The guest components alone (the target dir the build scripts share here).
guests: wasm32-wasip2
	$(CARGO) build --profile guest --target wasm32-wasip2 --target-dir target/guests \
		$(addprefix -p ,$(GUESTS))

sizes: guests
	@ls -l $(GUEST_DIR)/*.wasm | awk '{printf "%8d  %s\n", $$5, $$9}'

## Everything: formatting, clippy, unit tests, component builds, end to end.
test: test-deps fmt-check clippy unit e2e sizes check-wit cli-check portability check-new

test-deps:
	scripts/test-deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check

clippy: wasm32-wasip2
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy --target wasm32-wasip2 --target-dir target/guests \
		-p ws-edge-guest $(addprefix -p ,$(GUESTS)) -- -D warnings

unit:
	$(CARGO) test -p ws-edge -p ws-edge-guest --features ws-edge-guest/log \
		-p example-echo -p example-chat -p example-chat-auth -p example-reject

## The host's unit tests and the end-to-end test binary (release: wasmtime
## and the 1 000-connection test are much faster optimised).
e2e: wasm32-wasip2 compose compose-polyglot
	WS_EDGE_COMPOSED_WASM=$(CURDIR)/$(COMPOSED) WS_EDGE_COMPOSED_PY_WASM=$(CURDIR)/$(COMPOSED_PY) \
		WS_EDGE_COMPOSED_JS_WASM=$(CURDIR)/$(COMPOSED_JS) $(CARGO) test --release -p ws-edge-host

## The handler of examples/compose plugged into the generic protocol
## component with `wac plug` (wac-cli; installed if missing): $(COMPOSED).
compose: wasm32-wasip2
	$(CARGO) build --profile guest --target wasm32-wasip2 --target-dir target/guests \
		-p compose-protocol -p compose-handler
	scripts/compose.sh $(GUEST_DIR)/compose_protocol.wasm $(GUEST_DIR)/compose_handler.wasm $(COMPOSED)

## The same handler in Python (examples/handler-py, componentize-py) and
## JavaScript (examples/handler-js, componentize-js), each plugged into the
## protocol component and checked (scripts/polyglot.sh): $(COMPOSED_PY),
## $(COMPOSED_JS). The toolchains are installed on first use, pinned, in
## examples/handler-py/.venv and examples/handler-js/node_modules. A
## component is rebuilt only when its sources, wit/ or the protocol
## component changed.
compose-polyglot: compose $(COMPOSED_PY) $(COMPOSED_JS)

$(COMPOSED_PY): $(GUEST_DIR)/compose_protocol.wasm examples/handler-py/app.py $(wildcard wit/*.wit) scripts/polyglot.sh
	scripts/polyglot.sh py $(GUEST_DIR)/compose_protocol.wasm $(GUEST_DIR)

$(COMPOSED_JS): $(GUEST_DIR)/compose_protocol.wasm examples/handler-js/app.js \
		examples/handler-js/package-lock.json $(wildcard wit/*.wit) scripts/polyglot.sh
	scripts/polyglot.sh js $(GUEST_DIR)/compose_protocol.wasm $(GUEST_DIR)

## Autobahn|Testsuite fuzzingclient against the echo component, cases 1-7,
## 9, 10 and the permessage-deflate cases 12, 13 (summary in
## $(AUTOBAHN_SUMMARY); the committed one is docs/autobahn.md). The echo's
## limits are raised through its configuration to 16 MiB for the 9.* cases.
AUTOBAHN_SUMMARY ?= $(CURDIR)/target/autobahn/summary.md
AUTOBAHN_SERVE_FLAGS ?= --env WS_EDGE_MAX_FRAME_PAYLOAD=16777216 \
	--env WS_EDGE_MAX_MESSAGE=16777216 --env WS_EDGE_HIGH_WATER_MARK=16777216
autobahn: build
	AUTOBAHN_SUMMARY=$(AUTOBAHN_SUMMARY) scripts/with-server.sh $(AUTOBAHN_SERVE_FLAGS) -- scripts/autobahn.sh

## The built components export exactly the WIT contract (wasm-tools; installed
## if missing).
check-wit: guests compose
	scripts/check-wit.sh $(GUEST_DIR)/echo.wasm $(GUEST_DIR)/chat.wasm $(GUEST_DIR)/chat_auth.wasm \
		$(GUEST_DIR)/reject.wasm \
		$(GUEST_DIR)/compose_monolithic.wasm $(COMPOSED)
	scripts/check-wit.sh --handler $(GUEST_DIR)/compose_handler.wasm

## `ws-edge new` as a new author uses it, in a temporary directory outside
## the workspace: build, `cargo test`, serve, an echo round trip, and
## README's handler (scripts/check-new.sh).
check-new: build
	scripts/check-new.sh target/release/ws-edge

## `wasmtime run --invoke` drives preview-head (wasmtime-cli 50.0.1, the
## version of the host's wasmtime; installed when missing or another version
## is found: ~10 minutes on a quiet 2-core machine, once).
cli-check: guests
	scripts/cli-check.sh $(GUEST_DIR)/echo.wasm

## The echo component under a second runtime: jco + a small Node host.
portability: guests
	portability/test.sh $(GUEST_DIR)/echo.wasm

## cargo-fuzz targets, FUZZ_SECONDS each (nightly toolchain).
FUZZ_SECONDS ?= 60
fuzz: guests
	scripts/fuzz.sh $(FUZZ_SECONDS)

## Fault drills against an in-process host (host/examples/drills.rs): 500
## slowloris clients, 64 KiB header floods, 100 000 vanishing clients, ping
## floods, looping guests, memory exhaustion against the budget (10 000
## connections: the soft file limit is raised to the hard one), 10 reloads
## under load, accepts at the open-files limit; PASS/FAIL with figures.
## DRILLS selects some.
DRILLS ?=
drills: wasm32-wasip2
	ulimit -n "$$(ulimit -Hn)"; $(CARGO) run --release -p ws-edge-host --example drills -- $(DRILLS)

## Benchmarks against the peers (writes docs/bench.md, docs/bench.svg). The
## broadcast scenarios serve examples/chat.
bench: build chat
	bench/run.sh

## A short bounded run of the same benchmark command.
bench-smoke: build chat
	bench/run.sh --quick

chat: wasm32-wasip2
	$(CARGO) build --profile guest --target wasm32-wasip2 --target-dir target/guests -p example-chat

## The host conformance kit (conformance/, docs/hosting.md#conformance)
## against every host here: `ws-edge serve`, examples/minimal-host and the
## jco host of portability/ (which has no CPU deadline or memory cap, so it
## skips those groups), after the test of the guest-output recipes
## (conformance/tests; built with the host's tests, as `make e2e` builds
## them, so the two share one build of wasmtime). Runs all three hosts,
## then fails if any had a FAIL.
CONFORMANCE_GUESTS := example-echo test-guest-panic test-guest-spin test-guest-hog \
            test-guest-keepalive conformance-noisy conformance-closer
KIT := target/release/ws-edge-conformance --components $(GUEST_DIR) --shutdown-signal TERM
conformance-guests: wasm32-wasip2
	$(CARGO) build --profile guest --target wasm32-wasip2 --target-dir target/guests \
		$(addprefix -p ,$(CONFORMANCE_GUESTS))

conformance: conformance-guests
	$(CARGO) build --release -p ws-edge-host -p ws-edge-conformance -p minimal-host
	WS_EDGE_CONFORMANCE_COMPONENTS=$(CURDIR)/$(GUEST_DIR) $(CARGO) test --release \
		-p ws-edge-host -p ws-edge-conformance --test guest_output -- --include-ignored
	@rc=0; \
	$(KIT) --name 'ws-edge serve' \
		--host-cmd 'target/release/ws-edge serve --listen 127.0.0.1:{port} {component}' || rc=1; \
	$(KIT) --name 'minimal-host' \
		--host-cmd 'target/release/minimal-host {component} 127.0.0.1:{port}' || rc=1; \
	$(KIT) --name 'jco host' --skip cpu-deadline --skip memory-cap \
		--host-cmd 'portability/serve.sh {component} 127.0.0.1:{port}' || rc=1; \
	exit $$rc

## The kit against any host, in one command:
##   make conformance-host HOST_CMD='my-host --port {port} {component}' \
##       KIT_FLAGS='--shutdown-signal TERM'
HOST_CMD ?=
KIT_FLAGS ?=
conformance-host: conformance-guests
	@test -n '$(HOST_CMD)' || { echo "make conformance-host: set HOST_CMD='... {port} ... {component}'" >&2; exit 2; }
	$(CARGO) build --release -p ws-edge-conformance
	target/release/ws-edge-conformance --components $(GUEST_DIR) --host-cmd '$(HOST_CMD)' $(KIT_FLAGS)
