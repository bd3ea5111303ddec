//! `ws-edge run`: runs a `wasi:cli` command component in the foreground,
//! with the caller's stdio, arguments and environment. It is the
//! `runner` of projects made by `ws-edge new`: their `cargo test` builds
//! the test binary for `wasm32-wasip2` (a command component) and runs it
//! here, so handler tests run in the target they ship for, with no other
//! runtime installed.
//!
//! Besides WASI it provides `wasi:logging` (records go to the host's log,
//! as when serving); the functions of other `ws-edge:` imports, such as
//! `ws-edge:websocket/pubsub`, fail with an error when called.

use std::path::Path;

use anyhow::{Context as _, anyhow};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Engine, Store};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::{I32Exit, WasiCtx, WasiCtxView, WasiView};

/// The store of a command: WASI and its resources.
struct CommandState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for CommandState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

/// Defines the functions of the component's `ws-edge:` imports (the
/// server's services, such as `pubsub`) as errors: a test that calls one
/// fails with a message, the others run. WASI imports are left to WASI
/// (wasmtime's own `define_unknown_imports_as_traps` would also stub a WASI
/// import whose patch version differs from the one defined).
fn stub_host_services(
    engine: &Engine,
    component: &Component,
    linker: &mut Linker<CommandState>,
) -> wasmtime::Result<()> {
    let ty = component.component_type();
    for (name, import) in ty.imports(engine) {
        if !name.starts_with("ws-edge:") {
            continue;
        }
        let ComponentItem::ComponentInstance(instance) = import.ty else {
            continue;
        };
        let mut stubs = linker.instance(name)?;
        for (func, export) in instance.exports(engine) {
            if let ComponentItem::ComponentFunc(_) = export.ty {
                let what = format!("{name}#{func}");
                stubs.func_new(func, move |_, _, _, _| {
                    Err(wasmtime::Error::msg(format!(
                        "{what} is a service of `ws-edge serve`, not of `ws-edge run`"
                    )))
                })?;
            }
        }
    }
    Ok(())
}

/// Runs the command component at `path` with `args` (the program's own
/// arguments; the path is passed as the first one) and returns its exit
/// code: 0 on success, the code it exited with, 1 when `run` returned an
/// error, 101 when it trapped (a panic aborts on `wasm32-wasip2`).
pub fn run_command(path: &Path, args: &[String]) -> anyhow::Result<i32> {
    let engine = Engine::default();
    let component = Component::from_file(&engine, path)
        .map_err(|e| anyhow!("compiling {}: {e:?}", path.display()))?;
    let mut linker = Linker::<CommandState>::new(&engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
        .map_err(|e| anyhow!("adding WASI to the linker: {e}"))?;
    crate::guest_log::add_to_linker(&mut linker)
        .map_err(|e| anyhow!("adding wasi:logging/logging to the linker: {e}"))?;
    stub_host_services(&engine, &component, &mut linker)
        .map_err(|e| anyhow!("linking {}: {e}", path.display()))?;

    let mut argv = vec![path.display().to_string()];
    argv.extend(args.iter().cloned());
    let mut wasi = WasiCtx::builder();
    wasi.inherit_stdio().inherit_env().args(&argv);
    let mut store = Store::new(
        &engine,
        CommandState {
            ctx: wasi.build(),
            table: ResourceTable::new(),
        },
    );
    let command = Command::instantiate(&mut store, &component, &linker)
        .map_err(|e| anyhow!("{} is not a command component: {e:?}", path.display()))
        .context("`ws-edge run` runs wasi:cli/run components, such as test binaries")?;
    match command.wasi_cli_run().call_run(&mut store) {
        Ok(Ok(())) => Ok(0),
        Ok(Err(())) => Ok(1),
        Err(e) => match e.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => {
                // A panic aborts on wasm32-wasip2: its message is printed
                // already; the trap's backtrace only with RUST_BACKTRACE.
                if std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0") {
                    eprintln!("{}: {e:?}", path.display());
                } else {
                    eprintln!("{}: the component trapped (a panic aborts)", path.display());
                }
                Ok(101)
            }
        },
    }
}
