//! Pub/sub-triggered function invocations per second (figure 7).
//!
//! A WebSocket client publishes 64-byte messages to `bench-fn-in`. The project's `ack`
//! function is triggered by each one, reads its data and publishes the first 16 bytes to
//! `bench-fn-ack`, where a second WebSocket client counts them. Each ack therefore stands for
//! one complete invocation: event delivered, data read through the host calls, guest run to
//! its own publish. The figure is acks/s over the measured window.
//!
//! The load is a closed loop with a window: at most `--window` messages are waiting for
//! their ack at any time. That keeps the function busy all the time without overrunning
//! Wisp's per-subscription queue (which drops messages past 1,024 waiting), so what is
//! measured is the sustained invocation rate and not a drop rate. The 16 bytes echoed back
//! are the send time, so the ack's latency (publish → function → ack) comes for free.

use crate::{net, pace, stats};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio_tungstenite::tungstenite::Message;

#[derive(ClapArgs)]
pub struct Args {
    /// host:port of Wisp
    #[arg(long)]
    addr: String,
    /// WebSocket path of the trigger channel, /ws-<project hash>/bench-fn-in
    #[arg(long)]
    in_path: String,
    /// WebSocket path of the ack channel, /ws-<project hash>/bench-fn-ack
    #[arg(long)]
    ack_path: String,
    /// Seconds measured
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Most messages waiting for their ack
    #[arg(long, default_value_t = 256)]
    window: usize,
    /// Message size in bytes
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Wisp's process id, to report its CPU use while measured
    #[arg(long)]
    server_pid: Option<u32>,
}

/// The send-time field that marks a readiness probe instead of a measured message.
const PROBE: &str = "ffffffffffffffff";

/// No ack for this long means the function stopped answering.
const STALL: Duration = Duration::from_secs(10);

/// What the ack reader has counted.
struct Acks {
    counted: AtomicU64,
    probes: AtomicU64,
    last: Mutex<Instant>,
    latency: Mutex<hdrhistogram::Histogram<u64>>,
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    if args.size < PROBE.len() {
        bail!("--size must be at least {} bytes", PROBE.len());
    }
    let epoch = Instant::now();
    let acks_socket = net::websocket(&args.addr, &args.ack_path, 0, None).await?;
    let publisher = net::websocket(&args.addr, &args.in_path, 1, None).await?;
    let (mut publisher, mut replies) = publisher.split();
    // Wisp sends a publisher nothing of its own; read anyway so pings are answered.
    tokio::spawn(async move { while let Some(Ok(_)) = replies.next().await {} });

    let measured = Arc::new(Mutex::new(None::<(Instant, Instant)>));
    let acks = Arc::new(Acks {
        counted: AtomicU64::new(0),
        probes: AtomicU64::new(0),
        last: Mutex::new(Instant::now()),
        latency: Mutex::new(stats::histogram()),
    });
    let window = Arc::new(Semaphore::new(0));
    let reader = tokio::spawn(read_acks(
        acks_socket,
        acks.clone(),
        window.clone(),
        measured.clone(),
        epoch,
    ));

    // Probe until an ack comes back: the function is subscribed and the ack client too.
    let probe = pad(PROBE, args.size);
    let deadline = Instant::now() + STALL;
    while acks.probes.load(Ordering::SeqCst) == 0 {
        if Instant::now() > deadline || reader.is_finished() {
            bail!(
                "no ack on {} within {STALL:?}: is the ack function deployed?",
                args.ack_path
            );
        }
        publisher.send(Message::text(probe.clone())).await?;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    window.add_permits(args.window);
    let start = Instant::now();
    let from = start + pace::seconds(args.warmup);
    let end = from + pace::seconds(args.duration);
    *measured.lock().unwrap_or_else(|p| p.into_inner()) = Some((from, end));
    let cpu = tokio::spawn(crate::http::cpu_during(from, end, args.server_pid));
    let mut sent = 0u64;
    while Instant::now() < end {
        let permit = tokio::select! {
            permit = window.acquire() => permit.context("the ack reader stopped")?,
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                let last = *acks.last.lock().unwrap_or_else(|p| p.into_inner());
                if last.elapsed() > STALL {
                    bail!("no ack for {STALL:?} ({sent} sent): the function stopped answering");
                }
                continue;
            }
        };
        permit.forget();
        let sent_ns = u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX - 1);
        publisher
            .send(Message::text(pad(&format!("{sent_ns:016x}"), args.size)))
            .await?;
        sent += 1;
    }
    // Every ack that arrived between `from` and `end` is an invocation completed then.
    tokio::time::sleep_until(end.into()).await;
    let completed = acks.counted.load(Ordering::SeqCst);
    reader.abort();
    let (_, server_cpu) = cpu.await?;
    let duration = (end - from).as_secs_f64();
    let mut out = json!({
        "window": args.window,
        "duration_s": duration,
        "sent": sent,
        "completed": completed,
        "invocations_per_s": completed as f64 / duration,
        "server_cpu": server_cpu,
    });
    let latency = acks.latency.lock().unwrap_or_else(|p| p.into_inner());
    crate::http::merge(&mut out, stats::summary(&latency));
    Ok(out)
}

/// `text` padded with `.` to `size` bytes.
fn pad(text: &str, size: usize) -> String {
    format!("{text:.<size$}")
}

/// Frees a window slot for each ack, and counts (and times) those that arrive in the
/// measured interval.
async fn read_acks(
    mut socket: net::WebSocket,
    acks: Arc<Acks>,
    window: Arc<Semaphore>,
    measured: Arc<Mutex<Option<(Instant, Instant)>>>,
    epoch: Instant,
) {
    while let Some(Ok(frame)) = socket.next().await {
        let data = match frame {
            Message::Text(text) => bytes::Bytes::from(text),
            Message::Binary(data) => data,
            _ => continue,
        };
        let now = Instant::now();
        *acks.last.lock().unwrap_or_else(|p| p.into_inner()) = now;
        let field = std::str::from_utf8(&data).unwrap_or("");
        if field.starts_with(PROBE) {
            acks.probes.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        window.add_permits(1);
        let Ok(sent_ns) = u64::from_str_radix(field, 16) else {
            continue;
        };
        let interval = *measured.lock().unwrap_or_else(|p| p.into_inner());
        let sent = epoch + Duration::from_nanos(sent_ns);
        if interval.is_some_and(|(from, end)| now >= from && now < end) {
            acks.counted.fetch_add(1, Ordering::SeqCst);
            let mut latency = acks.latency.lock().unwrap_or_else(|p| p.into_inner());
            stats::record(&mut latency, now - sent);
        }
    }
}
