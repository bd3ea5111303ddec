//! Warm opening handshakes in a loop, for profilers: one instance of the
//! component answers `handle-head` `N` times (each accepted connection is
//! dropped again) and the mean time per handshake is printed. With
//! `LOOP=receive` it calls `connection.receive` `N` times instead, each with
//! one masked 64-byte text frame (which the echo answers). With
//! `LOOP=lifetime` each step is a whole connection's guest lifetime without
//! instance reuse: a fresh instance, `handle-head`, and teardown.
//!
//! `cargo run --release -p ws-edge-host --example handshake_loop [N]`
//!
//! `WASM=path/to/component.wasm` runs another component than the bundled
//! echo (for example an unstripped build, so that `WS_EDGE_PERFMAP=1` names
//! its functions). `bench/callgrind-handshake.sh` counts the instructions
//! of each handshake (or `receive`) with it.

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
    let what = match std::env::var("LOOP").as_deref() {
        Ok(w @ ("receive" | "lifetime" | "handshake")) => w.to_owned(),
        Err(_) => "handshake".to_owned(),
        Ok(other) => anyhow::bail!("LOOP={other}: expected handshake, receive or lifetime"),
    };
    // One masked 64-byte text frame, as `ws_edge_host::measure` sends.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 64];
    frame.extend_from_slice(&mask);
    frame.extend((0..64).map(|i| b'a' ^ mask[i % 4]));

    let bench = GuestBench::new(&wasm, 4)?;
    let mut conn = bench.connect()?;
    let mut step = || -> anyhow::Result<()> {
        match what.as_str() {
            "receive" => conn.receive(&frame).map(drop),
            "lifetime" => bench.lifetime(),
            _ => conn.handshake(),
        }
    };
    // Warm up: caches, the pool slot, the guest's heap.
    for _ in 0..1000 {
        step()?;
    }
    let start = Instant::now();
    for _ in 0..n {
        step()?;
    }
    let per = start.elapsed().as_secs_f64() * 1e6 / n.max(1) as f64;
    println!("{per:.3} µs per {what} ({n} calls)");
    Ok(())
}
