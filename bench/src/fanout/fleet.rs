//! N subscribers and one publisher, connected once and measured in steps.
//!
//! Connections stay open across the steps of a rate search: reconnecting 1,000 subscribers
//! per step would cost more time than the steps themselves. Each message names its step, so a
//! straggler from an earlier, overloaded step is never counted in a later one.

use super::payload::{self, Decoded};
use super::{Endpoint, Publisher, Subscriber};
use crate::cpu::CpuClocks;
use crate::{pace, stats};
use anyhow::bail;
use futures_util::{stream, StreamExt, TryStreamExt};
use hdrhistogram::Histogram;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

/// Subscriber connections opened at once: enough to be quick, few enough that a server's
/// accept backlog never overflows.
const CONNECT_PARALLELISM: usize = 64;

/// How long every subscriber has to see a probe before the fleet gives up.
const SYNC_TIMEOUT: Duration = Duration::from_secs(20);

/// How often a probe is sent while waiting for subscribers.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);

/// Most messages sent in one write when the publisher is behind its schedule.
const MAX_BATCH: usize = 64;

/// No delivery for this long means the previous step's backlog is gone.
const QUIET: Duration = Duration::from_millis(200);

/// What the subscriber tasks and the controller share.
struct Shared {
    epoch: Instant,
    /// The step being counted; 0 between steps.
    step: AtomicU32,
    /// The probe round being waited for, and how many subscribers have seen it.
    round: AtomicU32,
    synced: AtomicUsize,
    alive: AtomicUsize,
    /// When the last message of any step arrived, in ns since `epoch`.
    last_delivery: AtomicU64,
    /// The counted step's deliveries.
    record: Mutex<Record>,
}

struct Record {
    latency: Histogram<u64>,
    delivered: u64,
}

/// The outcome of one step.
pub struct Step {
    pub rate: f64,
    pub subscribers: usize,
    pub sent: u64,
    pub expected: u64,
    pub delivered: u64,
    /// Whether every subscriber was still connected at the end.
    pub connected: bool,
    pub duration: Duration,
    /// How far behind its schedule the publisher finished (the load generator's own limit).
    pub publish_lag: Duration,
    /// How late each message went out: past a millisecond or so the load generator itself
    /// was too busy to keep the schedule, so a failing step says less about the server.
    pub send_lag: Histogram<u64>,
    /// Each server process's CPU use (cores) while publishing, if pids were given.
    pub server_cpu: Option<Vec<f64>>,
    pub latency: Histogram<u64>,
}

impl Step {
    pub fn delivered_fraction(&self) -> f64 {
        self.delivered as f64 / self.expected.max(1) as f64
    }

    pub fn deliveries_per_s(&self) -> f64 {
        self.delivered as f64 / self.duration.as_secs_f64()
    }

    /// 100% delivered, everyone still connected, and p99 under `p99_limit`.
    pub fn passes(&self, p99_limit: Duration) -> bool {
        self.connected
            && self.delivered >= self.expected
            && !self.latency.is_empty()
            && Duration::from_micros(self.latency.value_at_quantile(0.99)) < p99_limit
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut out = serde_json::json!({
            "rate": self.rate,
            "subscribers": self.subscribers,
            "sent": self.sent,
            "expected": self.expected,
            "delivered": self.delivered,
            "delivered_fraction": self.delivered_fraction(),
            "deliveries_per_s": self.deliveries_per_s(),
            "connected": self.connected,
            "publish_lag_ms": self.publish_lag.as_secs_f64() * 1e3,
            "send_lag_p99_us": self.send_lag.value_at_quantile(0.99),
            "server_cpu": self.server_cpu.as_ref().map(|each| each.iter().sum::<f64>()),
        });
        if let Some(each) = self.server_cpu.as_ref().filter(|each| each.len() > 1) {
            crate::http::merge(&mut out, serde_json::json!({ "server_cpu_each": each }));
        }
        crate::http::merge(&mut out, stats::summary(&self.latency));
        out
    }
}

pub struct Fleet {
    shared: Arc<Shared>,
    server_pids: Vec<u32>,
    publisher: Publisher,
    listeners: Vec<JoinHandle<()>>,
    size: usize,
}

