//! Compares the monolithic echo component with a composed component (the
//! protocol component with a handler plugged in by `wac plug`): what the
//! extra component boundary costs per connection and per message.
//!
//! `cargo run --release -p ws-edge-host --example boundary -- COMPOSED.wasm [TARGET] [ROUNDS]`
//!
//! `TARGET` is the request target the composed handler accepts (default
//! `/compose`, what `examples/compose` accepts). Each of `ROUNDS` rounds
//! (default 5) measures both components over 2 000 connections of 20
//! messages, alternating, and the table shows the median over the rounds.

use std::time::Duration;

use ws_edge_host::measure::{Report, guest_lifetime_at};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let composed_path = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: boundary COMPOSED.wasm [TARGET] [ROUNDS]"))?;
    let target = args.next().unwrap_or_else(|| "/compose".into());
    let rounds: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let echo = ws_edge_host::ECHO_COMPONENT;
    let composed = std::fs::read(&composed_path)?;

    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..rounds.max(1) {
        a.push(guest_lifetime_at(echo, "/", 2000, 20)?);
        b.push(guest_lifetime_at(&composed, &target, 2000, 20)?);
    }

    println!("| | echo (monolithic) | composed | difference |");
    println!("|---|---:|---:|---:|");
    println!(
        "| component size | {} B | {} B | {:+} B |",
        echo.len(),
        composed.len(),
        composed.len() as i64 - echo.len() as i64
    );
    let rows: [Row; 6] = [
        ("compile (once per server)", |r| r.compile, 1e3, "ms"),
        ("instantiate (per connection)", |r| r.instantiate, 1e6, "µs"),
        (
            "handle-head, accepted (first call)",
            |r| r.handle_head,
            1e6,
            "µs",
        ),
        (
            "handle-head, warm instance",
            |r| r.handle_head_warm,
            1e6,
            "µs",
        ),
        ("receive 64 B text + reply", |r| r.receive, 1e6, "µs"),
        ("teardown", |r| r.teardown, 1e6, "µs"),
    ];
    for (name, field, scale, unit) in rows {
        let x = median(a.iter().map(field).collect()).as_secs_f64() * scale;
        let y = median(b.iter().map(field).collect()).as_secs_f64() * scale;
        println!(
            "| {name} | {x:.2} {unit} | {y:.2} {unit} | {:+.2} {unit} |",
            y - x
        );
    }
    Ok(())
}

/// A table row: label, the step's field, scale to the unit, unit.
type Row = (&'static str, fn(&Report) -> Duration, f64, &'static str);

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v.get(v.len() / 2).copied().unwrap_or_default()
}
