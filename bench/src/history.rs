//! Figure 10: channel history (`wisp.history`).
//!
//! - 10b, publishes per second into a channel that keeps history: one WebSocket client
//!   publishes `--messages` messages of `--size` bytes as fast as it can, and the rate is
//!   taken when an enveloped subscriber has received the last of them (each is stored
//!   before it is delivered, so that is when all are kept). Beside it, the same count and
//!   size published to a NATS JetStream stream (file storage, the same `max_msgs`), acks
//!   awaited with up to `--window` in flight: JetStream's own publish, pipelined as its
//!   clients do.
//! - 10c, reconnect: `--clients` enveloped clients are on the channel and have seen its
//!   newest message; all leave, `--behind` messages are published, and all come back at
//!   once with `?since=<offset>&epoch=<epoch>`. The figure is the time from the first
//!   reconnect to the last client having received every message it missed.
//!
//! Figure 10a (fan-out with history on against off) is figure 4's search on two channels,
//! run by `bench/run`.

use crate::net::{self, WebSocket};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(ClapArgs)]
pub struct Args {
    /// Wisp's address (HOST:PORT)
    #[arg(long)]
    addr: String,
    /// The WebSocket path of a channel that keeps history (`/ws-<hash>/<channel>`)
    #[arg(long)]
    ws_path: String,
    /// A nats-server with JetStream to compare the publish rate with (HOST:PORT)
    #[arg(long)]
    nats: Option<String>,
    /// Messages published in the publish-rate run
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
    /// Bytes per message
    #[arg(long, default_value_t = 100)]
    size: usize,
    /// Messages the channel keeps (its `wisp.history.size`; the JetStream stream's max_msgs)
    #[arg(long, default_value_t = 1000)]
    kept: i64,
    /// JetStream publishes awaiting their ack at once
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Clients that reconnect at once (0: skip the reconnect run)
    #[arg(long, default_value_t = 10_000)]
    clients: usize,
    /// Messages each reconnecting client missed
    #[arg(long, default_value_t = 10)]
    behind: u64,
}

const WAIT: Duration = Duration::from_secs(60);

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let mut result = json!({ "messages": args.messages, "size": args.size });
    result["wisp_publish_per_s"] = json!(wisp_publish_rate(&args).await?);
    if let Some(nats) = &args.nats {
        result["jetstream_publish_per_s"] = json!(jetstream_publish_rate(&args, nats).await?);
    }
    if args.clients > 0 {
        let (caught_up, connected) = reconnect(&args).await?;
        result["clients"] = json!(args.clients);
        result["behind"] = json!(args.behind);
        result["reconnect_caught_up_ms"] = json!(caught_up.as_secs_f64() * 1000.0);
        result["reconnect_connected_ms"] = json!(connected.as_secs_f64() * 1000.0);
    }
    Ok(result)
}

/// One enveloped frame's offset and epoch.
fn position(message: &Message) -> anyhow::Result<(u64, String)> {
    let Message::Text(text) = message else {
        bail!("expected an enveloped text frame, got {message:?}");
    };
    let envelope: Value = serde_json::from_str(text).context("an enveloped frame")?;
    let offset = envelope["offset"].as_u64().context("an offset")?;
    let epoch = envelope["epoch"].as_str().context("an epoch")?.to_owned();
    Ok((offset, epoch))
}

/// The next data frame, within [`WAIT`].
async fn next_frame(ws: &mut WebSocket) -> anyhow::Result<Message> {
    loop {
        let frame = tokio::time::timeout(WAIT, ws.next())
            .await
            .context("no message within a minute")?
            .context("the server closed the connection")??;
        if matches!(frame, Message::Text(_) | Message::Binary(_)) {
            return Ok(frame);
        }
        if let Message::Close(close) = frame {
            bail!("the server closed the connection: {close:?}");
        }
    }
}

/// Publishes into the history channel until the enveloped subscriber has all; per second.
async fn wisp_publish_rate(args: &Args) -> anyhow::Result<f64> {
    let enveloped = format!("{}?envelope=json", args.ws_path);
    let mut subscriber = net::websocket(&args.addr, &enveloped, 0, None).await?;
    let publisher = net::websocket(&args.addr, &args.ws_path, 1, None).await?;
    let mut sink = crate::fanout::wisp::spawn_reader(publisher);
    let payload = "h".repeat(args.size);
    let started = Instant::now();
    let sending = tokio::spawn({
        let count = args.messages;
        async move {
            for _ in 0..count / 100 {
                for _ in 0..100 {
                    sink.feed(Message::text(payload.as_str())).await?;
                }
                sink.flush().await?;
            }
            anyhow::Ok(sink)
        }
    });
    let mut first = None;
    let want = args.messages / 100 * 100;
    loop {
        let (offset, _) = position(&next_frame(&mut subscriber).await?)?;
        let first = *first.get_or_insert(offset);
        if offset + 1 - first >= want {
            break;
        }
    }
    let elapsed = started.elapsed();
    let _sink = sending.await??;
    Ok(want as f64 / elapsed.as_secs_f64())
}

