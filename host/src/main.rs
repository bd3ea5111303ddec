//! `ws-edge`: serve WebSocket clients with a ws-edge component.

mod scaffold;

use std::io::{IsTerminal as _, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use ws_edge_host::{Limits, PubSubLimits, Server};

/// Serve RFC 6455 WebSocket connections with a wasm32-wasip2 component.
#[derive(Parser)]
#[command(name = "ws-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve WebSocket connections with a component.
    ///
    /// Prints `listening on ws://ADDR` (or wss://) once bound. With the
    /// bundled echo (or --demo-page) a plain `GET /` without `Upgrade`
    /// returns a small demo page. Logs go to stderr; set RUST_LOG (e.g.
    /// RUST_LOG=ws_edge_host=debug) for more. SIGHUP reloads the component
    /// files and the TLS certificate; SIGINT/SIGTERM close open connections
    /// with 1001 and exit.
    Serve(Box<Serve>),
    /// Create a handler project in directory NAME: it builds with `cargo
    /// build --release`, tests with `cargo test` and echoes out of the box.
    New(New),
    /// Run a wasi:cli command component (the test runner of `ws-edge new`
    /// projects: `cargo test` runs its test binary with it).
    Run(Run),
}

#[derive(clap::Args)]
struct New {
    /// The package name, also the directory created.
    name: String,

    /// Create the project here instead of ./NAME.
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,

    /// The ws-edge-guest crate to depend on (by path). Default: the guest/
    /// directory of the checkout this binary was built from.
    #[arg(long, value_name = "PATH")]
    guest: Option<PathBuf>,
}

#[derive(clap::Args)]
struct Run {
    /// The command component (.wasm).
    component: PathBuf,

    /// Arguments passed to the component.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(clap::Args)]
struct Serve {
    /// The component (.wasm) exporting ws-edge:websocket/websocket-request@0.2.0,
    /// serving every path no --route serves. Default: the bundled echo
    /// component.
    component: Option<PathBuf>,

    /// Serves paths under PATH with COMPONENT (repeatable): PATH itself and
    /// PATH/...; the longest matching PATH wins, then the positional
    /// component. SIGHUP and POST /reload read the files again.
    #[arg(long = "route", value_name = "PATH=COMPONENT", value_parser = parse_route)]
    routes: Vec<(String, PathBuf)>,

    /// Serve only the --route paths: any other path gets 404 from the host.
    #[arg(long)]
    no_default_route: bool,

    /// PEM certificate chain: serve wss:// (needs --tls-key). Read again on
    /// SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:8080", env = "WS_EDGE_LISTEN")]
    listen: SocketAddr,

    /// Connections served at once (also sizes the instance pool).
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,

    /// Largest request head in bytes; longer heads get 431.
    #[arg(long, default_value_t = 8192)]
    max_head_bytes: usize,

    /// Seconds a client may take to send its request head (then 408).
    #[arg(long, default_value_t = 10.0)]
    head_timeout: f64,

    /// Seconds one write may wait for a peer that does not read before the
    /// connection is dropped.
    #[arg(long, default_value_t = 30.0)]
    write_timeout: f64,

    /// Milliseconds one guest call may run before it is trapped (rounded up
    /// to the 10 ms epoch tick). The connection then ends with 500 or 1011.
    #[arg(long, default_value_t = 100)]
    cpu_deadline_ms: u64,

    /// Linear memory one connection's instance may use, in MiB, all its
    /// memories together. Exceeding it ends the connection with 500 or 1011;
    /// a component whose initial memories exceed it is refused at start.
    #[arg(long, default_value_t = 64)]
    memory_mib: usize,

    /// Seconds open connections get to finish their close handshake after
    /// SIGINT/SIGTERM.
    #[arg(long, default_value_t = 5.0)]
    shutdown_timeout: f64,

    /// Connections one component instance may serve, one after another.
    /// 1 (the default) gives every connection a fresh instance. Higher
    /// values skip instantiation for most connections, but a connection then
    /// sees the guest's global state and heap as the previous one left them:
    /// only for components that keep per-connection state in their
    /// `connection` resource.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    instance_reuse: u32,

    /// KiB of linear memory each pool slot keeps resident between
    /// connections (default 0: none). When the components' memories start
    /// at most this large (128 for Rust components with a 64 KiB stack),
    /// instances start without page faults, about 15 µs less per
    /// connection, but a free slot that has served holds that memory (up to
    /// --warm-pool-mib in all) and a connection on it holds all of it. For
    /// short connections, not for many idle ones.
    #[arg(long, default_value_t = 0)]
    warm_memory_kib: usize,

