//! The admin listener (`--admin-listen ADDR`, off by default): an HTTP/1.1
//! endpoint for operators and backends, separate from the WebSocket
//! listener.
//!
//! - `POST /publish?topic=T`: publishes the body on topic `T` to the local
//!   subscribers (and, with a broker, to the other hosts). A `Content-Type`
//!   of `text/*` makes a text message (the body must be UTF-8), anything
//!   else a binary one. Answers `200` with the number of local subscribers
//!   reached, as a decimal number and a newline.
//! - `GET /healthz`: `200 ok` while the process runs.
//! - `GET /readyz`: `200 ready` while the server accepts connections and,
//!   when a broker is configured, the bridge is connected; `503` with the
//!   reason otherwise.
//! - `GET /metrics`: the server's counters in the Prometheus text format
//!   (`prometheus-client`).
//! - `POST /reload`: reads the component files and the TLS certificate
//!   again (as SIGHUP does); `200` when everything reloaded, `500` when
//!   something was refused (its previous version keeps serving), with one
//!   line per route either way.
//!
//! With a token (`--admin-token`), every path but `/healthz` needs
//! `Authorization: Bearer <token>`; a missing or wrong one gets `401`.
//! Errors are `4xx` with the reason as a plain-text body.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::bindings::Message;
use crate::pubsub::{Broker, Origin, Publication};
use crate::{FailureKind, Monitor, Reloader};

/// What the admin endpoints need.
pub(crate) struct Admin {
    pub(crate) broker: Arc<Broker>,
    pub(crate) token: Option<String>,
    /// The server's counters, for `/readyz` and `/metrics`.
    pub(crate) monitor: Monitor,
    /// For `POST /reload`.
    pub(crate) reloader: Reloader,
}

/// Serves the admin listener until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    admin: Arc<Admin>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!("admin: accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(handle(&admin, peer, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(std::time::Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), service);
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "admin: connection error: {e}");
            }
        });
    }
}

type Reply = Response<Full<Bytes>>;

/// Answers one admin request.
async fn handle(admin: &Admin, peer: SocketAddr, req: Request<Incoming>) -> Reply {
    let path = req.uri().path().to_owned();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok\n");
    }
    if let Some(token) = &admin.token
        && !authorized(req.headers().get(AUTHORIZATION), token)
    {
        tracing::info!(%peer, %path, "admin: refused a request without the right token");
        let mut reply = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
        reply
            .headers_mut()
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return reply;
    }
    match (req.method(), path.as_str()) {
        (&Method::POST, "/publish") => publish(admin, peer, req).await,
        (&Method::GET, "/readyz") => match admin.monitor.broker_connected() {
            Some(false) => text(StatusCode::SERVICE_UNAVAILABLE, "broker not connected\n"),
            _ => text(StatusCode::OK, "ready\n"),
        },
        (&Method::GET, "/metrics") => metrics(&admin.monitor),
        (&Method::POST, "/reload") => reload(admin, peer).await,
        (_, "/publish" | "/reload") => {
            let mut reply = text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n");
            reply
                .headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            reply
        }
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// `POST /publish?topic=T`.
async fn publish(admin: &Admin, peer: SocketAddr, req: Request<Incoming>) -> Reply {
    let topic = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "topic")
            .map(|(_, v)| v.into_owned())
    });
    let Some(topic) = topic else {
        return text(StatusCode::BAD_REQUEST, "missing ?topic=\n");
    };
    let is_text = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/"));
    // The topic first: a bad one is refused before the body is read.
    if let Err(e) = admin.broker.check_publish(&topic, 0, Origin::Admin) {
        return text(StatusCode::BAD_REQUEST, &format!("{}\n", e.reason()));
    }
    let max = admin.broker.limits.max_payload;
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than the {max} bytes allowed\n"),
            );
        }
        Err(e) => {
            tracing::debug!(%peer, "admin: reading the body failed: {e}");
            return text(StatusCode::BAD_REQUEST, "the body could not be read\n");
        }
    };
    let message = if is_text {
        match String::from_utf8(body.to_vec()) {
            Ok(body) => Message::Text(body),
            Err(_) => return text(StatusCode::BAD_REQUEST, "a text/* body must be UTF-8\n"),
        }
    } else {
        Message::Binary(body.to_vec())
    };
    let publication = Publication::new(topic.as_str().into(), message);
    let reached = admin.broker.publish(publication, Origin::Admin);
    tracing::debug!(%peer, %topic, reached, "admin: published");
    text(StatusCode::OK, &format!("{reached}\n"))
}

/// `POST /reload`: one line per route, `route ok generation N` or
/// `route refused: reason`.
async fn reload(admin: &Admin, peer: SocketAddr) -> Reply {
    tracing::info!(%peer, "admin: reload requested");
    let outcomes = admin.reloader.reload().await;
    let mut body = String::new();
    let mut all_ok = true;
    for r in &outcomes {
        match &r.outcome {
            Ok(generation) => body.push_str(&format!("{} ok generation {generation}\n", r.route)),
            Err(e) => {
                all_ok = false;
                body.push_str(&format!("{} refused: {e}\n", r.route));
            }
        }
    }
    if outcomes.is_empty() {
        body.push_str("nothing to reload (no component file, no TLS)\n");
    }
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    text(status, &body)
}

