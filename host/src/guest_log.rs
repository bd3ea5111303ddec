//! `wasi:logging/logging`: a component's levelled log records become host
//! `tracing` events with target `ws_edge_host::guest`, the record's context
//! (a Rust guest's `log` target) as the field `context`. `critical` is
//! logged as ERROR with `critical = true`.
//!
//! The Rust guest library imports this only with its `log` feature;
//! components without it never call here. The interface is the WASI
//! proposal's (`wit/wasi-logging/logging.wit`), so a component that logs
//! runs on other hosts that provide it too.

use wasmtime::component::{HasData, Linker};

mod generated {
    wasmtime::component::bindgen!({
        path: "../wit/wasi-logging",
        world: "imports",
    });
}

use generated::wasi::logging::logging::{self, Level};

/// The longest message logged; the rest is cut at a character boundary.
const MAX_MESSAGE: usize = 4096;

/// Adds `wasi:logging/logging` to a linker of any store (the server's
/// instances, `ws-edge run`'s command).
pub(crate) fn add_to_linker<T: 'static>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    logging::add_to_linker::<T, Logger>(linker, |_| Logger)
}

/// The implementation: stateless, every record goes to `tracing`.
struct Logger;

impl HasData for Logger {
    type Data<'a> = Logger;
}

impl logging::Host for Logger {
    fn log(&mut self, level: Level, context: String, message: String) {
        emit(level, &context, cut(&message));
    }
}

/// Logs one record at its level.
fn emit(level: Level, context: &str, message: &str) {
    const T: &str = "ws_edge_host::guest";
    match level {
        Level::Trace => tracing::trace!(target: T, context, "{message}"),
        Level::Debug => tracing::debug!(target: T, context, "{message}"),
        Level::Info => tracing::info!(target: T, context, "{message}"),
        Level::Warn => tracing::warn!(target: T, context, "{message}"),
        Level::Error => tracing::error!(target: T, context, "{message}"),
        Level::Critical => tracing::error!(target: T, context, critical = true, "{message}"),
    }
}

/// `message` cut to [`MAX_MESSAGE`] bytes at a character boundary.
fn cut(message: &str) -> &str {
    if message.len() <= MAX_MESSAGE {
        return message;
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    &message[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_boundary() {
        assert_eq!(cut("short"), "short");
        let long = "é".repeat(MAX_MESSAGE);
        let cut = cut(&long);
        assert!(cut.len() <= MAX_MESSAGE && cut.len() > MAX_MESSAGE - 2);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
