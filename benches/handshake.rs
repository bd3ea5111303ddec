//! Opening-handshake cost, natively: parse + validate a real browser head,
//! then accept it and serialize the 101 response.
//!
//! `cargo bench -p ws-edge --bench handshake`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ws_edge::Parsed;
use ws_edge::handshake::{AcceptOptions, HandshakeConfig, Request, Transport};

const HEADS: [(&str, &[u8]); 2] = [
    (
        "chrome",
        include_bytes!("../tests/fixtures/requests/accept/chrome-131.http"),
    ),
    (
        "curl",
        include_bytes!("../tests/fixtures/requests/accept/curl-8.http"),
    ),
];

fn transport() -> Transport {
    Transport {
        peer: Some("127.0.0.1:50000".parse().expect("literal address")),
        tls: false,
    }
}

fn parse(head: &[u8], config: &HandshakeConfig) -> Request {
    match Request::from_head(head, transport(), config) {
        Parsed::Complete {
            value: Ok(request), ..
        } => request,
        _ => panic!("fixture must be a valid upgrade request"),
    }
}

fn handshake(c: &mut Criterion) {
    let config = HandshakeConfig::default();
    let options = AcceptOptions::new();
    let mut g = c.benchmark_group("handshake");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, head) in HEADS {
        g.bench_function(format!("{name}/parse_validate"), |b| {
            b.iter(|| parse(black_box(head), &config))
        });
        g.bench_function(format!("{name}/parse_validate_accept_write"), |b| {
            let mut wire = Vec::with_capacity(256);
            b.iter(|| {
                let mut request = parse(black_box(head), &config);
                let accepted = request.accept(&options).expect("acceptable");
                wire.clear();
                accepted.response.write_to(&mut wire);
                black_box(wire.len())
            })
        });
    }
    g.finish();
}

criterion_group!(benches, handshake);
criterion_main!(benches);
