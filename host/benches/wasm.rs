//! Guest calls through wasmtime, on the bundled echo component: instantiation
//! per connection with the pooling allocator, the opening handshake
//! (`handle-head`), and `receive` of one masked message (copy in, unmask,
//! UTF-8 validation for text, echo frame, copy out) at 64 B, 4 KiB and
//! 64 KiB.
//!
//! `cargo bench -p ws-edge-host --features bench --bench wasm`
//!
//! The echo component is built with `simd128`. To compare with a build
//! without it, build one and point `WS_EDGE_BENCH_NOSIMD_WASM` at it:
//!
//! ```sh
//! RUSTFLAGS='-C target-feature=-simd128' cargo build --profile guest \
//!     --target wasm32-wasip2 -p example-echo --target-dir target/guests-nosimd
//! WS_EDGE_BENCH_NOSIMD_WASM=target/guests-nosimd/wasm32-wasip2/guest/echo.wasm \
//!     cargo bench -p ws-edge-host --features bench --bench wasm
//! ```
//!
//! The same work natively: `cargo bench -p ws-edge --bench framing` and
//! `--bench handshake`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ws_edge_host::measure::GuestBench;

const SIZES: [(&str, usize); 3] = [("64B", 64), ("4KiB", 4096), ("64KiB", 65536)];
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// A masked client frame (`opcode` 1 text or 2 binary) carrying `payload`.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&MASK);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    f
}

/// `n` bytes of mostly-ASCII text with some multi-byte code points.
fn text(n: usize) -> Vec<u8> {
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
    s.into_bytes()
}

fn components() -> Vec<(&'static str, Vec<u8>)> {
    let mut v = vec![("simd128", ws_edge_host::ECHO_COMPONENT.to_vec())];
    if let Some(path) = std::env::var_os("WS_EDGE_BENCH_NOSIMD_WASM") {
        match std::fs::read(&path) {
            Ok(bytes) => v.push(("no-simd", bytes)),
            Err(e) => eprintln!("cannot read {}: {e}", path.to_string_lossy()),
        }
    }
    v
}

fn lifecycle(c: &mut Criterion) {
    let bench = GuestBench::new(ws_edge_host::ECHO_COMPONENT, 64).expect("echo compiles");
    let mut g = c.benchmark_group("wasm_connection");
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    g.bench_function("instantiate+drop", |b| {
        b.iter(|| bench.instantiate_and_drop().expect("instantiate"));
    });
    g.bench_function("instantiate+handshake+drop", |b| {
        b.iter(|| drop(bench.connect().expect("connect")));
    });
    let mut conn = bench.connect().expect("connect");
    g.bench_function("handle-head (warm instance)", |b| {
        b.iter(|| conn.handshake().expect("handshake"));
    });
    g.finish();
}

fn receive(c: &mut Criterion) {
    for (variant, wasm) in components() {
        let bench = GuestBench::new(&wasm, 8).expect("echo compiles");
        let mut g = c.benchmark_group(format!("wasm_receive/{variant}"));
        g.warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(2));
        for (name, n) in SIZES {
            g.throughput(Throughput::Bytes(n as u64));
            let text_frame = frame(0x1, &text(n));
            let mut conn = bench.connect().expect("connect");
            g.bench_function(format!("text/{name}"), |b| {
                b.iter(|| {
                    let out = conn.receive(black_box(&text_frame)).expect("receive");
                    assert!(out >= n);
                });
            });
            let bin: Vec<u8> = (0..n).map(|i| (i * 7) as u8).collect();
            let bin_frame = frame(0x2, &bin);
            g.bench_function(format!("binary/{name}"), |b| {
                b.iter(|| {
                    let out = conn.receive(black_box(&bin_frame)).expect("receive");
                    assert!(out >= n);
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, lifecycle, receive);
criterion_main!(benches);
