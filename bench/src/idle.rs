//! Memory per idle WebSocket connection (figure 6).
//!
//! Opens `--connections` WebSocket connections to one channel and holds them without sending
//! anything (each still answers the server's pings). The server's resident memory (`VmRSS` in
//! `/proc/<pid>/status`) is read before the connections open and again once they have all
//! been open for `--settle` seconds; growth / connections is the figure. One connection is
//! opened and closed first, so one-time set-up (the channel's topic, lazily built state) is
//! not charged to the idle connections.

use crate::{net, pace};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use futures_util::{stream, StreamExt};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

#[derive(ClapArgs)]
pub struct Args {
    /// host:port of the server
    #[arg(long)]
    addr: String,
    /// WebSocket path of a channel, /ws-<project hash>/<channel>
    #[arg(long)]
    ws_path: String,
    /// Connections to open and hold
    #[arg(long, default_value_t = 10_000)]
    connections: usize,
    /// The server's process id, whose RSS is read
    #[arg(long)]
    pid: u32,
    /// Seconds to wait after the last connection opened before reading RSS again
    #[arg(long, default_value_t = 2.0)]
    settle: f64,
}

/// Handshakes in flight at once.
const CONNECT_PARALLELISM: usize = 128;

pub async fn run(args: Args) -> anyhow::Result<Value> {
    // The client side stays small too: 10,000 sockets with tungstenite's default 128 KiB
    // read buffers would cost the load generator over a gigabyte for nothing.
    let config = WebSocketConfig::default().read_buffer_size(4096);
    let warm = net::websocket(&args.addr, &args.ws_path, 0, Some(config)).await?;
    drop(warm);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(args.pid)?;
    let started = Instant::now();
    let results: Vec<_> = stream::iter(0..args.connections)
        .map(|index| net::websocket(&args.addr, &args.ws_path, index, Some(config)))
        .buffer_unordered(CONNECT_PARALLELISM)
        .collect()
        .await;
    let open_time = started.elapsed();
    let mut holders = Vec::with_capacity(results.len());
    let mut first_error = None;
    for result in results {
        match result {
            Ok(socket) => holders.push(tokio::spawn(hold(socket))),
            Err(error) => {
                first_error.get_or_insert(format!("{error:#}"));
            }
        }
    }
    let opened = holders.len();
    if opened == 0 {
        bail!("no connection opened: {}", first_error.unwrap_or_default());
    }
    tokio::time::sleep(pace::seconds(args.settle)).await;
    let still_open = holders.iter().filter(|h| !h.is_finished()).count();
    let after = rss_kib(args.pid)?;
    for holder in &holders {
        holder.abort();
    }
    let growth = after.saturating_sub(before);
    Ok(json!({
        "connections": args.connections,
        "opened": opened,
        "still_open": still_open,
        "failed": args.connections - opened,
        "first_error": first_error,
        "open_s": open_time.as_secs_f64(),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "per_connection_kib": growth as f64 / still_open.max(1) as f64,
    }))
}

/// Keeps a connection open, reading so that pings are answered, until the server closes it.
async fn hold(mut socket: net::WebSocket) {
    while let Some(Ok(_)) = socket.next().await {}
}

/// The resident set size of process `pid`, in KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no VmRSS in {path}"))
}
