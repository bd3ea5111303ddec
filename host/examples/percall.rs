//! Prints the cost of the guest boundary: compile, instantiate, handshake
//! call, one 64-byte echo `receive`, teardown (medians).
//!
//! `cargo run --release -p ws-edge-host --example percall [COMPONENT.wasm]`

fn main() -> anyhow::Result<()> {
    let wasm = match std::env::args_os().nth(1) {
        Some(path) => std::fs::read(path)?,
        None => ws_edge_host::ECHO_COMPONENT.to_vec(),
    };
    let r = ws_edge_host::measure::guest_lifetime(&wasm, 2000, 20)?;
    println!("component size  {:>9} bytes", wasm.len());
    println!("compile         {:>9.1} ms", r.compile.as_secs_f64() * 1e3);
    println!(
        "instantiate     {:>9.2} µs",
        r.instantiate.as_secs_f64() * 1e6
    );
    println!(
        "handle-head     {:>9.2} µs",
        r.handle_head.as_secs_f64() * 1e6
    );
    println!(
        "handle-head warm{:>9.2} µs",
        r.handle_head_warm.as_secs_f64() * 1e6
    );
    println!("receive (64 B)  {:>9.2} µs", r.receive.as_secs_f64() * 1e6);
    println!("teardown        {:>9.2} µs", r.teardown.as_secs_f64() * 1e6);
    Ok(())
}
