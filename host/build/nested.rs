//! The nested `cargo build` of guest components for `wasm32-wasip2`, shared
//! by `host/build.rs` (the bundled echo component) and
//! `tests/programs/build.rs` (the example and test components of the tests).
//!
//! The nested build runs in the workspace with a clean environment: the
//! outer build's target directory, rustflags, wrappers and build target must
//! not leak into a build for another target. Its target directory is inside
//! the outer build script's `OUT_DIR` unless `WS_EDGE_GUEST_TARGET_DIR` names
//! another one (the Makefile points it at `target/guests`, so that `make
//! guests` and every build script share one build of the components).

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Environment variables of the outer build that must not reach the nested one.
const SCRUB: &[&str] = &[
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTDOCFLAGS",
    "CARGO_ENCODED_RUSTDOCFLAGS",
    "RUSTC_WRAPPER",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_MAKEFLAGS",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
    "NUM_JOBS",
    "RUSTC",
    "RUSTDOC",
    "RUSTC_LINKER",
    "CARGO_CFG_TARGET_FEATURE",
];

/// Overrides the nested build's target directory (relative to the workspace
/// root, or absolute).
const TARGET_DIR_VAR: &str = "WS_EDGE_GUEST_TARGET_DIR";

/// Asks cargo to rerun the build script when one of `paths` (relative to
/// `workspace`) changes. Paths that do not exist are skipped: cargo would
/// rerun the script, and rebuild the crate, every time.
pub fn watch(workspace: &Path, paths: &[&str]) {
    for path in paths {
        let path = workspace.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

/// Builds `packages` with `cargo build --profile guest --target
/// wasm32-wasip2` in `workspace` and returns the directory of the
/// components (`<target dir>/wasm32-wasip2/guest`).
pub fn build(workspace: &Path, packages: &[&str]) -> PathBuf {
    println!("cargo:rerun-if-env-changed={TARGET_DIR_VAR}");
    let target_dir = match env::var_os(TARGET_DIR_VAR) {
        Some(dir) if !dir.is_empty() => workspace.join(dir),
        _ => PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("guests"),
    };

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .arg("--profile")
        .arg("guest")
        .arg("--target")
        .arg("wasm32-wasip2")
        .arg("--target-dir")
        .arg(&target_dir);
    if env::var_os("CARGO_NET_OFFLINE").is_some_and(|v| v == "true") {
        cmd.arg("--offline");
    }
    for package in packages {
        cmd.arg("-p").arg(package);
    }
    for var in SCRUB {
        cmd.env_remove(var);
    }
    // Every CARGO_FEATURE_* / CARGO_CFG_* of this build script is about the
    // outer crate, not about the guests.
    for (key, _) in env::vars_os() {
        if let Some(key) = key.to_str()
            && (key.starts_with("CARGO_FEATURE_")
                || key.starts_with("CARGO_CFG_")
                || key.starts_with("CARGO_PKG_")
                || key.starts_with("DEP_"))
        {
            cmd.env_remove(key);
        }
    }

    let output = match cmd.output() {
        Ok(output) => output,
        Err(e) => panic!("failed to run the nested cargo build for the guest components: {e}"),
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2")
            && (stderr.contains("target may not be installed")
                || stderr.contains("can't find crate for `core`")
                || stderr.contains("can't find crate for `std`"))
        {
            "\n\nThe wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2` \
             (or `make run` / `make test`, which install it).\n"
        } else {
            ""
        };
        panic!(
            "building the guest components failed ({}):{hint}\n{stderr}",
            output.status
        );
    }
    target_dir.join("wasm32-wasip2").join("guest")
}

/// The component `<dir>/<file>.wasm`, which must exist.
pub fn artifact(dir: &Path, file: &str) -> PathBuf {
    let path = dir.join(format!("{file}.wasm"));
    assert!(
        path.is_file(),
        "guest component {} was not built; run `cargo build --profile guest \
         --target wasm32-wasip2` for its package",
        path.display()
    );
    path
}
