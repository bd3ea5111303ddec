//! Warm opening handshakes in a loop, for profilers: one instance of the
//! component answers `handle-head` `N` times (each accepted connection is
//! dropped again) and the mean time per handshake is printed. With
//! `LOOP=receive` it calls `connection.receive` `N` times instead, each with
//! one masked 64-byte text frame (which the echo answers).
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
    let receive = match std::env::var("LOOP").as_deref() {
        Ok("receive") => true,
        Ok("handshake") | Err(_) => false,
        Ok(other) => anyhow::bail!("LOOP={other}: expected handshake or receive"),
    };
    // One masked 64-byte text frame, as `ws_edge_host::measure` sends.
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![0x81, 0x80 | 64];
    frame.extend_from_slice(&mask);
    frame.extend((0..64).map(|i| b'a' ^ mask[i % 4]));

    let bench = GuestBench::new(&wasm, 4)?;
    let mut conn = bench.connect()?;
    let mut step = || -> anyhow::Result<()> {
        if receive {
            conn.receive(&frame)?;
            Ok(())
        } else {
            conn.handshake()
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
    let what = if receive { "receive" } else { "handshake" };
    println!("{per:.3} µs per {what} ({n} calls)");
    Ok(())
}
