//! The ws-edge wasmtime host.
