//! Builds the guest components (examples and test components) for
//! `wasm32-wasip2` with a nested `cargo build`, so the host binary can embed
//! the echo component and the end-to-end tests can find the others.
//!
//! The nested build uses its own target directory (`<workspace>/target/guests`)
//! and a clean environment: the outer build's target directory, rustflags,
//! wrappers and build target must not leak into a build for another target.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages built as components, with the file name of their artifact.
const GUESTS: &[(&str, &str)] = &[
    ("example-echo", "echo"),
    ("example-chat-auth", "chat_auth"),
    ("example-reject", "reject"),
    ("test-guest-panic", "guest_panic"),
    ("test-guest-spin", "guest_spin"),
    ("test-guest-hog", "guest_hog"),
    ("test-guest-keepalive", "guest_keepalive"),
];

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

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .parent()
        .expect("host/ lives inside the workspace")
        .to_path_buf();

    for path in [
        "src",
        "guest",
        "examples",
        "tests/components",
        "wit",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
    ] {
        // A path that does not exist would make cargo rerun this script (and
        // rebuild the host) every time.
        let path = workspace.join(path);
        if path.exists() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    println!("cargo:rerun-if-env-changed=WS_EDGE_SKIP_GUEST_BUILD");

    let target_dir = workspace.join("target").join("guests");
    let out = target_dir.join("wasm32-wasip2").join("guest");

    if env::var_os("WS_EDGE_SKIP_GUEST_BUILD").is_none() {
        build_guests(&workspace, &target_dir);
    }

    for (_, file) in GUESTS {
        let path = out.join(format!("{file}.wasm"));
        if !path.is_file() {
            panic!(
                "guest component {} was not built; run `cargo build --profile guest \
                 --target wasm32-wasip2` for the guest packages",
                path.display()
            );
        }
    }
    println!("cargo:rustc-env=WS_EDGE_GUEST_DIR={}", out.display());
    println!(
        "cargo:rustc-env=WS_EDGE_ECHO_WASM={}",
        out.join("echo.wasm").display()
    );
}

fn build_guests(workspace: &Path, target_dir: &Path) {
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .arg("build")
        .arg("--profile")
        .arg("guest")
        .arg("--target")
        .arg("wasm32-wasip2")
        .arg("--target-dir")
        .arg(target_dir);
    if env::var_os("CARGO_NET_OFFLINE").is_some_and(|v| v == "true") {
        cmd.arg("--offline");
    }
    for (package, _) in GUESTS {
        cmd.arg("-p").arg(package);
    }
    for var in SCRUB {
        cmd.env_remove(var);
    }
    // Every CARGO_FEATURE_* / CARGO_CFG_* of this build script is about the
    // host crate, not about the guests.
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
}
