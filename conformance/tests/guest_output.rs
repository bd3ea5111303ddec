//! The guest-output rule of docs/hosting.md ("Guest output: stdout and
//! stderr"), checked against the wasmtime and wasmtime-wasi versions the
//! docs name: a guest that writes to stdout and stderr, called through
//! wasmtime-wasi's synchronous bindings from a task on a tokio worker,
//! panics the host; the same call inside `tokio::task::block_in_place`
//! works, and so does the call through asynchronous bindings.
//!
//! Needs the noisy test component (`make conformance-guests`); `make
//! conformance` runs these with `--include-ignored`.

use std::path::PathBuf;

use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod sync_api {
    wasmtime::component::bindgen!({ path: "../wit", world: "websocket-server" });
}

mod async_api {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "websocket-server",
        exports: { default: async },
    });
}

/// An upgrade request for `/noisy`: the component writes 64 KiB to stdout
/// and to stderr while it accepts it.
const HEAD: &[u8] = b"GET /noisy HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

struct Data {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Data {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn store(engine: &Engine) -> Store<Data> {
    Store::new(
        engine,
        Data {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    )
}

/// The engine and the compiled noisy component.
fn noisy() -> (Engine, Component) {
    let dir = std::env::var_os("WS_EDGE_CONFORMANCE_COMPONENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/guests/wasm32-wasip2/guest")
        });
    let path = dir.join("conformance_noisy.wasm");
    let engine = Engine::default();
    let component = Component::from_file(&engine, &path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build it with `make conformance-guests`)",
            path.display()
        )
    });
    (engine, component)
}

/// Instantiates the component with the synchronous bindings and answers
/// [`HEAD`]; the status of the response.
fn sync_handshake(engine: &Engine, component: &Component) -> wasmtime::Result<u16> {
    let mut linker = Linker::<Data>::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    let pre = sync_api::WebsocketServerPre::new(linker.instantiate_pre(component)?)?;
    let mut store = store(engine);
    let ws = pre.instantiate(&mut store)?;
    let transport = sync_api::exports::ws_edge::websocket::websocket_request::Transport {
        peer: None,
        tls: false,
    };
    let api = ws.ws_edge_websocket_websocket_request();
    match api.call_handle_head(&mut store, HEAD, transport, 0)? {
        sync_api::exports::ws_edge::websocket::websocket_request::HeadResult::Complete(h) => {
            Ok(h.handshake.response.status)
        }
        _ => wasmtime::bail!("incomplete for a complete head"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test components: make conformance-guests"]
async fn sync_bindings_on_a_worker_panic_when_the_guest_writes() {
    let (engine, component) = noisy();
    let outcome =
        tokio::spawn(async move { sync_handshake(&engine, &component).map_err(|e| e.to_string()) })
            .await;
    let panic = outcome.expect_err("the guest's write should have panicked the task");
    assert!(panic.is_panic(), "{panic}");
    let message = panic.into_panic();
    let text = message
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| message.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default();
    assert!(text.contains("runtime"), "unexpected panic: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test components: make conformance-guests"]
async fn sync_bindings_inside_block_in_place_work() {
    let (engine, component) = noisy();
    let status = tokio::spawn(async move {
        tokio::task::block_in_place(|| sync_handshake(&engine, &component))
            .map_err(|e| e.to_string())
    })
    .await
    .expect("no panic");
    assert_eq!(status, Ok(101));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the test components: make conformance-guests"]
async fn async_bindings_work() {
    use async_api::exports::ws_edge::websocket::websocket_request::{HeadResult, Transport};
    let (engine, component) = noisy();
    let status = tokio::spawn(async move {
        let mut linker = Linker::<Data>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let pre = async_api::WebsocketServerPre::new(linker.instantiate_pre(&component)?)?;
        let mut store = store(&engine);
        let ws = pre.instantiate_async(&mut store).await?;
        let transport = Transport {
            peer: None,
            tls: false,
        };
        let api = ws.ws_edge_websocket_websocket_request();
        match api.call_handle_head(&mut store, HEAD, transport, 0).await? {
            HeadResult::Complete(h) => Ok::<_, wasmtime::Error>(h.handshake.response.status),
            HeadResult::Incomplete => wasmtime::bail!("incomplete for a complete head"),
        }
    })
    .await
    .expect("no panic")
    .map_err(|e| e.to_string());
    assert_eq!(status, Ok(101));
}