impl Fleet {
    /// Connects `subscribers` subscribers and a publisher, and returns once a probe from the
    /// publisher has reached every subscriber (so every subscription is in place).
    pub async fn connect(
        endpoint: &Endpoint,
        subscribers: usize,
        size: usize,
    ) -> anyhow::Result<Self> {
        if size < payload::HEADER {
            bail!("--size must be at least {} bytes", payload::HEADER);
        }
        // Checked before the subscribers connect, not after.
        endpoint.publish_addr()?;
        let shared = Arc::new(Shared {
            epoch: Instant::now(),
            step: AtomicU32::new(0),
            round: AtomicU32::new(0),
            synced: AtomicUsize::new(0),
            alive: AtomicUsize::new(0),
            last_delivery: AtomicU64::new(0),
            record: Mutex::new(Record::new()),
        });
        let connected: Vec<Subscriber> = stream::iter(0..subscribers)
            .map(|index| Subscriber::connect(endpoint, index))
            .buffer_unordered(CONNECT_PARALLELISM)
            .try_collect()
            .await?;
        shared.alive.store(connected.len(), Ordering::SeqCst);
        let listeners = connected
            .into_iter()
            .map(|subscriber| tokio::spawn(listen(subscriber, shared.clone())))
            .collect();
        // The publisher gets a source address of its own, after the subscribers'.
        let publisher = Publisher::connect(endpoint, subscribers + crate::net::PER_SOURCE).await?;
        let mut fleet = Self {
            shared,
            server_pids: endpoint.server_pid.clone(),
            publisher,
            listeners,
            size,
        };
        fleet.sync().await?;
        Ok(fleet)
    }

    fn subscribers(&self) -> usize {
        self.listeners.len()
    }

