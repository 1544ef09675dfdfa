//! Fan-out (figures 4, 4c, 5 and 5c): one publisher, N subscribers of one channel.
//!
//! The publisher sends at a fixed rate (open loop); every message carries its step, sequence
//! number and intended send time (see [`payload`]), so each delivery's latency runs from when
//! the message was due, whatever the publisher or server did meanwhile. A run reports
//! deliveries/s, the fraction delivered and the publish→deliver latency.
//!
//! `fanout-max` searches for the highest rate a target sustains with every message delivered
//! to every subscriber and p99 under a limit: it doubles the rate until a step fails, then
//! bisects (geometrically) between the last pass and the first failure. A rate counts as
//! failed only when it fails twice in a row, so one hiccup of the machine does not end the
//! search early.
//!
//! With `--publish-addr`, the publisher connects to another Wisp node than the subscribers:
//! two nodes of one cluster (figures 4c and 5c), so every message goes from node to node
//! through NATS. `--server-pid` then takes every process serving the run, and their CPU use
//! is summed.
//!
//! One small client per target: [`wisp`] (WebSocket bridge), [`redis`] (RESP),
//! [`nats`] (core protocol), [`pybroker`] (seed 003's text commands over WebSocket).

mod fleet;
mod nats;
mod payload;
mod pybroker;
mod rawws;
mod redis;
pub mod wisp;

use crate::pace;
use anyhow::{bail, Context};
use clap::{Args as ClapArgs, ValueEnum};
use fleet::{Fleet, Step};
use serde_json::{json, Value};
use std::time::Duration;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Target {
    Wisp,
    Redis,
    Nats,
    Pybroker,
}

/// Where to connect, and on which channel.
#[derive(ClapArgs, Clone)]
pub struct Endpoint {
    /// Which server speaks at --addr
    #[arg(long, value_enum)]
    target: Target,
    /// host:port of the server (the subscribers connect here)
    #[arg(long)]
    addr: String,
    /// Wisp only: host:port of the node the publisher connects to, another node of the same
    /// cluster as --addr, so every message crosses from one node to the other [default: --addr]
    #[arg(long)]
    publish_addr: Option<String>,
    /// The channel (Redis channel, NATS subject, Python broker channel)
    #[arg(long, default_value = "bench-fanout")]
    channel: String,
    /// Wisp only: the WebSocket path of the channel, /ws-<project hash>/<channel>
    #[arg(long, required_if_eq("target", "wisp"))]
    ws_path: Option<String>,
    /// The server's process id, to report its CPU use during each step. Several (repeated or
    /// comma-separated: the processes of a cluster) report their sum, and each in
    /// `server_cpu_each`
    #[arg(long, value_delimiter = ',')]
    server_pid: Vec<u32>,
}

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Subscriber connections
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// Messages per second from the publisher
    #[arg(long)]
    rate: f64,
    /// Seconds measured
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of the same load before measuring
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Message size in bytes
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds to wait for the last deliveries after the last publish
    #[arg(long, default_value_t = 1.0)]
    drain: f64,
}

#[derive(ClapArgs)]
pub struct MaxArgs {
    #[command(flatten)]
    endpoint: Endpoint,
    /// Subscriber connections
    #[arg(long, default_value_t = 100)]
    subscribers: usize,
    /// First rate tried, messages/s
    #[arg(long, default_value_t = 100.0)]
    start: f64,
    /// Seconds per step
    #[arg(long, default_value_t = 2.0)]
    step_duration: f64,
    /// Bisection steps after the doubling has found a failing rate
    #[arg(long, default_value_t = 3)]
    bisect: u32,
    /// A step passes only if p99 is under this many milliseconds
    #[arg(long, default_value_t = 50.0)]
    p99_limit_ms: f64,
    /// Seconds of load at --start before the search
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Message size in bytes
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Seconds to wait for the last deliveries after a step's last publish
    #[arg(long, default_value_t = 1.0)]
    drain: f64,
    /// Never try more than this many messages/s
    #[arg(long, default_value_t = 10_000_000.0)]
    max_rate: f64,
    /// Never try fewer than this many messages/s
    #[arg(long, default_value_t = 1.0)]
    min_rate: f64,
}

