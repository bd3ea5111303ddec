//! Why a guest call failed, by kind, and what the client is told for each
//! kind: the one place that maps a failure to an HTTP status or a close code.

use std::fmt;

use ws_edge::protocol::CloseCode;

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
    pub const ALL: [FailureKind; 6] = [
        FailureKind::CpuDeadline,
        FailureKind::MemoryCap,
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
    /// upgrade: `503 Service Unavailable` when no instance could be had (the
    /// client may retry), otherwise `500 Internal Server Error`.
    pub const fn status(self) -> u16 {
        match self {
            FailureKind::Instantiation => 503,
            _ => 500,
        }
    }

    /// The close code sent when the failure happens after the upgrade:
    /// `1011` (internal error) for every kind; the client learns nothing
    /// about the component's internals.
    pub const fn close_code(self) -> CloseCode {
        CloseCode::INTERNAL_ERROR
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

    /// Classifies an error of a guest call. `memory_refused` says whether
    /// the limiter refused a `memory.grow` during the call.
    pub(crate) fn from_call(e: &wasmtime::Error, memory_refused: bool) -> Self {
        match e.downcast_ref::<wasmtime::Trap>() {
            Some(wasmtime::Trap::Interrupt) => {
                GuestError::new(FailureKind::CpuDeadline, "CPU deadline exceeded")
            }
            Some(trap) if memory_refused => GuestError::new(
                FailureKind::MemoryCap,
                format!("memory limit reached, then: {trap}"),
            ),
            Some(wasmtime::Trap::UnreachableCodeReached) => {
                GuestError::new(FailureKind::Trap, "guest panicked or aborted (unreachable)")
            }
            Some(trap) => GuestError::new(FailureKind::Trap, trap.to_string()),
            None if memory_refused => GuestError::new(
                FailureKind::MemoryCap,
                format!("memory limit reached, then: {e:#}"),
            ),
            None => GuestError::new(FailureKind::Trap, format!("{e:#}")),
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
            GuestError::from_call(&interrupt, true).kind,
            FailureKind::CpuDeadline,
            "an interrupt is the deadline even after a refused grow"
        );
        let unreachable = wasmtime::Error::from(wasmtime::Trap::UnreachableCodeReached);
        assert_eq!(
            GuestError::from_call(&unreachable, false).kind,
            FailureKind::Trap
        );
        assert_eq!(
            GuestError::from_call(&unreachable, true).kind,
            FailureKind::MemoryCap
        );
        let other = wasmtime::Error::msg("invalid utf-8 in a returned string");
        assert_eq!(GuestError::from_call(&other, false).kind, FailureKind::Trap);
    }

    #[test]
    fn only_instantiation_is_a_503() {
        for kind in FailureKind::ALL {
            let want = if kind == FailureKind::Instantiation {
                503
            } else {
                500
            };
            assert_eq!(kind.status(), want, "{kind}");
            assert_eq!(kind.close_code(), CloseCode::INTERNAL_ERROR, "{kind}");
        }
    }
}
