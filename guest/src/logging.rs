//! `log` records to the host, with their level and target (feature `log`).
//!
//! With the feature on, the glue installs a [`log`] logger before the
//! first handshake of each instance, so a handler logs as any Rust code
//! does:
//!
//! ```ignore
//! log::info!("joined {room}");
//! log::warn!(target: "chat::relay", "not relayed: {e}");
//! ```
//!
//! In a component each record is one call of the `wasi:logging/logging`
//! import (`log(level, context, message)`, the WASI logging proposal;
//! `wit/wasi-logging/logging.wit`): the level as is, the record's target
//! (the module path unless given) as the context. `ws-edge serve` turns it
//! into a host log line of that level with target `ws_edge_host::guest`
//! and the context as a field. Natively (in tests) records go to stderr.
//!
//! Records below `info` are dropped in the component before they are
//! formatted; the operator lowers or raises that with the component's
//! environment: `ws-edge serve --env WS_EDGE_LOG=debug` (`off`, `error`,
//! `warn`, `info`, `debug`, `trace`). The host's own filter
//! (`RUST_LOG=ws_edge_host::guest=debug`) applies after it.
//!
//! Why `wasi:logging` rather than an interface of ws-edge's own: it is what
//! other component hosts (wasmtime's, Spin, wasmCloud) already provide, so
//! a component that logs stays portable, and its `level` + `context` +
//! `message` is all a `log` record carries. A host that provides no
//! `wasi:logging` cannot instantiate a component built with this feature;
//! the bundled echo component does not use it.

use std::sync::Once;

/// The environment variable with the component's log level.
pub const LEVEL_ENV: &str = "WS_EDGE_LOG";

/// The level used when [`LEVEL_ENV`] is unset or not a level.
pub const DEFAULT_LEVEL: log::LevelFilter = log::LevelFilter::Info;

#[cfg(target_family = "wasm")]
mod bindings {
    wit_bindgen::generate!({
        path: "../wit/wasi-logging",
        world: "imports",
    });
}

/// The logger that forwards records to the host.
struct HostLogger;

impl log::Log for HostLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        emit(record.level(), record.target(), &record.args().to_string());
    }

    fn flush(&self) {}
}

#[cfg(target_family = "wasm")]
fn emit(level: log::Level, target: &str, message: &str) {
    use bindings::wasi::logging::logging::{Level, log};
    let level = match level {
        log::Level::Error => Level::Error,
        log::Level::Warn => Level::Warn,
        log::Level::Info => Level::Info,
        log::Level::Debug => Level::Debug,
        log::Level::Trace => Level::Trace,
    };
    log(level, target, message);
}

#[cfg(not(target_family = "wasm"))]
fn emit(level: log::Level, target: &str, message: &str) {
    eprintln!("{level:<5} {target}: {message}");
}

/// The level in `value` (`WS_EDGE_LOG`), case-insensitively.
pub fn parse_level(value: &str) -> Option<log::LevelFilter> {
    value.trim().parse().ok()
}

/// Installs the logger and sets the level from [`LEVEL_ENV`]. Idempotent;
/// the glue calls it before each handshake, so a handler never needs to.
pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let level = std::env::var(LEVEL_ENV)
            .ok()
            .and_then(|v| parse_level(&v))
            .unwrap_or(DEFAULT_LEVEL);
        // Fails only if the handler installed a logger of its own: keep it.
        if log::set_logger(&HostLogger).is_ok() {
            log::set_max_level(level);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_like_log_filters() {
        assert_eq!(parse_level("debug"), Some(log::LevelFilter::Debug));
        assert_eq!(parse_level(" WARN "), Some(log::LevelFilter::Warn));
        assert_eq!(parse_level("off"), Some(log::LevelFilter::Off));
        assert_eq!(parse_level("loud"), None);
    }

    #[test]
    fn init_installs_the_logger_once() {
        init();
        init();
        assert_eq!(log::max_level(), DEFAULT_LEVEL);
        assert!(log::log_enabled!(log::Level::Info));
        assert!(!log::log_enabled!(log::Level::Debug));
    }
}