/// `GET /metrics`: the [`Monitor`]'s counters, encoded at each scrape,
/// and the host's own metrics.
fn metrics(monitor: &Monitor) -> Reply {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(HostMetrics(monitor.clone())));
    monitor.metrics().register(&mut registry);
    let mut body = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut body, &registry) {
        tracing::warn!("admin: encoding the metrics failed: {e}");
        return text(StatusCode::INTERNAL_SERVER_ERROR, "metrics unavailable\n");
    }
    let mut reply = text(StatusCode::OK, &body);
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    reply
}

/// The host's counters as Prometheus metrics, read at each scrape.
struct HostMetrics(Monitor);

impl std::fmt::Debug for HostMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostMetrics")
    }
}

impl Collector for HostMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let m = &self.0;
        let alive = i64::try_from(m.instances_alive()).unwrap_or(i64::MAX);
        let idle = i64::try_from(m.instances_idle()).unwrap_or(i64::MAX);
        let gauges: [(&str, &str, i64); 5] = [
            (
                "ws_edge_open_connections",
                "Connections accepted and not yet finished.",
                i64::try_from(m.live_connections()).unwrap_or(i64::MAX),
            ),
            (
                "ws_edge_instances_in_use",
                "Component instances serving a connection.",
                (alive - idle).max(0),
            ),
            (
                "ws_edge_instances_idle",
                "Component instances waiting for a connection (instance reuse).",
                idle,
            ),
            (
                "ws_edge_memory_budget_used_bytes",
                "Bytes counted against the memory budget.",
                i64::try_from(m.memory_used()).unwrap_or(i64::MAX),
            ),
            (
                "ws_edge_pool_warm_resident_bytes",
                "Linear memory free pool slots keep resident (--warm-memory-kib).",
                i64::try_from(m.warm_pool_resident()).unwrap_or(i64::MAX),
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        let counters: [(&str, &str, u64); 8] = [
            (
                "ws_edge_instances_created",
                "Component instances created.",
                m.instances_created(),
            ),
            (
                "ws_edge_pool_warm_released_bytes",
                "Linear memory free pool slots gave back to stay under --warm-pool-mib.",
                m.warm_pool_released(),
            ),
            (
                "ws_edge_overload_refused",
                "Connections refused with 503 by the memory budget.",
                m.overload_refused(),
            ),
            (
                "ws_edge_overload_shed",
                "Connections closed with 1013 by the memory budget.",
                m.overload_shed(),
            ),
            (
                "ws_edge_pubsub_publications",
                "Publications accepted.",
                m.publications(),
            ),
            (
                "ws_edge_pubsub_deliveries_queued",
                "Publications queued for a subscriber.",
                m.deliveries_queued(),
            ),
            (
                "ws_edge_pubsub_slow_consumers",
                "Connections closed with 1008 as slow consumers.",
                m.slow_consumers(),
            ),
            (
                "ws_edge_pubsub_bridge_dropped",
                "Publications that could not cross to other hosts.",
                m.bridge_dropped(),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let mut family = encoder.encode_descriptor(
            "ws_edge_guest_failures",
            "Failed guest calls by kind.",
            None,
            MetricType::Counter,
        )?;
        for kind in FailureKind::ALL {
            let counter = ConstCounter::new(m.guest_failures(kind));
            counter.encode(family.encode_family(&[("kind", kind.name())])?)?;
        }
        if let Some(connected) = m.broker_connected() {
            let gauge = ConstGauge::new(i64::from(connected));
            gauge.encode(encoder.encode_descriptor(
                "ws_edge_broker_connected",
                "1 while the NATS bridge is connected.",
                None,
                gauge.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Whether `header` is `Bearer <token>`, compared in constant time.
fn authorized(header: Option<&HeaderValue>, token: &str) -> bool {
    let Some(value) = header.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some((scheme, given)) = value.split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let (a, b) = (given.trim().as_bytes(), token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A plain-text response.
fn text(status: StatusCode, body: &str) -> Reply {
    let mut reply = Response::new(Full::new(Bytes::from(body.to_owned())));
    *reply.status_mut() = status;
    reply.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_must_match_exactly() {
        let ok = HeaderValue::from_static("Bearer s3cret");
        assert!(authorized(Some(&ok), "s3cret"));
        let lower = HeaderValue::from_static("bearer s3cret");
        assert!(authorized(Some(&lower), "s3cret"));
        for bad in [
            "Bearer s3cre",
            "Bearer s3crett",
            "Basic s3cret",
            "s3cret",
            "",
        ] {
            let v = HeaderValue::from_str(bad).expect("header");
            assert!(!authorized(Some(&v), "s3cret"), "{bad}");
        }
        assert!(!authorized(None, "s3cret"));
    }
}
