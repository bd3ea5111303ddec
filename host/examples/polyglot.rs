//! What a handler in Python or JavaScript costs against the same handler in
//! Rust, each composed with the protocol component (`make compose
//! compose-polyglot`), measured in the same run.
//!
//! `cargo run --release -p ws-edge-host --example polyglot -- RUST.wasm PY.wasm JS.wasm [CONNECTIONS] [ROUNDS]`
//!
//! Each of `ROUNDS` rounds (default 3) measures the three components in turn
//! over `CONNECTIONS` connections (default 300) of 20 messages each, requests
//! for `/compose`; the table shows the median over the rounds of each
//! step's median. Guest calls are timed on the calling thread, one at a
//! time, so the figures are the server's time per operation.

use ws_edge_host::measure::{ROWS, Report, guest_lifetime_at, median};

fn main() -> anyhow::Result<()> {
    let usage = "usage: polyglot RUST.wasm PY.wasm JS.wasm [CONNECTIONS] [ROUNDS]";
    let mut args = std::env::args().skip(1);
    let mut read = || -> anyhow::Result<Vec<u8>> {
        Ok(std::fs::read(
            args.next().ok_or_else(|| anyhow::anyhow!(usage))?,
        )?)
    };
    let components = [read()?, read()?, read()?];
    let connections: usize = args.next().map_or(Ok(300), |c| c.parse())?;
    let rounds: usize = args.next().map_or(Ok(3), |r| r.parse())?;

    let mut runs: [Vec<Report>; 3] = Default::default();
    for _ in 0..rounds.max(1) {
        for (wasm, runs) in components.iter().zip(&mut runs) {
            runs.push(guest_lifetime_at(wasm, "/compose", connections, 20)?);
        }
    }

    println!("| | Rust | Python | JavaScript |");
    println!("|---|---:|---:|---:|");
    let [r, p, j] = components.each_ref().map(|c| c.len() as f64 / 1e6);
    println!("| component size | {r:.2} MB | {p:.2} MB | {j:.2} MB |");
    for (name, field, scale, unit) in ROWS {
        let [x, y, z] = runs.each_ref().map(|runs| {
            median(&mut runs.iter().map(field).collect::<Vec<_>>()).as_secs_f64() * scale
        });
        println!("| {name} | {x:.2} {unit} | {y:.2} {unit} | {z:.2} {unit} |");
    }
    Ok(())
}
