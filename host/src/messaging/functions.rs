//! Pub/sub functions: each (function, channel) subscription is a subscriber with a
//! queue of its own and one worker, so a function sees a channel's messages in
//! publish order, while different subscriptions run concurrently up to a bound
//! (the runtime's `Deployment::invoke_pubsub`).
//!
//! A guest's `Subscribe()` names any channel its resources allow, so a client that
//! makes a function subscribe (a `?room=` parameter) could make the host hold a
//! subscription, a queue and a task per name it sends. Those guest-made
//! subscriptions are bounded per function ([`SubscriptionLimits`]) and dropped when
//! nothing uses them; the subscriptions of `trigger.type: pubsub` are the project's
//! own, and stay.

use super::broker::{ClusterLink, Reach, Sink, SinkId};
use super::{Hub, Message};
use crate::abi::env::{LineBudget, Verdict};
use crate::abi::{EventData, PubSubEvent};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Once, Weak};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Messages waiting for one subscription's function. Past this the function is
/// too far behind: new messages for it are dropped, with a warning, rather than
/// held without bound.
const SUBSCRIPTION_QUEUE: usize = 1024;

/// "Function is behind; message dropped" warnings one function may write per
/// second. A publish flood at a slow function would otherwise write one line per
/// message; past this, one line later says how many were suppressed.
const DROP_WARNINGS_PER_SECOND: u32 = 10;

/// Guest-made subscriptions one function may hold unless `serve` says otherwise.
pub const DEFAULT_SUBSCRIPTIONS_PER_FUNCTION: usize = 1000;

/// How long a guest-made subscription may go unused (no message, no re-subscribe)
/// before it is dropped, unless `serve` says otherwise. Long enough that a chat
/// room nobody spoke in for a while is still there; short enough that names sent
/// once do not pile up.
pub const DEFAULT_SUBSCRIPTION_IDLE: Duration = Duration::from_secs(10 * 60);

/// Bounds on the subscriptions functions make themselves (`Subscribe()`).
/// Trigger subscriptions are neither counted nor dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubscriptionLimits {
    /// Subscriptions one function may hold; past it, `Subscribe()` to a new
    /// channel fails with errno 20 (`ErrorSubscribeFailed`).
    pub per_function: usize,
    /// How long a subscription may go without a message or a re-subscribe before
    /// it is dropped (the function no longer gets that channel's messages).
    pub idle: Duration,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        Self {
            per_function: DEFAULT_SUBSCRIPTIONS_PER_FUNCTION,
            idle: DEFAULT_SUBSCRIPTION_IDLE,
        }
    }
}

/// A subscription refused because its function holds as many as it may.
#[derive(Debug, thiserror::Error)]
#[error("the function holds {limit} subscriptions, its limit")]
pub struct TooManySubscriptions {
    pub limit: usize,
}

/// Who made a subscription.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Made {
    /// The project's `trigger.type: pubsub`: kept for as long as the project runs.
    ByTrigger,
    /// The function's own `Subscribe()`: counted and dropped when idle.
    ByGuest,
}

/// The (function, topic) pairs subscribed, and what bounds them.
pub struct Subscriptions {
    limits: SubscriptionLimits,
    /// When this set was made: last-use times are milliseconds since then, so a
    /// delivery records one with a single atomic store.
    epoch: Instant,
    state: Mutex<State>,
    /// Starts the idle sweep with the first guest-made subscription.
    sweeper: Once,
}

#[derive(Default)]
struct State {
    active: HashMap<(usize, String), Held>,
    /// Guest-made subscriptions each function holds.
    counts: HashMap<usize, usize>,
    /// Each function's budget of drop warnings, shared by its subscriptions.
    warnings: HashMap<usize, Arc<Mutex<LineBudget>>>,
}

struct Held {
    made: Made,
    last_used: Arc<AtomicU64>,
}

impl Subscriptions {
    pub fn new(limits: SubscriptionLimits) -> Self {
        Self {
            limits,
            epoch: Instant::now(),
            state: Mutex::new(State::default()),
            sweeper: Once::new(),
        }
    }

    pub fn limits(&self) -> SubscriptionLimits {
        self.limits
    }

    /// The (function, topic) pairs subscribed now.
    pub fn keys(&self) -> std::collections::HashSet<(usize, String)> {
        self.lock().active.keys().cloned().collect()
    }

