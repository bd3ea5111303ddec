//! Builds the echo component (`examples/echo`) for `wasm32-wasip2` with a
//! nested `cargo build` (`build/nested.rs`) into `OUT_DIR`, for the host
//! binary to embed (`ECHO_COMPONENT`). Nothing is written outside `OUT_DIR`
//! unless `WS_EDGE_GUEST_TARGET_DIR` asks for it, so `cargo install --path
//! host` works from a fresh checkout.
//!
//! `WS_EDGE_PREBUILT_ECHO=path/to/echo.wasm` embeds that component instead
//! and skips the nested build (the fuzz targets, built with another
//! toolchain, use the one `make guests` built).
//!
//! The example and test components of the tests are built by the dev-only
//! crate `ws-edge-test-programs` (`tests/programs`), not here.

#[path = "build/nested.rs"]
mod nested;

use std::env;
use std::path::PathBuf;

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives inside the workspace")
        .to_path_buf();

    println!("cargo:rerun-if-env-changed=WS_EDGE_PREBUILT_ECHO");
    let echo = match env::var_os("WS_EDGE_PREBUILT_ECHO") {
        Some(path) if !path.is_empty() => {
            let path = workspace.join(path);
            assert!(
                path.is_file(),
                "WS_EDGE_PREBUILT_ECHO: {} is not a file",
                path.display()
            );
            println!("cargo:rerun-if-changed={}", path.display());
            path
        }
        _ => {
            // What the echo component is built from.
            nested::watch(
                &workspace,
                &[
                    "src",
                    "guest",
                    "examples/echo",
                    "wit",
                    "Cargo.toml",
                    "Cargo.lock",
                    ".cargo/config.toml",
                ],
            );
            let dir = nested::build(&workspace, &["example-echo"]);
            nested::artifact(&dir, "echo")
        }
    };
    println!("cargo:rustc-env=WS_EDGE_ECHO_WASM={}", echo.display());
}
