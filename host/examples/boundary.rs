//! What the extra component boundary of a composed component costs: compares
//! the composed component of `examples/compose` (the protocol component with
//! the handler plugged in by `wac plug`) with the same behaviour as one
//! ordinary component (`examples/compose/monolithic`), and with the echo
//! component for reference.
//!
//! `cargo run --release -p ws-edge-host --example boundary -- COMPOSED.wasm MONOLITHIC.wasm [ROUNDS]`
//!
//! Each of `ROUNDS` rounds (default 5) measures the three components in turn
//! over 2 000 connections of 20 messages each (requests for `/compose`, or
//! `/` for the echo); the table shows the median over the rounds.

use ws_edge_host::measure::{ROWS, guest_lifetime_at, median};

fn main() -> anyhow::Result<()> {
    let usage = "usage: boundary COMPOSED.wasm MONOLITHIC.wasm [ROUNDS]";
    let mut args = std::env::args().skip(1);
    let composed = std::fs::read(args.next().ok_or_else(|| anyhow::anyhow!(usage))?)?;
    let monolithic = std::fs::read(args.next().ok_or_else(|| anyhow::anyhow!(usage))?)?;
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let echo = ws_edge_host::ECHO_COMPONENT;

    let (mut e, mut m, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        e.push(guest_lifetime_at(echo, "/", 2000, 20)?);
        m.push(guest_lifetime_at(&monolithic, "/compose", 2000, 20)?);
        c.push(guest_lifetime_at(&composed, "/compose", 2000, 20)?);
    }

    println!("| | echo | monolithic | composed | composed − monolithic |");
    println!("|---|---:|---:|---:|---:|");
    let sizes = [echo.len(), monolithic.len(), composed.len()];
    println!(
        "| component size | {} B | {} B | {} B | {:+} B |",
        sizes[0],
        sizes[1],
        sizes[2],
        sizes[2] as i64 - sizes[1] as i64
    );
    for (name, field, scale, unit) in ROWS {
        let [x, y, z] = [&e, &m, &c].map(|runs| {
            median(&mut runs.iter().map(field).collect::<Vec<_>>()).as_secs_f64() * scale
        });
        println!(
            "| {name} | {x:.2} {unit} | {y:.2} {unit} | {z:.2} {unit} | {:+.2} {unit} |",
            z - y
        );
    }
    Ok(())
}