    /// With --warm-memory-kib, the most MiB the free pool slots together
    /// keep resident: checked every 10 ms, and when they hold more, all of
    /// it is given back.
    #[arg(long, default_value_t = 64)]
    warm_pool_mib: usize,

    /// MiB that all instances together may hold (memory grown beyond each
    /// instance's initial size, plus bytes waiting for slow readers). Above
    /// 80 % new connections get 503 with Retry-After; above 90 % the
    /// connections holding the most are closed with 1013. Default: half the
    /// machine's memory or of its cgroup limit, whichever is lower (logged
    /// at start).
    #[arg(long)]
    memory_budget_mib: Option<usize>,

    /// Sets KEY=VALUE in the component's environment (wasi:cli/environment),
    /// the component's configuration; repeatable. Components built with the
    /// Rust guest library read their connection limits from it, for example
    /// --env WS_EDGE_MAX_MESSAGE=16777216.
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,

    /// Bridge the publish/subscribe service through this NATS server
    /// (nats://HOST:PORT), so that hosts sharing it share topics. Without
    /// it, topics are local to this process. An unreachable broker does not
    /// stop the host: local delivery goes on and the bridge reconnects.
    #[arg(long, value_name = "URL", env = "WS_EDGE_BROKER")]
    broker: Option<String>,

    /// Serve the admin endpoints (GET /healthz, /readyz, /metrics; POST
    /// /publish?topic=T, /reload) on this address. Off by default.
    #[arg(long, value_name = "ADDR")]
    admin_listen: Option<SocketAddr>,

    /// Require `Authorization: Bearer TOKEN` on the admin endpoints (all but
    /// /healthz). Prefer the environment variable to the flag.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "WS_EDGE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    /// Topics one connection may subscribe to at once.
    #[arg(long, default_value_t = 32)]
    pubsub_max_subscriptions: usize,

    /// Largest payload a component or the admin endpoint may publish, in
    /// bytes.
    #[arg(long, default_value_t = 65_536)]
    pubsub_max_payload: usize,

    /// Publications queued for one connection before it is closed as a slow
    /// consumer (1008).
    #[arg(long, default_value_t = 1024)]
    pubsub_queue_messages: usize,

    /// Payload bytes queued for one connection before it is closed as a
    /// slow consumer (1008).
    #[arg(long, default_value_t = 1 << 20)]
    pubsub_queue_bytes: usize,

    /// Log format on stderr: `text` for people, `json` (one object per line,
    /// with the connection's span: id and peer) for machines.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,

    /// Answer a plain `GET /` with the echo demo page instead of passing it
    /// to the component. On by default only for the bundled echo.
    #[arg(long)]
    demo_page: bool,
}

/// `--log-format`.
#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn parse_route(arg: &str) -> Result<(String, PathBuf), String> {
    match arg.split_once('=') {
        Some((path, file)) if path.starts_with('/') && !file.is_empty() => {
            Ok((path.to_owned(), PathBuf::from(file)))
        }
        _ => Err(format!(
            "expected PATH=COMPONENT with PATH starting with '/', got {arg:?}"
        )),
    }
}

fn parse_env(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, got {arg:?}")),
    }
}

fn seconds(name: &str, value: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .with_context(|| format!("--{name} must be a non-negative number of seconds"))
}

