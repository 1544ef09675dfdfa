//! What the server counts, for `/metrics` on the admin listener (`--admin-listen`), in
//! the Prometheus text format.
//!
//! Counting starts only when [`enable`] is called (the admin listener is given): without
//! it every hook is one relaxed load and nothing is kept. Labels come from the project
//! (function and resource names), from status codes and from fixed words, never from
//! what a client sent, so no series can be made by a client.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

static ENABLED: AtomicBool = AtomicBool::new(false);
static METRICS: OnceLock<Metrics> = OnceLock::new();

/// Starts counting (idempotent).
pub fn enable() {
    METRICS.get_or_init(Metrics::new);
    ENABLED.store(true, Ordering::Release);
}

/// The metrics, if counting.
#[inline]
pub fn get() -> Option<&'static Metrics> {
    if ENABLED.load(Ordering::Relaxed) {
        METRICS.get()
    } else {
        None
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The function that answered; empty for what the server answered itself.
    pub function: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InvocationLabels {
    pub function: String,
    /// `ok`, `trap`, `panic`, `timeout`, `memory`, `exit` or `busy`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// The messaging resource's name (`application/name` in an application).
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `channel` (a channel's socket) or `broker` (the broker protocol's).
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// `function` (a pub/sub function's), `history` (the cluster history writer's) or
    /// `cluster` (messages held for NATS).
    pub queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabels {
    /// `get`, `put`, `delete`, `keys`, `add_object`, `object`, ..., `append`, `read_log`.
    pub operation: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LinkLabels {
    /// `off` (one node), `connected`, `disconnected`.
    pub state: &'static str,
}

/// Every series the server keeps.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_seconds: Family<RequestLabels, Histogram, fn() -> Histogram>,
    pub invocations: Family<InvocationLabels, Counter>,
    pub websockets_open: Family<KindLabels, Gauge>,
    pub websockets_opened: Family<KindLabels, Counter>,
    pub published: Family<ResourceLabels, Counter>,
    pub delivered: Family<ResourceLabels, Counter>,
    pub slow_consumer_closes: Family<KindLabels, Counter>,
    pub queue_drops: Family<QueueLabels, Counter>,
    pub cluster_link: Family<LinkLabels, Gauge>,
    pub state_operations: Family<StateLabels, Counter>,
    pub state_errors: Family<StateLabels, Counter>,
    pub reloads: Counter,
    /// The last [`RECENT`] invocations, newest last, and the last [`RECENT`] failed ones.
    recent: std::sync::Mutex<Recent>,
}

/// Invocations the console lists, and failures, at most.
pub const RECENT: usize = 100;

/// One invocation, as the console lists it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Invocation {
    /// Milliseconds since the Unix epoch, when it ended.
    pub time: u64,
    pub function: String,
    pub outcome: &'static str,
    pub ms: f64,
    /// What failed, for a failure.
    pub error: Option<String>,
}

#[derive(Default)]
struct Recent {
    invocations: std::collections::VecDeque<Invocation>,
    errors: std::collections::VecDeque<Invocation>,
}

/// Request durations' buckets, in seconds: 100 µs to 10 s.
fn request_buckets() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        5.0, 10.0,
    ])
}