    /// Sends probes until every subscriber has seen one.
    async fn sync(&mut self) -> anyhow::Result<()> {
        let subscribers = self.subscribers();
        let round = self.shared.round.load(Ordering::SeqCst) + 1;
        self.shared.synced.store(0, Ordering::SeqCst);
        self.shared.round.store(round, Ordering::SeqCst);
        let deadline = Instant::now() + SYNC_TIMEOUT;
        let probe = payload::probe(round, self.size);
        while self.shared.synced.load(Ordering::SeqCst) < subscribers {
            if Instant::now() > deadline {
                bail!(
                    "only {} of {subscribers} subscribers got a message within {SYNC_TIMEOUT:?}",
                    self.shared.synced.load(Ordering::SeqCst)
                );
            }
            if self.shared.alive.load(Ordering::SeqCst) < subscribers {
                bail!("a subscriber was disconnected while connecting the others");
            }
            self.publisher.publish(std::slice::from_ref(&probe)).await?;
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
        Ok(())
    }

    /// Publishes at `rate` messages/s for `duration` (open loop: message i is stamped with
    /// its due time `start + i / rate` and latency runs from there), then waits up to `drain`
    /// for the last deliveries.
    pub async fn step(
        &mut self,
        step: u32,
        rate: f64,
        duration: Duration,
        drain: Duration,
    ) -> anyhow::Result<Step> {
        let shared = self.shared.clone();
        *lock(&shared.record) = Record::new();
        shared.step.store(step, Ordering::SeqCst);
        let count = ((rate * duration.as_secs_f64()).round() as u64).max(1);
        let interval = pace::seconds(1.0 / rate);
        let start = Instant::now() + Duration::from_millis(5);
        let server = CpuClocks::start(&self.server_pids);
        let mut send_lag = stats::histogram();
        let due = |seq: u64| start + interval.mul_f64(seq as f64);
        let mut batch = Vec::with_capacity(MAX_BATCH);
        let mut seq = 0;
        while seq < count {
            pace::wait_until(due(seq)).await;
            // Every message due by now goes out in one write, each stamped with its own
            // due time: a load generator that fell behind catches up without one system
            // call per message, the same for every target.
            let now = Instant::now();
            batch.clear();
            while seq < count && due(seq) <= now && batch.len() < MAX_BATCH {
                stats::record(&mut send_lag, now - due(seq));
                let sent_ns =
                    u64::try_from((due(seq) - shared.epoch).as_nanos()).unwrap_or(u64::MAX);
                batch.push(payload::message(step, seq, sent_ns, self.size));
                seq += 1;
            }
            self.publisher.publish(&batch).await?;
        }
        let published = Instant::now();
        let server_cpu = server.and_then(|c| c.utilization());
        let expected = count * self.subscribers() as u64;
        let deadline = published + drain;
        while lock(&shared.record).delivered < expected
            && Instant::now() < deadline
            && shared.alive.load(Ordering::SeqCst) == self.subscribers()
        {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        shared.step.store(0, Ordering::SeqCst);
        let record = std::mem::replace(&mut *lock(&shared.record), Record::new());
        let scheduled_end = start + interval.mul_f64(count as f64);
        Ok(Step {
            rate,
            subscribers: self.subscribers(),
            sent: count,
            expected,
            delivered: record.delivered,
            connected: shared.alive.load(Ordering::SeqCst) == self.subscribers(),
            duration: scheduled_end - start,
            publish_lag: published.saturating_duration_since(scheduled_end),
            send_lag,
            server_cpu,
            latency: record.latency,
        })
    }

    /// Whether every subscriber is still connected.
    pub fn healthy(&self) -> bool {
        self.shared.alive.load(Ordering::SeqCst) == self.subscribers()
    }

    /// Waits until nothing has been delivered for a moment, up to `limit`; says whether the
    /// fleet got quiet (a server still flushing an old backlog would skew the next step).
    pub async fn wait_quiet(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            let last = Duration::from_nanos(self.shared.last_delivery.load(Ordering::SeqCst));
            let since = self.shared.epoch.elapsed().saturating_sub(last);
            if since >= QUIET {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(QUIET - since).await;
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        for listener in &self.listeners {
            listener.abort();
        }
    }
}

impl Record {
    fn new() -> Self {
        Self {
            latency: stats::histogram(),
            delivered: 0,
        }
    }
}

/// The record, even if a subscriber task panicked while holding it (it only holds counts).
fn lock(record: &Mutex<Record>) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(|p| p.into_inner())
}

/// One subscriber's deliveries not yet added to the step's record.
struct Batch {
    step: u32,
    /// Latencies, in ns.
    latencies: Vec<u64>,
    /// When the last one arrived, in ns since the epoch.
    last: u64,
}

impl Batch {
    /// Adds the batch to the step's record (if it is still that step's).
    fn flush(&mut self, shared: &Shared) {
        if self.latencies.is_empty() {
            return;
        }
        shared.last_delivery.store(self.last, Ordering::Relaxed);
        if self.step == shared.step.load(Ordering::Relaxed) {
            let mut record = lock(&shared.record);
            for &latency in &self.latencies {
                stats::record(&mut record.latency, Duration::from_nanos(latency));
            }
            record.delivered += self.latencies.len() as u64;
        }
        self.latencies.clear();
    }
}

/// One subscriber's task: counts and times the deliveries of the current step.
///
/// At millions of deliveries a second, the load generator's cost per message decides what
/// it can measure, so a subscriber works per read, not per message: messages are parsed in
/// place out of the read buffer, the clock is read once per read (the messages of one read
/// arrived together), and the read's deliveries are added to the step's record at once.
async fn listen(mut subscriber: Subscriber, shared: Arc<Shared>) {
    let mut seen_round = 0;
    let mut batch = Batch {
        step: 0,
        latencies: Vec::new(),
        last: 0,
    };
    loop {
        let mut arrived = None;
        let open = subscriber
            .batch(&mut |data| {
                let now = *arrived.get_or_insert_with(|| {
                    u64::try_from(shared.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
                });
                match payload::decode(data) {
                    Some(Decoded::Message { step, sent_ns }) => {
                        if step != batch.step {
                            batch.flush(&shared);
                            batch.step = step;
                        }
                        batch.latencies.push(now.saturating_sub(sent_ns));
                        batch.last = now;
                    }
                    Some(Decoded::Probe { round })
                        if round > seen_round && round == shared.round.load(Ordering::SeqCst) =>
                    {
                        seen_round = round;
                        shared.synced.fetch_add(1, Ordering::SeqCst);
                    }
                    Some(Decoded::Probe { .. }) | None => {}
                }
            })
            .await;
        batch.flush(&shared);
        if !matches!(open, Ok(true)) {
            break;
        }
    }
    shared.alive.fetch_sub(1, Ordering::SeqCst);
}