fn main() -> anyhow::Result<()> {
    let args = match Cli::parse().command {
        Command::Serve(args) => *args,
        Command::New(args) => return new(args),
        Command::Run(args) => return run(args),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a terminal: a file or a pipe gets plain text.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match args.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().with_current_span(true).init(),
    }
    raise_open_files_limit();
    let limits = Limits {
        max_connections: args.max_connections,
        max_head_bytes: args.max_head_bytes,
        head_timeout: seconds("head-timeout", args.head_timeout)?,
        write_timeout: seconds("write-timeout", args.write_timeout)?,
        cpu_deadline: Duration::from_millis(args.cpu_deadline_ms),
        memory_per_connection: args
            .memory_mib
            .checked_mul(1 << 20)
            .context("--memory-mib is too large")?,
        shutdown_timeout: seconds("shutdown-timeout", args.shutdown_timeout)?,
        instance_reuse: args.instance_reuse,
        warm_memory: args
            .warm_memory_kib
            .checked_mul(1024)
            .context("--warm-memory-kib is too large")?,
        warm_pool: args
            .warm_pool_mib
            .checked_mul(1 << 20)
            .context("--warm-pool-mib is too large")?,
        memory_budget: match args.memory_budget_mib {
            Some(mib) => mib
                .checked_mul(1 << 20)
                .context("--memory-budget-mib is too large")?,
            None => ws_edge_host::default_budget(),
        },
    };
    tracing::info!(
        memory_budget_mib = limits.memory_budget >> 20,
        default = args.memory_budget_mib.is_none(),
        "memory budget"
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let mut builder = Server::builder()
            .listen(args.listen)
            .limits(limits)
            .pubsub_limits(PubSubLimits {
                max_subscriptions: args.pubsub_max_subscriptions,
                max_payload: args.pubsub_max_payload,
                queue_messages: args.pubsub_queue_messages,
                queue_bytes: args.pubsub_queue_bytes,
            });
        if let Some(url) = &args.broker {
            builder = builder.broker(url);
        }
        if let Some(addr) = args.admin_listen {
            builder = builder.admin_listen(addr);
        }
        if let Some(token) = &args.admin_token {
            builder = builder.admin_token(token);
        }
        for (key, value) in &args.env {
            builder = builder.env(key, value);
        }
        if let Some(path) = &args.component {
            builder = builder.component_file(path);
        }
        for (prefix, file) in &args.routes {
            builder = builder.route(prefix, file);
        }
        if args.no_default_route {
            builder = builder.no_default_route();
        }
        if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
            builder = builder.tls(cert, key);
        }
        if args.demo_page {
            builder = builder.demo_page(true);
        }
        let server = builder.bind().await?;
        let reloader = server.reloader();
        tokio::spawn(reload_on_sighup(reloader));
        {
            let mut out = std::io::stdout().lock();
            let scheme = if server.is_tls() { "wss" } else { "ws" };
            writeln!(out, "listening on {scheme}://{}", server.local_addr())?;
            if let Some(admin) = server.admin_addr() {
                writeln!(out, "admin on http://{admin}")?;
            }
            out.flush()?;
        }
        for (prefix, file) in &args.routes {
            tracing::info!(route = %prefix, component = %file.display(), "serving");
        }
        if !args.no_default_route {
            tracing::info!(
                route = "default",
                component = %args.component.as_ref().map_or("bundled echo".into(), |p| p.display().to_string()),
                "serving"
            );
        }
        // The accept loop runs on a worker thread, as the connections it
        // spawns do. Run here, on `block_on`'s own thread, each accepted
        // connection would wake a worker through the I/O driver (an eventfd
        // write and futex calls per connection).
        tokio::spawn(server.run(shutdown_signal()))
            .await
            .context("the accept loop panicked")?
    })
}

/// `ws-edge new`.
fn new(args: New) -> anyhow::Result<()> {
    scaffold::check_name(&args.name)?;
    let project = scaffold::Project {
        name: args.name.clone(),
        guest: scaffold::guest_dir(args.guest.as_deref())?,
        runner: scaffold::runner(),
    };
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    project.write(&dir)?;
    let crate_name = args.name.replace('-', "_");
    println!(
        "created {dir}\n\n  cd {dir}\n  cargo build --release\n  cargo test\n  \
         ws-edge serve target/wasm32-wasip2/release/{crate_name}.wasm",
        dir = dir.display()
    );
    Ok(())
}

/// `ws-edge run`: the component's exit code becomes ours. Logs default to
/// WARN, so that a test run's output stays readable (RUST_LOG for more).
fn run(args: Run) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    let code = ws_edge_host::run_command(&args.component, &args.args)?;
    std::process::exit(code);
}

/// Raises the soft limit on open files to the hard one (every connection
/// is a descriptor) and logs both.
fn raise_open_files_limit() {
    let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(soft) => {
            let hard = before.map(|(_, hard)| hard).unwrap_or(soft);
            tracing::info!(
                soft_before = before.map(|(soft, _)| soft).unwrap_or(0),
                soft,
                hard,
                "open files limit"
            );
        }
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
}

/// Reloads the components and the TLS certificate on every SIGHUP.
async fn reload_on_sighup(reloader: ws_edge_host::Reloader) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hup = match signal(SignalKind::hangup()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGHUP, reload only with POST /reload: {e}");
            return;
        }
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading");
        let outcomes = reloader.reload().await;
        let refused = outcomes.iter().filter(|r| r.outcome.is_err()).count();
        tracing::info!(reloaded = outcomes.len() - refused, refused, "reload done");
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
        _ = term.recv() => tracing::info!("SIGTERM received"),
    }
}