impl Metrics {
    fn new() -> Self {
        let metrics = Self {
            registry: Registry::with_prefix("wisp"),
            requests: Family::default(),
            request_seconds: Family::new_with_constructor(request_buckets),
            invocations: Family::default(),
            websockets_open: Family::default(),
            websockets_opened: Family::default(),
            published: Family::default(),
            delivered: Family::default(),
            slow_consumer_closes: Family::default(),
            queue_drops: Family::default(),
            cluster_link: Family::default(),
            state_operations: Family::default(),
            state_errors: Family::default(),
            reloads: Counter::default(),
            recent: Default::default(),
        };
        let mut registry = metrics.registry;
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests answered, by function and status",
            metrics.requests.clone(),
        );
        r.register(
            "http_request_duration_seconds",
            "Time from a request's head to its response's head, by function and status",
            metrics.request_seconds.clone(),
        );
        r.register(
            "invocations",
            "Function invocations, by outcome",
            metrics.invocations.clone(),
        );
        r.register(
            "websocket_connections",
            "WebSocket connections open now",
            metrics.websockets_open.clone(),
        );
        r.register(
            "websocket_connections_opened",
            "WebSocket connections opened",
            metrics.websockets_opened.clone(),
        );
        r.register(
            "messages_published",
            "Messages published on this node, by messaging resource",
            metrics.published.clone(),
        );
        r.register(
            "messages_delivered",
            "Messages handed to this node's subscribers (sockets, broker-protocol subscriptions, functions), by messaging resource",
            metrics.delivered.clone(),
        );
        r.register(
            "slow_consumer_closes",
            "WebSockets closed because they read slower than their channel sent",
            metrics.slow_consumer_closes.clone(),
        );
        r.register(
            "queue_drops",
            "Messages dropped at a full queue, by queue",
            metrics.queue_drops.clone(),
        );
        r.register(
            "cluster_link",
            "1 for the cluster link's present state",
            metrics.cluster_link.clone(),
        );
        r.register(
            "state_operations",
            "State-engine calls, by operation",
            metrics.state_operations.clone(),
        );
        r.register(
            "state_errors",
            "State-engine calls that failed, by operation",
            metrics.state_errors.clone(),
        );
        r.register(
            "reloads",
            "Deployments swapped in without a restart",
            metrics.reloads.clone(),
        );
        Self {
            registry,
            ..metrics
        }
    }

    /// One HTTP request answered.
    pub fn request(&self, function: Option<&str>, status: u16, took: Duration) {
        let labels = RequestLabels {
            function: function.unwrap_or_default().to_owned(),
            status,
        };
        self.request_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    pub fn invocation(&self, function: &str, outcome: &'static str) {
        let labels = InvocationLabels {
            function: function.to_owned(),
            outcome,
        };
        self.invocations.get_or_create(&labels).inc();
    }

    /// Keeps `invocation` among the recent ones (and the failures, if it failed).
    pub fn remember(&self, invocation: Invocation) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if invocation.error.is_some() {
            if recent.errors.len() == RECENT {
                recent.errors.pop_front();
            }
            recent.errors.push_back(invocation.clone());
        }
        if recent.invocations.len() == RECENT {
            recent.invocations.pop_front();
        }
        recent.invocations.push_back(invocation);
    }

    /// The recent invocations and failures, oldest first.
    pub fn recent(&self) -> (Vec<Invocation>, Vec<Invocation>) {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let list = |q: &std::collections::VecDeque<Invocation>| q.iter().cloned().collect();
        (list(&recent.invocations), list(&recent.errors))
    }

    pub fn published(&self, resource: &str, count: u64) {
        let labels = ResourceLabels {
            resource: resource.to_owned(),
        };
        self.published.get_or_create(&labels).inc_by(count);
    }

    pub fn delivered(&self, resource: &str, count: u64) {
        let labels = ResourceLabels {
            resource: resource.to_owned(),
        };
        self.delivered.get_or_create(&labels).inc_by(count);
    }

    pub fn socket_opened(&self, kind: &'static str) {
        let labels = KindLabels { kind };
        self.websockets_open.get_or_create(&labels).inc();
        self.websockets_opened.get_or_create(&labels).inc();
    }

    pub fn socket_closed(&self, kind: &'static str) {
        self.websockets_open
            .get_or_create(&KindLabels { kind })
            .dec();
    }

    pub fn slow_consumer(&self, kind: &'static str) {
        self.slow_consumer_closes
            .get_or_create(&KindLabels { kind })
            .inc();
    }

    pub fn queue_drop(&self, queue: &'static str) {
        self.queue_drops.get_or_create(&QueueLabels { queue }).inc();
    }

    pub fn state_operation(&self, operation: &'static str, failed: bool) {
        let labels = StateLabels { operation };
        self.state_operations.get_or_create(&labels).inc();
        if failed {
            self.state_errors.get_or_create(&labels).inc();
        }
    }

    /// Sets the cluster link's state (one of [`LinkLabels::state`]'s words) to 1, the
    /// others to 0.
    pub fn link(&self, state: &'static str) {
        for word in ["off", "connected", "disconnected"] {
            let value = i64::from(word == state);
            self.cluster_link
                .get_or_create(&LinkLabels { state: word })
                .set(value);
        }
    }

    /// Everything, in the Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The value of a labelled series in `text` (the Prometheus text format), for tests:
/// `value(text, "wisp_invocations_total", &[("function", "ping"), ("outcome", "ok")])`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (series, number) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(key, value)| rest.contains(&format!("{key}=\"{value}\"")));
            all.then(|| number.parse().ok()).flatten()
        })
}
