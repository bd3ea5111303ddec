//! Warm opening handshakes in a loop, for profilers: one instance of the
//! component answers `handle-head` `N` times (each accepted connection is
//! dropped again) and the mean time per handshake is printed.
//!
//! `cargo run --release -p ws-edge-host --example handshake_loop [N]`
//!
//! `WASM=path/to/component.wasm` runs another component than the bundled
//! echo (for example an unstripped build, so that `WS_EDGE_PERFMAP=1` names
//! its functions). `bench/callgrind-handshake.sh` counts the instructions
//! of each handshake with it.

use std::time::Instant;

use ws_edge_host::measure::GuestBench;

fn main() -> anyhow::Result<()> {
    let n: usize = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 200_000,
    };
    let wasm = match std::env::var_os("WASM") {
        Some(path) => std::fs::read(path)?,
        None => ws_edge_host::ECHO_COMPONENT.to_vec(),
    };
    let bench = GuestBench::new(&wasm, 4)?;
    let mut conn = bench.connect()?;
    // Warm up: caches, the pool slot, the guest's heap.
    for _ in 0..1000 {
        conn.handshake()?;
    }
    let start = Instant::now();
    for _ in 0..n {
        conn.handshake()?;
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
    println!("{per:.3} µs per handshake ({n} handshakes)");
    Ok(())
}
