//! Why a guest call failed, by kind, and what the client is told for each
//! kind: the one place that maps a failure to an HTTP status or a close code.

use std::fmt;

use ws_edge::protocol::CloseCode;

use crate::runtime::Refusal;

/// The kind of a failed guest call. Log lines name it, [`Monitor`] counts
/// it, and it alone decides what the client is told.
///
/// [`Monitor`]: crate::Monitor
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The call ran past [`Limits::cpu_deadline`](crate::Limits::cpu_deadline)
    /// and was interrupted.
    CpuDeadline,
    /// The instance asked for more linear memory than
    /// [`Limits::memory_per_connection`](crate::Limits::memory_per_connection)
    /// allows, and trapped when it was refused.
    MemoryCap,
    /// The instance asked for memory that would pass the server's
    /// [`Limits::memory_budget`](crate::Limits::memory_budget) (an
    /// overload, not a fault of this connection), and trapped when it was
    /// refused.
    MemoryBudget,
    /// The guest trapped (a panic, an abort, an out-of-bounds access) or
    /// returned values wasmtime could not lift.
    Trap,
    /// The guest's answer breaks the contract: a `101` without a
    /// connection (or a connection without `101`), a `consumed` beyond the
    /// input, or `incomplete` for a head the host found complete.
    Contract,
    /// No instance could be created for the connection.
    Instantiation,
    /// The host itself failed during the call (a host function panicked).
    Host,
}

impl FailureKind {
    /// Every kind, in the order of [`FailureKind::index`].
    pub const ALL: [FailureKind; 7] = [
        FailureKind::CpuDeadline,
        FailureKind::MemoryCap,
        FailureKind::MemoryBudget,
        FailureKind::Trap,
        FailureKind::Contract,
        FailureKind::Instantiation,
        FailureKind::Host,
    ];

    /// A short lower-case name for logs and metrics, for example
    /// `cpu-deadline`.
    pub const fn name(self) -> &'static str {
        match self {
            FailureKind::CpuDeadline => "cpu-deadline",
            FailureKind::MemoryCap => "memory-cap",
            FailureKind::MemoryBudget => "memory-budget",
            FailureKind::Trap => "trap",
            FailureKind::Contract => "contract",
            FailureKind::Instantiation => "instantiation",
            FailureKind::Host => "host",
        }
    }

    /// The position of this kind in [`FailureKind::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The status of the response when the failure happens before the
    /// upgrade: `503 Service Unavailable` when no instance could be had or
    /// the memory budget is exhausted (the client may retry), otherwise
    /// `500 Internal Server Error`.
    pub const fn status(self) -> u16 {
        match self {
            FailureKind::Instantiation | FailureKind::MemoryBudget => 503,
            _ => 500,
        }
    }

    /// The close code sent when the failure happens after the upgrade:
    /// `1013` (try again later) when the memory budget is exhausted, else
    /// `1011` (internal error); the client learns nothing about the
    /// component's internals.
    pub const fn close_code(self) -> CloseCode {
        match self {
            FailureKind::MemoryBudget => CloseCode::TRY_AGAIN_LATER,
            _ => CloseCode::INTERNAL_ERROR,
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A failed guest call: its kind, and what wasmtime or the host said.
#[derive(Debug)]
pub(crate) struct GuestError {
    /// The kind.
    pub(crate) kind: FailureKind,
    /// The details, for the log only.
    pub(crate) detail: String,
}

impl GuestError {
    /// A failure of `kind` with `detail`.
    pub(crate) fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        GuestError {
            kind,
            detail: detail.into(),
        }
    }

    /// Classifies an error of a guest call. `memory_refused` says which
    /// limit, if any, refused a `memory.grow` during the call.
    pub(crate) fn from_call(e: &wasmtime::Error, memory_refused: Option<Refusal>) -> Self {
        let trap = e.downcast_ref::<wasmtime::Trap>();
        if let Some(wasmtime::Trap::Interrupt) = trap {
            return GuestError::new(FailureKind::CpuDeadline, "CPU deadline exceeded");
        }
        let what = trap.map_or_else(|| format!("{e:#}"), ToString::to_string);
        match (memory_refused, trap) {
            (Some(Refusal::Cap), _) => GuestError::new(
                FailureKind::MemoryCap,
                format!("memory limit of the instance reached, then: {what}"),
            ),
            (Some(Refusal::Budget), _) => GuestError::new(
                FailureKind::MemoryBudget,
                format!("memory budget of the server exhausted, then: {what}"),
            ),
            (None, Some(wasmtime::Trap::UnreachableCodeReached)) => {
                GuestError::new(FailureKind::Trap, "guest panicked or aborted (unreachable)")
            }
            (None, _) => GuestError::new(FailureKind::Trap, what),
        }
    }
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_indexed_in_order() {
        for (i, kind) in FailureKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i, "{kind}");
        }
    }

    #[test]
    fn traps_are_classified_by_cause() {
        let interrupt = wasmtime::Error::from(wasmtime::Trap::Interrupt);
        assert_eq!(
            GuestError::from_call(&interrupt, Some(Refusal::Cap)).kind,
            FailureKind::CpuDeadline,
            "an interrupt is the deadline even after a refused grow"
        );
        let unreachable = wasmtime::Error::from(wasmtime::Trap::UnreachableCodeReached);
        assert_eq!(
            GuestError::from_call(&unreachable, None).kind,
            FailureKind::Trap
        );
        assert_eq!(
            GuestError::from_call(&unreachable, Some(Refusal::Cap)).kind,
            FailureKind::MemoryCap
        );
        assert_eq!(
            GuestError::from_call(&unreachable, Some(Refusal::Budget)).kind,
            FailureKind::MemoryBudget
        );
        let other = wasmtime::Error::msg("invalid utf-8 in a returned string");
        assert_eq!(GuestError::from_call(&other, None).kind, FailureKind::Trap);
    }

    #[test]
    fn only_what_a_retry_may_cure_is_a_503_or_1013() {
        for kind in FailureKind::ALL {
            let retry = matches!(kind, FailureKind::Instantiation | FailureKind::MemoryBudget);
            assert_eq!(kind.status(), if retry { 503 } else { 500 }, "{kind}");
            let code = if kind == FailureKind::MemoryBudget {
                CloseCode::TRY_AGAIN_LATER
            } else {
                CloseCode::INTERNAL_ERROR
            };
            assert_eq!(kind.close_code(), code, "{kind}");
        }
    }
}