/// The same count and size published to a JetStream stream, acks pipelined.
async fn jetstream_publish_rate(args: &Args, nats: &str) -> anyhow::Result<f64> {
    let client = async_nats::connect(nats)
        .await
        .with_context(|| format!("connecting to NATS at {nats}"))?;
    let jetstream = async_nats::jetstream::new(client);
    let name = "WISP_BENCH_HISTORY";
    let _ = jetstream.delete_stream(name).await;
    jetstream
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.into(),
            subjects: vec!["bench.history".into()],
            max_messages: args.kept,
            storage: async_nats::jetstream::stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("creating the JetStream stream")?;
    let payload = bytes::Bytes::from("h".repeat(args.size));
    let want = args.messages / 100 * 100;
    let mut pending = VecDeque::with_capacity(args.window);
    let started = Instant::now();
    for _ in 0..want {
        if pending.len() >= args.window {
            let ack: async_nats::jetstream::context::PublishAckFuture =
                pending.pop_front().expect("a pending publish");
            ack.await.context("a JetStream ack")?;
        }
        let ack = jetstream
            .publish("bench.history", payload.clone())
            .await
            .context("a JetStream publish")?;
        pending.push_back(ack);
    }
    for ack in pending {
        ack.await.context("a JetStream ack")?;
    }
    let elapsed = started.elapsed();
    let _ = jetstream.delete_stream(name).await;
    Ok(want as f64 / elapsed.as_secs_f64())
}

/// Clients that have seen the channel's newest message leave, `behind` messages are sent,
/// and all come back at once with `since`: how long until every one has them all, and
/// until every one is connected.
async fn reconnect(args: &Args) -> anyhow::Result<(Duration, Duration)> {
    let enveloped = format!("{}?envelope=json", args.ws_path);
    let publisher = net::websocket(&args.addr, &args.ws_path, 0, None).await?;
    let mut sink = crate::fanout::wisp::spawn_reader(publisher);
    // The clients join, 500 at a time; then one message tells each where the channel is.
    let mut clients = Vec::with_capacity(args.clients);
    for start in (0..args.clients).step_by(500) {
        let end = (start + 500).min(args.clients);
        let joining = (start..end).map(|i| net::websocket(&args.addr, &enveloped, i + 1, None));
        for client in futures_util::future::join_all(joining).await {
            clients.push(client?);
        }
    }
    sink.send(Message::text("where are we")).await?;
    let mut seen = None;
    for client in &mut clients {
        let at = position(&next_frame(client).await?)?;
        if seen.get_or_insert_with(|| at.clone()) != &at {
            bail!("clients disagree on the channel's position: {seen:?} and {at:?}");
        }
    }
    let (offset, epoch) = seen.context("no clients")?;
    drop(clients);
    // Sent while they are away: a watcher that stayed tells when all are kept.
    let mut watcher = net::websocket(&args.addr, &enveloped, 0, None).await?;
    for i in 0..args.behind {
        sink.feed(Message::text(format!("missed {i}"))).await?;
    }
    sink.flush().await?;
    for _ in 0..args.behind {
        next_frame(&mut watcher).await?;
    }

    let resume = format!("{enveloped}&since={offset}&epoch={epoch}");
    let started = Instant::now();
    let behind = args.behind;
    let returning = (0..args.clients).map(|i| {
        let (addr, resume) = (args.addr.clone(), resume.clone());
        tokio::spawn(async move {
            let mut ws = net::websocket(&addr, &resume, i + 1, None).await?;
            let connected = started.elapsed();
            for want in offset + 1..=offset + behind {
                let (got, _) = position(&next_frame(&mut ws).await?)?;
                if got != want {
                    bail!("offset {got} where {want} was due");
                }
            }
            anyhow::Ok((connected, started.elapsed(), ws))
        })
    });
    let mut caught_up = Duration::ZERO;
    let mut connected = Duration::ZERO;
    let mut kept = Vec::with_capacity(args.clients);
    for done in futures_util::future::join_all(returning).await {
        let (on, all, ws) = done??;
        connected = connected.max(on);
        caught_up = caught_up.max(all);
        kept.push(ws);
    }
    Ok((caught_up, connected))
}
