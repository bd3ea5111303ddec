//! The host's own Prometheus metrics (`prometheus-client` types), updated
//! where things happen and encoded by the admin listener's `/metrics`
//! together with the counters [`crate::Monitor`] reads at each scrape.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// A guest export the host calls, for the latency histograms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Export {
    HandleHead,
    Receive,
    Tick,
    Close,
    Disconnected,
    Deliver,
    Drop,
}

impl Export {
    pub(crate) const ALL: [Export; 7] = [
        Export::HandleHead,
        Export::Receive,
        Export::Tick,
        Export::Close,
        Export::Disconnected,
        Export::Deliver,
        Export::Drop,
    ];

    /// The WIT name of the export.
    fn name(self) -> &'static str {
        match self {
            Export::HandleHead => "handle-head",
            Export::Receive => "connection.receive",
            Export::Tick => "connection.tick",
            Export::Close => "connection.close",
            Export::Disconnected => "connection.disconnected",
            Export::Deliver => "delivery.deliver",
            Export::Drop => "connection.drop",
        }
    }
}

/// Labels of `ws_edge_handshakes`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandshakeLabels {
    route: String,
    status: u16,
}

/// Labels of `ws_edge_timeouts`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TimeoutLabels {
    kind: &'static str,
}

/// Labels of `ws_edge_reloads`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    outcome: &'static str,
}

/// Labels of `ws_edge_guest_call_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ExportLabels {
    export: &'static str,
}

/// A timeout the host enforces.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timeout {
    /// The request head (and, with TLS, the TLS handshake) took too long.
    Head,
    /// A write waited too long for a peer that does not read.
    Write,
}

/// The host's metrics. Cheap to update: counters are atomics, and the
/// histograms are created once per export.
pub(crate) struct Metrics {
    handshakes: Family<HandshakeLabels, Counter>,
    bytes_in: Counter,
    bytes_out: Counter,
    messages_in: Counter,
    messages_out: Counter,
    guest_calls: Family<ExportLabels, Histogram>,
    /// One histogram per [`Export`], in [`Export::ALL`] order (the family
    /// hands out clones sharing their state).
    call_histograms: Vec<Histogram>,
    timeouts: Family<TimeoutLabels, Counter>,
    tls_failures: Counter,
    reloads: Family<ReloadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        // Guest calls take microseconds; a trapped one up to the CPU
        // deadline (100 ms by default).
        let guest_calls = Family::<ExportLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([
                1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 1e-3, 1e-2, 0.1, 1.0,
            ])
        });
        let call_histograms = Export::ALL
            .iter()
            .map(|e| {
                guest_calls
                    .get_or_create(&ExportLabels { export: e.name() })
                    .clone()
            })
            .collect();
        Self {
            handshakes: Family::default(),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            messages_in: Counter::default(),
            messages_out: Counter::default(),
            guest_calls,
            call_histograms,
            timeouts: Family::default(),
            tls_failures: Counter::default(),
            reloads: Family::default(),
        }
    }
}

impl Metrics {
    /// Counts a request head answered with `status` on `route` (`none`
    /// when the host answered before a route was chosen).
    pub(crate) fn handshake(&self, route: &str, status: u16) {
        self.handshakes
            .get_or_create(&HandshakeLabels {
                route: route.to_owned(),
                status,
            })
            .inc();
    }

    /// Counts bytes read from clients (after TLS).
    pub(crate) fn bytes_in(&self, n: usize) {
        self.bytes_in.inc_by(n as u64);
    }

    /// Counts bytes written to clients (before TLS).
    pub(crate) fn bytes_out(&self, n: usize) {
        self.bytes_out.inc_by(n as u64);
    }

    /// Counts data messages from clients (their last frame arrived).
    pub(crate) fn messages_in(&self, n: u64) {
        if n > 0 {
            self.messages_in.inc_by(n);
        }
    }

    /// Counts data messages to clients (their last frame was written).
    pub(crate) fn messages_out(&self, n: u64) {
        if n > 0 {
            self.messages_out.inc_by(n);
        }
    }

    /// Records how long one call of `export` took.
    pub(crate) fn guest_call(&self, export: Export, took: Duration) {
        // `call_histograms` is in `Export::ALL` order, which is the
        // declaration order.
        self.call_histograms[export as usize].observe(took.as_secs_f64());
    }

    /// Counts a timeout.
    pub(crate) fn timeout(&self, kind: Timeout) {
        let kind = match kind {
            Timeout::Head => "head",
            Timeout::Write => "write",
        };
        self.timeouts.get_or_create(&TimeoutLabels { kind }).inc();
    }

    /// Counts a failed TLS handshake (not the timed-out ones).
    pub(crate) fn tls_failure(&self) {
        self.tls_failures.inc();
    }

    /// Counts a route's reload by outcome.
    pub(crate) fn reload(&self, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ReloadLabels { outcome }).inc();
    }

    /// Adds every metric to `registry` (clones share their state).
    pub(crate) fn register(&self, registry: &mut Registry) {
        registry.register(
            "ws_edge_handshakes",
            "Request heads answered, by route and HTTP status (101: upgraded).",
            self.handshakes.clone(),
        );
        registry.register_with_unit(
            "ws_edge_received",
            "Bytes read from clients (after TLS).",
            Unit::Bytes,
            self.bytes_in.clone(),
        );
        registry.register_with_unit(
            "ws_edge_sent",
            "Bytes written to clients (before TLS).",
            Unit::Bytes,
            self.bytes_out.clone(),
        );
        registry.register(
            "ws_edge_messages_received",
            "Data messages from clients (counted from frame headers; control frames excluded).",
            self.messages_in.clone(),
        );
        registry.register(
            "ws_edge_messages_sent",
            "Data messages to clients, publications included (control frames excluded).",
            self.messages_out.clone(),
        );
        registry.register_with_unit(
            "ws_edge_guest_call",
            "Wall-clock time of guest calls, by export.",
            Unit::Seconds,
            self.guest_calls.clone(),
        );
        registry.register(
            "ws_edge_timeouts",
            "Connections ended by a host timeout, by kind (head, write).",
            self.timeouts.clone(),
        );
        registry.register(
            "ws_edge_tls_handshake_failures",
            "TLS handshakes that failed (timeouts are counted as head timeouts).",
            self.tls_failures.clone(),
        );
        registry.register(
            "ws_edge_reloads",
            "Component reloads per route, by outcome.",
            self.reloads.clone(),
        );
    }
}