/// Tries of a rate before it counts as failed.
const ATTEMPTS: u32 = 2;

/// Longest wait for an overloaded server's backlog to drain before reconnecting everyone.
const QUIET_LIMIT: Duration = Duration::from_secs(5);

/// A fixed-rate run: warm-up, then one measured step.
pub async fn run(args: Args) -> anyhow::Result<Value> {
    if args.rate <= 0.0 {
        bail!("--rate must be above zero");
    }
    let mut fleet = Fleet::connect(&args.endpoint, args.subscribers, args.size).await?;
    let drain = pace::seconds(args.drain);
    if args.warmup > 0.0 {
        fleet
            .step(1, args.rate, pace::seconds(args.warmup), drain)
            .await?;
        fleet.wait_quiet(QUIET_LIMIT).await;
    }
    let step = fleet
        .step(2, args.rate, pace::seconds(args.duration), drain)
        .await?;
    let mut out = json!({"target": args.endpoint.target.name(), "size": args.size});
    crate::http::merge(&mut out, step.to_json());
    Ok(out)
}

/// The search for the highest passing rate.
pub async fn run_max(args: MaxArgs) -> anyhow::Result<Value> {
    let p99_limit = Duration::from_secs_f64(args.p99_limit_ms / 1e3);
    let step_duration = pace::seconds(args.step_duration);
    let drain = pace::seconds(args.drain);
    let mut fleet = Fleet::connect(&args.endpoint, args.subscribers, args.size).await?;
    let mut step_number = 1;
    if args.warmup > 0.0 {
        fleet
            .step(step_number, args.start, pace::seconds(args.warmup), drain)
            .await?;
        step_number += 1;
        fleet.wait_quiet(QUIET_LIMIT).await;
    }
    let mut log = Vec::new();
    let mut best: Option<Step> = None;
    let mut failed: Option<f64> = None;
    let mut rate = args.start;
    // Double (or halve) until the rate is bracketed, then bisect.
    let mut bisections = 0;
    loop {
        // A rate fails only if it fails twice: one stall of the machine (another process
        // taking the core for a moment) must not end the search.
        let mut attempt = 0;
        let (step, pass) = loop {
            attempt += 1;
            let step = fleet.step(step_number, rate, step_duration, drain).await?;
            step_number += 1;
            let pass = step.passes(p99_limit);
            let mut entry = step.to_json();
            crate::http::merge(&mut entry, json!({"pass": pass, "attempt": attempt}));
            log.push(entry);
            if !fleet.healthy() || !fleet.wait_quiet(QUIET_LIMIT).await {
                // Disconnected subscribers (a server closing slow consumers) or a backlog
                // still draining: start the next step from fresh connections.
                drop(fleet);
                fleet = Fleet::connect(&args.endpoint, args.subscribers, args.size)
                    .await
                    .context("reconnecting after a failed step")?;
            }
            if pass || attempt == ATTEMPTS {
                break (step, pass);
            }
        };
        if pass {
            best = Some(step);
        } else {
            failed = Some(rate);
        }
        let next = match (&best, failed) {
            (Some(best), Some(failed)) => {
                if bisections >= args.bisect {
                    break;
                }
                bisections += 1;
                (best.rate * failed).sqrt()
            }
            (Some(best), None) => best.rate * 2.0,
            (None, _) => rate / 2.0,
        };
        if next > args.max_rate || next < args.min_rate {
            break;
        }
        rate = next;
    }
    let mut out = json!({
        "target": args.endpoint.target.name(),
        "subscribers": args.subscribers,
        "size": args.size,
        "p99_limit_ms": args.p99_limit_ms,
        "max_rate": best.as_ref().map_or(0.0, |b| b.rate),
        "first_failing_rate": failed,
        "steps": log,
    });
    if let Some(best) = &best {
        crate::http::merge(&mut out, best.to_json());
    } else {
        crate::http::merge(&mut out, json!({"deliveries_per_s": 0.0}));
    }
    Ok(out)
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Self::Wisp => "wisp",
            Self::Redis => "redis",
            Self::Nats => "nats",
            Self::Pybroker => "pybroker",
        }
    }
}

