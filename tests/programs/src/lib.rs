//! The example and test components of ws-edge's tests, built for
//! `wasm32-wasip2` by this crate's build script, each named by a constant
//! holding the absolute path of its `.wasm` file (`GUEST_PANIC` for
//! `tests/components/panic`, ...), for `Server::builder().component_file(..)`.
//!
//! A component the tests need but this crate does not build is a compile
//! error, not a missing file at run time. Dev-only: the `ws-edge` binary
//! builds and embeds just the echo component (`host/build.rs`).

include!(concat!(env!("OUT_DIR"), "/programs.rs"));
