//! Keep-alive HTTP/1.1 GET load (figures 1 and 2).
//!
//! Each of `--connections` connections sends one request at a time (no pipelining).
//!
//! - `--max` is a closed loop: every connection sends its next request as soon as the last
//!   answer arrives. It finds the highest request rate; latency is measured from the send.
//! - `--rate R` is an open loop, as wrk2 does it: request *i* of connection *c* is due at
//!   `start + (i·C + c) / R`, so the aggregate schedule is evenly spaced at R per second. A
//!   request is sent at its due time, or as soon as its connection is free if the server is
//!   behind; its latency runs from the due time either way. A stalled server therefore shows
//!   every request it delayed in the latency, not just the one it was serving (no coordinated
//!   omission).
//!
//! Requests due in the warm-up are sent but not counted. A request counts as an error if the
//! connection fails or the status is not 2xx.

mod client;

use crate::cpu::CpuClock;
use crate::{net, pace, stats};
use anyhow::{bail, Context};
use clap::Args as ClapArgs;
use client::Connection;
use hdrhistogram::Histogram;
use hyper::Uri;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(ClapArgs, Clone)]
pub struct Args {
    /// URL to GET, e.g. http://127.0.0.1:8080/hello
    #[arg(long)]
    url: String,
    /// Keep-alive connections
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Aggregate requests per second (open loop)
    #[arg(long, conflicts_with = "max", required_unless_present = "max")]
    rate: Option<f64>,
    /// Closed loop at full speed, for the highest throughput
    #[arg(long)]
    max: bool,
    /// Seconds measured
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// The server's process id, to report its CPU use while measured
    #[arg(long)]
    server_pid: Option<u32>,
}

/// After the schedule ends, how long the requests still owed (by a server that fell behind)
/// may take before they are given up and reported as `unsent`.
const GRACE: Duration = Duration::from_secs(5);

/// When each connection sends.
#[derive(Clone, Copy)]
enum Schedule {
    /// As soon as the previous answer is in.
    Closed,
    /// Request i is due at `first + i · interval`.
    Open { first: Instant, interval: Duration },
}

/// What one connection saw.
struct Tally {
    latency: Histogram<u64>,
    ok: u64,
    errors: u64,
    non_2xx: u64,
    unsent: u64,
}

/// Where the target is and what to ask it.
struct Target {
    addr: String,
    request: Arc<[u8]>,
}

pub async fn run(args: Args) -> anyhow::Result<Value> {
    let uri: Uri = args.url.parse().context("parsing --url")?;
    if uri.scheme_str() != Some("http") {
        bail!("--url must be http://HOST:PORT/PATH");
    }
    let authority = uri.authority().context("--url needs a host")?;
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let target = Arc::new(Target {
        addr: format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(80)
        ),
        request: Connection::request(authority.as_str(), path),
    });
    let connections = args.connections.max(1);
    let start = Instant::now() + Duration::from_millis(20);
    let measure_from = start + pace::seconds(args.warmup);
    let end = measure_from + pace::seconds(args.duration);
    let mut tasks = Vec::with_capacity(connections);
    for c in 0..connections {
        let schedule = match args.rate {
            Some(rate) if rate > 0.0 => {
                let per_connection = rate / connections as f64;
                Schedule::Open {
                    first: start + pace::seconds(c as f64 / rate),
                    interval: pace::seconds(1.0 / per_connection),
                }
            }
            Some(_) => bail!("--rate must be above zero"),
            None => Schedule::Closed,
        };
        let target = target.clone();
        tasks.push(tokio::spawn(async move {
            connection(&target, c, schedule, measure_from, end).await
        }));
    }
    let cpu = tokio::spawn(cpu_during(measure_from, end, args.server_pid));
    let mut total = Tally::new();
    for task in tasks {
        total.merge(task.await?);
    }
    let duration = (end - measure_from).as_secs_f64();
    let (loadgen_cpu, server_cpu) = cpu.await?;
    let mut result = json!({
        "loadgen_cpu": loadgen_cpu,
        "server_cpu": server_cpu,
        "url": args.url,
        "mode": if args.max { "max" } else { "rate" },
        "target_rate": args.rate,
        "connections": connections,
        "duration_s": duration,
        "requests": total.ok,
        "rps": total.ok as f64 / duration,
        "errors": total.errors,
        "non_2xx": total.non_2xx,
        "unsent": total.unsent,
    });
    merge(&mut result, stats::summary(&total.latency));
    Ok(result)
}

/// CPU use (cores) of this process and of `server` between `from` and `end`. In an open-loop
/// run the load generator's figure includes its precise waits (see [`pace`]), so only the
/// closed loop's says how busy it really was.
pub async fn cpu_during(
    from: Instant,
    end: Instant,
    server: Option<u32>,
) -> (Option<f64>, Option<f64>) {
    tokio::time::sleep_until(from.into()).await;
    let loadgen = CpuClock::start(None);
    let server = server.and_then(|pid| CpuClock::start(Some(pid)));
    tokio::time::sleep_until(end.into()).await;
    (
        loadgen.and_then(|c| c.utilization()),
        server.and_then(|c| c.utilization()),
    )
}

/// Adds the fields of `extra` (an object) to `into` (an object).
pub fn merge(into: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(extra)) = (into.as_object_mut(), extra) {
        into.extend(extra);
    }
}

/// Runs one connection's share of the load, reconnecting after errors.
async fn connection(
    target: &Target,
    index: usize,
    schedule: Schedule,
    measure_from: Instant,
    end: Instant,
) -> Tally {
    let mut tally = Tally::new();
    let mut open: Option<Connection> = None;
    for i in 0u32.. {
        let due = match schedule {
            Schedule::Closed => Instant::now(),
            Schedule::Open { first, interval } => first + interval * i,
        };
        if due >= end {
            break;
        }
        if Instant::now() > end + GRACE {
            tally.unsent += 1;
            continue;
        }
        pace::wait_until(due).await;
        let counted = due >= measure_from;
        let outcome = match &mut open {
            Some(connection) => connection.get().await,
            None => match net::connect(&target.addr, index).await {
                Ok(stream) => {
                    let connection = open.insert(Connection::new(stream, target.request.clone()));
                    connection.get().await
                }
                Err(error) => Err(error.into()),
            },
        };
        let done = Instant::now();
        match outcome {
            Ok(status) if counted => {
                if (200..300).contains(&status) {
                    tally.ok += 1;
                    stats::record(&mut tally.latency, done - due);
                } else {
                    tally.non_2xx += 1;
                }
            }
            Ok(_) => {}
            Err(_) => {
                if counted {
                    tally.errors += 1;
                }
                open = None;
                // Do not spin against a server that refuses connections.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    tally
}

impl Tally {
    fn new() -> Self {
        Self {
            latency: stats::histogram(),
            ok: 0,
            errors: 0,
            non_2xx: 0,
            unsent: 0,
        }
    }

    fn merge(&mut self, other: Tally) {
        // Both histograms share the bounds from `stats::histogram`, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        self.ok += other.ok;
        self.errors += other.errors;
        self.non_2xx += other.non_2xx;
        self.unsent += other.unsent;
    }
}