/// A subscriber connection of any target.
pub enum Subscriber {
    Wisp(wisp::Subscriber),
    Redis(redis::Subscriber),
    Nats(nats::Subscriber),
    Pybroker(pybroker::Subscriber),
}

impl Subscriber {
    async fn connect(endpoint: &Endpoint, index: usize) -> anyhow::Result<Self> {
        let (addr, channel) = (endpoint.addr.as_str(), endpoint.channel.as_str());
        Ok(match endpoint.target {
            Target::Wisp => {
                Self::Wisp(wisp::Subscriber::connect(addr, endpoint.ws_path()?, index).await?)
            }
            Target::Redis => Self::Redis(redis::Subscriber::connect(addr, channel, index).await?),
            Target::Nats => Self::Nats(nats::Subscriber::connect(addr, channel, index).await?),
            Target::Pybroker => {
                Self::Pybroker(pybroker::Subscriber::connect(addr, channel, index).await?)
            }
        })
    }

    /// Waits for the next deliveries and hands `on` each message (as published), in
    /// order, straight out of the connection's read buffer; `false` once the connection
    /// has ended.
    async fn batch(&mut self, on: &mut impl FnMut(&[u8])) -> anyhow::Result<bool> {
        match self {
            Self::Wisp(s) => s.batch(on).await,
            Self::Redis(s) => s.batch(on).await,
            Self::Nats(s) => s.batch(on).await,
            Self::Pybroker(s) => s.batch(on).await,
        }
    }
}

/// The publishing connection of any target.
pub enum Publisher {
    Wisp(wisp::Publisher),
    Redis(redis::Publisher),
    Nats(nats::Publisher),
    Pybroker(pybroker::Publisher),
}

impl Publisher {
    async fn connect(endpoint: &Endpoint, index: usize) -> anyhow::Result<Self> {
        let (addr, channel) = (endpoint.publish_addr()?, endpoint.channel.as_str());
        Ok(match endpoint.target {
            Target::Wisp => {
                Self::Wisp(wisp::Publisher::connect(addr, endpoint.ws_path()?, index).await?)
            }
            Target::Redis => Self::Redis(redis::Publisher::connect(addr, channel, index).await?),
            Target::Nats => Self::Nats(nats::Publisher::connect(addr, channel, index).await?),
            Target::Pybroker => {
                Self::Pybroker(pybroker::Publisher::connect(addr, channel, index).await?)
            }
        })
    }

    /// Sends these messages now, in one write where the protocol allows.
    async fn publish(&mut self, payloads: &[String]) -> anyhow::Result<()> {
        match self {
            Self::Wisp(p) => p.publish(payloads).await,
            Self::Redis(p) => p.publish(payloads).await,
            Self::Nats(p) => p.publish(payloads).await,
            Self::Pybroker(p) => p.publish(payloads).await,
        }
    }
}

impl Endpoint {
    /// Where the publisher connects: --publish-addr (Wisp only), else --addr.
    fn publish_addr(&self) -> anyhow::Result<&str> {
        match (&self.publish_addr, self.target) {
            (None, _) => Ok(&self.addr),
            (Some(addr), Target::Wisp) => Ok(addr),
            (Some(_), target) => bail!(
                "--publish-addr is for --target wisp only (not {})",
                target.name()
            ),
        }
    }

    fn ws_path(&self) -> anyhow::Result<&str> {
        self.ws_path
            .as_deref()
            .context("--ws-path is required for --target wisp")
    }
}
