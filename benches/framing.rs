//! Framing throughput: decode + unmask + UTF-8 validation of text messages
//! (64 B, 4 KiB, 64 KiB), and the unmask + validate kernel on its own.
//!
//! `cargo bench -p ws-edge --bench framing`

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ws_edge::protocol::{Config, Connection, Event, OpCode, apply_mask, write_frame};

const SIZES: [(&str, usize); 3] = [("64B", 64), ("4KiB", 4096), ("64KiB", 65536)];

/// `n` bytes of text: mostly ASCII with some 2- and 3-byte code points, cut
/// at a character boundary and padded with ASCII.
fn text(n: usize) -> String {
    let unit = "WebSocket frames, héllo wörld ✓ — 0123456789 abcdefghijklmnopqrstuvwxyz. ";
    let mut s = String::with_capacity(n);
    for c in unit.chars().cycle() {
        if s.len() + c.len_utf8() > n {
            break;
        }
        s.push(c);
    }
    while s.len() < n {
        s.push('.');
    }
    s
}

fn config() -> Config {
    Config {
        keepalive_interval_ms: None,
        ..Config::default()
    }
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode_text");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, n) in SIZES {
        let t = text(n);
        assert_eq!(t.len(), n);
        let mut wire = Vec::new();
        write_frame(
            &mut wire,
            true,
            OpCode::Text,
            Some([0x37, 0xfa, 0x21, 0x3d]),
            t.as_bytes(),
        );
        g.throughput(Throughput::Bytes(n as u64));

        // Whole frame in one &[u8]: unmasked into the reused buffer.
        let mut conn = Connection::new(config(), 0);
        g.bench_function(format!("receive/{name}"), |b| {
            b.iter(|| {
                let mut got = 0;
                conn.receive(black_box(&wire), 0, |e, _| {
                    if let Event::Text(s) = e {
                        got += s.len();
                    }
                });
                assert_eq!(got, n);
            })
        });

        // Whole frame in one &mut [u8]: unmasked in place, no copy. The
        // per-iteration copy of the input is setup, not measured.
        let mut conn = Connection::new(config(), 0);
        g.bench_function(format!("receive_mut/{name}"), |b| {
            b.iter_batched_ref(
                || wire.clone(),
                |w| {
                    let mut got = 0;
                    conn.receive_mut(w, 0, |e, _| {
                        if let Event::Text(s) = e {
                            got += s.len();
                        }
                    });
                    assert_eq!(got, n);
                },
                BatchSize::SmallInput,
            )
        });

        // As TCP delivers it: 1460-byte segments, assembled in the message
        // buffer with incremental validation.
        if n > 1460 {
            let mut conn = Connection::new(config(), 0);
            g.bench_function(format!("receive_segments_1460/{name}"), |b| {
                b.iter(|| {
                    let mut got = 0;
                    for seg in black_box(&wire).chunks(1460) {
                        conn.receive(seg, 0, |e, _| {
                            if let Event::Text(s) = e {
                                got += s.len();
                            }
                        });
                    }
                    assert_eq!(got, n);
                })
            });
        }
    }
    g.finish();
}

fn kernels(c: &mut Criterion) {
    let mut g = c.benchmark_group("unmask_utf8");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for (name, n) in SIZES {
        let mut buf = text(n).into_bytes();
        g.throughput(Throughput::Bytes(n as u64));
        // An all-zero key keeps the buffer valid text across iterations; the
        // XOR work is the same for any key (black_box hides the value).
        g.bench_function(format!("unmask+validate/{name}"), |b| {
            b.iter(|| {
                apply_mask(&mut buf, black_box([0, 0, 0, 0]), 0);
                assert!(simdutf8::basic::from_utf8(black_box(&buf)).is_ok());
            })
        });
        g.bench_function(format!("unmask/{name}"), |b| {
            b.iter(|| apply_mask(black_box(&mut buf), black_box([1, 2, 3, 4]), 0))
        });
    }
    g.finish();
}

criterion_group!(benches, decode, kernels);
criterion_main!(benches);
