//! The generic protocol component (world `websocket-protocol`): exports
//! `websocket-request` like any ws-edge component, and imports the
//! `handler` interface for the decision on each request and the hooks of each
//! connection. `wac plug --plug HANDLER.wasm` fills that import with a
//! handler component written in any language (see `docs/composition.md`).

ws_edge_guest::export_handler!(ws_edge_guest::compose::Delegate);
