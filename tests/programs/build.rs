//! Builds the example and test components for `wasm32-wasip2` with a nested
//! `cargo build` (the host's `build/nested.rs`) into `OUT_DIR`, and writes
//! `OUT_DIR/programs.rs`: one constant per component holding the absolute
//! path of its `.wasm` file, and `ALL`.

#[path = "../../host/build/nested.rs"]
mod nested;

use std::env;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Package, artifact file name, constant name, what it is.
const PROGRAMS: &[(&str, &str, &str, &str)] = &[
    (
        "example-echo",
        "echo",
        "ECHO",
        "`examples/echo`: echoes every message (the component the host bundles).",
    ),
    (
        "example-chat",
        "chat",
        "CHAT",
        "`examples/chat`: rooms at `/rooms/<room>` on the pub/sub service.",
    ),
    (
        "example-chat-auth",
        "chat_auth",
        "CHAT_AUTH",
        "`examples/chat-auth`: token check, subprotocol choice, a chat room.",
    ),
    (
        "example-reject",
        "reject",
        "REJECT",
        "`examples/reject`: refuses every upgrade with its own response.",
    ),
    (
        "test-guest-panic",
        "guest_panic",
        "GUEST_PANIC",
        "`tests/components/panic`: echoes; panics on the path or message `panic`.",
    ),
    (
        "test-guest-spin",
        "guest_spin",
        "GUEST_SPIN",
        "`tests/components/spin`: echoes; loops forever on the path or message `spin`.",
    ),
    (
        "test-guest-hog",
        "guest_hog",
        "GUEST_HOG",
        "`tests/components/hog`: echoes; grows its memory without bound on the path or \
         message `hog`.",
    ),
    (
        "test-guest-pubsub",
        "guest_pubsub",
        "GUEST_PUBSUB",
        "`tests/components/pubsub`: drives the pub/sub service from text commands.",
    ),
    (
        "test-guest-keepalive",
        "guest_keepalive",
        "GUEST_KEEPALIVE",
        "`tests/components/keepalive`: pings idle clients and closes the silent ones.",
    ),
];

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir
        .ancestors()
        .nth(2)
        .expect("tests/programs/ lives inside the workspace")
        .to_path_buf();

    // What the components are built from.
    nested::watch(
        &workspace,
        &[
            "src",
            "guest",
            "examples/echo",
            "examples/chat",
            "examples/chat-auth",
            "examples/reject",
            "tests/components",
            "wit",
            "Cargo.toml",
            "Cargo.lock",
            ".cargo/config.toml",
        ],
    );
    let packages: Vec<&str> = PROGRAMS.iter().map(|p| p.0).collect();
    let dir = nested::build(&workspace, &packages);

    let mut code = String::new();
    let mut all = String::new();
    for (package, file, name, doc) in PROGRAMS {
        let path = nested::artifact(&dir, file);
        let path = path.to_str().expect("component paths are UTF-8");
        writeln!(code, "#[doc = {doc:?}]").unwrap();
        writeln!(code, "#[doc = \"\"]").unwrap();
        writeln!(
            code,
            "#[doc = \"Package `{package}`, file `{file}.wasm`.\"]"
        )
        .unwrap();
        writeln!(code, "pub const {name}: &str = {path:?};").unwrap();
        writeln!(all, "    ({file:?}, {name}),").unwrap();
    }
    writeln!(
        code,
        "/// Every component: (artifact name, path).\npub const ALL: &[(&str, &str)] = &[\n{all}];"
    )
    .unwrap();
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out.join("programs.rs"), code).expect("write programs.rs");
}
