//! Warm opening handshakes in a loop, for profilers: one instance of the
//! component answers `handle-head` `N` times (each accepted connection is
//! dropped again) and the mean time per handshake is printed. With
//! `LOOP=receive` it calls `connection.receive` `N` times instead, each with
//! one masked 64-byte text frame (which the echo answers), or with
//! `MESSAGE_BYTES=N` one masked binary frame of `N` bytes. With
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
    // One masked 64-byte text frame, as `ws_edge_host::measure` sends, or
    // a binary frame of MESSAGE_BYTES.
    let mask = [1u8, 2, 3, 4];
    let mut frame = Vec::new();
    match std::env::var("MESSAGE_BYTES") {
        Ok(n) => ws_edge::protocol::write_frame(
            &mut frame,
            true,
            ws_edge::protocol::OpCode::Binary,
            Some(mask),
            &vec![7u8; n.parse()?],
        ),
        Err(_) => ws_edge::protocol::write_frame(
            &mut frame,
            true,
            ws_edge::protocol::OpCode::Text,
            Some(mask),
            &[b'a'; 64],
        ),
    }

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