    /// Forgets every subscription, for a successor hub to take over or unsubscribe
    /// ([`Hub::take_over`]): this set's idle sweep finds nothing of them after.
    pub fn retire(&self) -> Vec<(usize, String, Made)> {
        let mut state = self.lock();
        state.counts.clear();
        let active = std::mem::take(&mut state.active);
        active
            .into_iter()
            .map(|((function, topic), held)| (function, topic, held.made))
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Subscribes `function` to `topic` once; later calls only mark it used. A
    /// guest past its bound is refused. The broker is told under the lock, so a
    /// re-subscribe cannot slip between an idle drop and its unsubscribe.
    pub fn subscribe(
        &self,
        hub: &Hub,
        function: usize,
        topic: String,
        reach: Reach,
        made: Made,
    ) -> Result<(), TooManySubscriptions> {
        let now = millis_since(self.epoch);
        let mut guard = self.lock();
        let state = &mut *guard;
        let key = (function, topic);
        if let Some(held) = state.active.get_mut(&key) {
            held.last_used.store(now, Ordering::Relaxed);
            if made == Made::ByTrigger && held.made == Made::ByGuest {
                // The project's own now: no longer the guest's to count or lose.
                held.made = Made::ByTrigger;
                release(&mut state.counts, function);
            }
            return Ok(());
        }
        if made == Made::ByGuest {
            let count = state.counts.entry(function).or_default();
            if *count >= self.limits.per_function {
                return Err(TooManySubscriptions {
                    limit: self.limits.per_function,
                });
            }
            *count += 1;
            self.sweeper.call_once(|| {
                tokio::spawn(sweep(hub.me.clone(), sweep_every(self.limits.idle)));
            });
        }
        let (function, topic) = key;
        let last_used = Arc::new(AtomicU64::new(now));
        let warnings = state
            .warnings
            .entry(function)
            .or_insert_with(|| Arc::new(Mutex::new(LineBudget::new(DROP_WARNINGS_PER_SECOND))))
            .clone();
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        let me = hub
            .me
            .upgrade()
            .expect("a hub subscribes only while it lives");
        tokio::spawn(run(me, function, rx));
        let name = hub.deployment().functions[function].name.clone();
        let shown = topic.escape_debug();
        // Reach means something only in a cluster.
        match hub.broker.cluster_link() {
            ClusterLink::Off => {
                tracing::info!(function = %name, topic = %shown, "function subscribed")
            }
            _ => tracing::info!(function = %name, topic = %shown, ?reach, "function subscribed"),
        }
        let sink = FunctionSink {
            function,
            name,
            tx,
            epoch: self.epoch,
            last_used: last_used.clone(),
            warnings,
        };
        // Replaces a sink of an earlier deployment's function at this index, if one is
        // there (a reload's successor taking over), in one step.
        hub.broker.replace(&topic, Arc::new(sink), reach);
        state
            .active
            .insert((function, topic), Held { made, last_used });
        Ok(())
    }

    /// Drops every guest-made subscription unused for the idle time.
    fn drop_idle(&self, hub: &Hub) {
        let idle = self.limits.idle.as_millis() as u64;
        let now = millis_since(self.epoch);
        let mut guard = self.lock();
        let state = &mut *guard;
        let stale: Vec<(usize, String)> = state
            .active
            .iter()
            .filter(|(_, held)| {
                held.made == Made::ByGuest
                    && now.saturating_sub(held.last_used.load(Ordering::Relaxed)) >= idle
            })
            .map(|(key, _)| key.clone())
            .collect();
        for (function, topic) in stale {
            state.active.remove(&(function, topic.clone()));
            release(&mut state.counts, function);
            // The broker drops the sink, and with it the queue: the worker ends.
            hub.broker.unsubscribe(&topic, SinkId::Function(function));
            let name = &hub.deployment().functions[function].name;
            tracing::info!(function = %name, topic = %topic.escape_debug(), idle = ?self.limits.idle,
                "idle subscription dropped");
        }
    }
}

/// Takes one guest-made subscription off `function`'s count.
fn release(counts: &mut HashMap<usize, usize>, function: usize) {
    if let Some(count) = counts.get_mut(&function) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&function);
        }
    }
}

fn millis_since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

/// How often idle subscriptions are looked for: a quarter of the idle time (so one
/// is dropped at most a quarter late), but at least every minute.
fn sweep_every(idle: Duration) -> Duration {
    (idle / 4).clamp(Duration::from_millis(10), Duration::from_secs(60))
}

/// Drops idle subscriptions every `every`, for as long as the hub lives.
async fn sweep(hub: Weak<Hub>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(hub) = hub.upgrade() else {
            return;
        };
        hub.subscriptions.drop_idle(&hub);
    }
}

struct FunctionSink {
    function: usize,
    name: Arc<str>,
    tx: mpsc::Sender<Arc<Message>>,
    epoch: Instant,
    /// When a message last came, shared with the subscription's entry.
    last_used: Arc<AtomicU64>,
    warnings: Arc<Mutex<LineBudget>>,
}

impl Sink for FunctionSink {
    fn id(&self) -> SinkId {
        SinkId::Function(self.function)
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn deliver(&self, message: &Arc<Message>) {
        self.last_used
            .store(millis_since(self.epoch), Ordering::Relaxed);
        message.count_delivery(1);
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(message.clone()) {
            if let Some(metrics) = crate::metrics::get() {
                metrics.queue_drop("function");
            }
            let verdict = self
                .warnings
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .admit(Instant::now());
            let channel = message.channel.escape_debug();
            match verdict {
                Verdict::Write { suppressed } => {
                    if suppressed > 0 {
                        tracing::warn!(function = %self.name, suppressed,
                            "{suppressed} more messages dropped for this function (their warnings suppressed)");
                    }
                    tracing::warn!(function = %self.name, %channel,
                        "function is {SUBSCRIPTION_QUEUE} messages behind; message dropped");
                }
                Verdict::FirstSuppressed => tracing::warn!(function = %self.name,
                    "over {DROP_WARNINGS_PER_SECOND} dropped-message warnings a second; suppressing the rest of this second's"),
                Verdict::Suppressed => {}
            }
        }
    }
}

/// Invokes the function for each message of one subscription, in order, until the
/// broker drops its sink (an unsubscribe, or a reload's replacement): the messages
/// queued by then still run, on the deployment this subscription was made for.
async fn run(hub: Arc<Hub>, function: usize, mut rx: mpsc::Receiver<Arc<Message>>) {
    while let Some(message) = rx.recv().await {
        let hub = hub.clone();
        let deployment = hub.deployment().clone();
        let event = EventData::PubSub(PubSubEvent {
            channel: message.channel.clone(),
            data: message.payload.clone(),
        });
        if let Err(error) = deployment.invoke_pubsub(hub, function, event).await {
            let name = &deployment.functions[function].name;
            tracing::warn!(function = %name, channel = %message.channel.escape_debug(),
                error = %error.to_string().escape_debug(), "pub/sub function failed");
        }
    }
}