/// The start-up error for a component without `websocket-request`: its
/// exports, and the likely cause when it exports nothing of ws-edge (a Rust
/// crate without `export_handler!`, or a handler-only component that was
/// never composed).
pub(crate) fn missing_export(
    exports: &[&str],
    interface: &str,
    detail: impl fmt::Debug,
) -> anyhow::Error {
    let listed = if exports.is_empty() {
        "nothing".to_owned()
    } else {
        exports.join(", ")
    };
    let hint = if exports
        .iter()
        .any(|e| e.starts_with("ws-edge:websocket/handler@"))
    {
        "it is a handler component (world websocket-handler): compose it with the \
         protocol component first (docs/composition.md)"
    } else if !exports.iter().any(|e| e.starts_with("ws-edge:websocket/")) {
        "it exports nothing of ws-edge; a Rust handler crate needs \
         `ws_edge_guest::export_handler!(YourHandler);` at its root (and \
         crate-type = [\"cdylib\"])"
    } else {
        "it was built against another version of the ws-edge contract"
    };
    anyhow::anyhow!(
        "the component does not export {interface} (it exports {listed}): {hint}. \
         Detail: {detail:?}"
    )
}

#[cfg(test)]
mod missing_export_tests {
    use super::missing_export;

    const I: &str = "ws-edge:websocket/websocket-request@0.2.0";

    #[test]
    fn names_the_likely_cause() {
        let e = missing_export(&["wasi:cli/run@0.2.6"], I, "x").to_string();
        assert!(e.contains("export_handler!"), "{e}");
        assert!(e.contains("it exports wasi:cli/run@0.2.6"), "{e}");
        let e = missing_export(&[], I, "x").to_string();
        assert!(
            e.contains("exports nothing") && e.contains("export_handler!"),
            "{e}"
        );
        let e = missing_export(&["ws-edge:websocket/handler@0.2.0"], I, "x").to_string();
        assert!(e.contains("compose it"), "{e}");
        let e = missing_export(&["ws-edge:websocket/websocket-request@0.1.0"], I, "x").to_string();
        assert!(e.contains("another version"), "{e}");
    }
}
