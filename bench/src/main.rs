//! `wisp-bench`: the load generator and native peer behind `bench/run`.
//!
//! Every measuring subcommand prints one JSON line of results to stdout, so `bench/run` can
//! collect runs and `wisp-bench report` can turn them into `docs/performance.md`.
//!
//! # Layout
//! - [`http`]: keep-alive HTTP/1.1 load, closed loop (`--max`) or open loop (`--rate`).
//! - [`native`]: a plain hyper hello server, the ceiling for figure 1.
//! - [`fanout`]: one publisher, N subscribers, on Wisp, Redis, NATS or the Python broker;
//!   a fixed-rate run and the search for the highest passing rate.
//! - [`invoke`]: one HTTP invocation with no network, beside wasmtime's own floor.
//! - [`idle`]: many idle WebSocket connections, and the server's RSS growth.
//! - [`pubsub_fn`]: completed pub/sub-triggered function invocations per second.
//! - [`history`]: publishes into a channel that keeps history, beside JetStream; many
//!   clients resuming at once.
//! - [`handshake`]: WebSocket handshakes per second, Wisp's public and private (token)
//!   channels beside nats-server's WebSocket listener.
//! - [`startup`]: start a server and time its first answered request.
//! - [`report`]: medians of the collected runs, rendered as the markdown table.
//! - [`pace`], [`net`], [`stats`], [`cpu`]: precise waits, client sockets, latency histograms,
//!   CPU use of the server and of the load generator.

mod cpu;
mod fanout;
mod handshake;
mod history;
mod http;
mod idle;
mod invoke;
mod native;
mod net;
mod outbound;
mod pace;
mod pubsub_fn;
mod report;
mod startup;
mod state;
mod stats;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "wisp-bench",
    about = "Load generator and peers for Wisp's benchmark"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Keep-alive HTTP/1.1 GET load; prints requests/s and latency
    Http(http::Args),
    /// Serve `Hello, World!` with plain hyper (the native ceiling)
    NativeHello(native::Args),
    /// One publisher at a fixed rate, N subscribers; prints deliveries/s and latency
    Fanout(fanout::Args),
    /// Search for the highest fan-out rate with 100% delivered and p99 under a limit
    FanoutMax(fanout::MaxArgs),
    /// Time one HTTP invocation in process, and wasmtime's instance floor beside it
    Invoke(invoke::Args),
    /// Hold many idle WebSocket connections; prints the server's RSS growth per connection
    IdleWs(idle::Args),
    /// Count completed pub/sub-triggered function invocations per second
    PubsubFn(pubsub_fn::Args),
    /// Database puts and gets from a guest, beside Redis SET and GET from a native client
    State(state::Args),
    /// Publishes into a channel that keeps history beside JetStream, and 10,000 clients' resume
    History(history::Args),
    /// WebSocket handshakes/s: a Wisp channel, a private one (a token each), nats-server
    Handshake(handshake::Args),
    /// Outbound HTTP GETs from a guest, beside a native hyper client, to one local server
    Outbound(outbound::Args),
    /// Start a server command and time its first 2xx answer
    Startup(startup::Args),
    /// Turn collected results into docs/performance.md
    Report(report::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // One worker per CPU this process may use: under `taskset -c 0` that is one, so the load
    // generator stays on its core and leaves the other to the server.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    // The command runs as a spawned task, on the worker threads: `block_on` would run it on
    // the main thread, which would then compete with the workers for the one pinned core and
    // add scheduler time slices (milliseconds) to the latencies measured.
    let task = runtime.spawn(async move {
        match cli.command {
            Command::Http(args) => http::run(args).await,
            Command::NativeHello(args) => native::run(args).await,
            Command::Fanout(args) => fanout::run(args).await,
            Command::FanoutMax(args) => fanout::run_max(args).await,
            Command::Invoke(args) => invoke::run(args).await,
            Command::IdleWs(args) => idle::run(args).await,
            Command::PubsubFn(args) => pubsub_fn::run(args).await,
            Command::Startup(args) => startup::run(args).await,
            Command::State(args) => state::run(args).await,
            Command::Outbound(args) => outbound::run(args).await,
            Command::History(args) => history::run(args).await,
            Command::Handshake(args) => handshake::run(args).await,
            Command::Report(args) => report::run(args),
        }
    });
    let output = runtime.block_on(task)??;
    if !output.is_null() {
        println!("{output}");
    }
    // Connection tasks may still be parked on sockets; they need not finish.
    runtime.shutdown_background();
    Ok(())
}
