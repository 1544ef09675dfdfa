//! The cluster broker: Wisp nodes share channels through NATS.
//!
//! `wisp serve --cluster nats://HOST:PORT[,...]` puts a [`NatsBroker`] behind the
//! [`Broker`] seam; without `--cluster` none of this runs. Every node connects to
//! NATS with the official client (async-nats), which reconnects on its own and
//! re-subscribes everything it had.
//!
//! # Delivery
//! - **Publish** stays synchronous and never waits on NATS: the message goes at once
//!   to this node's subscribers (an inner [`LocalBroker`]), then into a bounded
//!   outbound queue that one task drains into NATS. A full queue refuses the publish
//!   for the cluster ([`PublishError::ClusterBacklog`], errno 21 for a guest); this
//!   node's subscribers already have it.
//! - **WebSocket clients**: per topic with a client on this node, one plain NATS
//!   subscription feeds this node's clients. A message whose origin header names
//!   this node is skipped there (its clients got it when it was published).
//! - **Pub/sub functions** are not fed by local publishes: each (function, topic)
//!   has a NATS *queue* subscription in group `wisp.<hash>.<function>`, so that one
//!   node of the cluster, not every node, runs the function for each message. The
//!   origin function travels in a header, so a function still never receives its
//!   own publishes (function indices agree across nodes running one project).
//! - **`local: true`** ([`Reach::Node`]): a channel so marked never goes to NATS (its
//!   clients and functions get this node's messages); a trigger so marked keeps its
//!   function on this node's messages only.
//!
//! # Subjects
//! A topic `<hash>/<channel>` is NATS subject `wisp.<hash>.<channel>`, each part
//! escaped to one NATS token ([`escape`]): bytes `A-Z a-z 0-9 -` stand as they are,
//! every other byte (`_` itself included) becomes `_` and two lower-case hex digits.
//! So `/chat/room` is `_2fchat_2froom`: no `.`, `*`, `>`, space or non-ASCII byte
//! ever reaches a subject, a name cannot widen a subscription, and two names never
//! share a subject (the escape is reversible). A 1 KiB channel name (the limit)
//! escapes to at most 3 KiB, inside NATS's 4 KiB protocol line.
//!
//! # Headers
//! One header, `Wisp-Origin: <kind> <function> <node>`: kind `t` (text) or `b`
//! (binary), the publishing function's index or `-`, the publishing node's id. A
//! message without it (published by another NATS client on a `wisp.` subject) is
//! delivered as from outside Wisp: text when it is UTF-8, else binary.
//!
//! The wire format (subjects, queue groups, the header) lives in `nats/wire.rs`.
//!
//! # Faults
//! While NATS is unreachable, publishes wait in the outbound queue, up to
//! [`QueueLimits`] (10,000 messages or 64 MiB by default), then are refused for the
//! cluster. The queue drains, in order, once the link is back. NATS core delivery is
//! at most once: messages in the socket's buffers when a connection dies are lost,
//! and so are messages published while a subscriber's node is cut off.

use super::broker::{Broker, ClusterLink, LocalBroker, PublishError, Reach, Sink, SinkId};
use super::Message;
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, ServerAddr, Subject};
use futures_util::future::BoxFuture;
use futures_util::StreamExt;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use wire::{channel_of, queue_group, Origin, HEADER_ROOM};

pub use wire::{escape, subject};

mod wire;

/// The longest node id accepted; ids travel in every message's header.
pub const MAX_NODE_ID: usize = 64;

/// How often the client pings the server; two unanswered pings count as a lost
/// link. The client's default (60 s) would leave a silently dead link up for
/// minutes; 10 s notices one within about 30 s at one small frame per 10 s.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How often the outbound task looks at a link that is down. Looking is reading a
/// watch value, so this only bounds how soon after a reconnect the queue drains.
const LINK_POLL: Duration = Duration::from_millis(50);

/// How often a shutting-down node checks whether its cluster queue is empty.
const SETTLE_POLL: Duration = Duration::from_millis(5);

/// How much the outbound queue holds while NATS is unreachable or slow.
#[derive(Clone, Copy, Debug)]
pub struct QueueLimits {
    /// Messages waiting to go to NATS.
    pub messages: usize,
    /// Payload bytes waiting to go to NATS.
    pub bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        Self {
            // A few seconds of a busy node's traffic: rides out a NATS restart or a
            // failover without holding more than a bounded amount of memory.
            messages: 10_000,
            bytes: 64 << 20,
        }
    }
}

/// How a node joins the cluster.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// NATS server URLs (`nats://host:port`); the client also learns the other
    /// servers of a NATS cluster from the one it reaches.
    pub servers: Vec<String>,
    /// This node's id, carried in every message's header (see [`check_node_id`]).
    pub node_id: String,
    pub queue: QueueLimits,
}

/// A node id: 1 to [`MAX_NODE_ID`] bytes of `A-Z a-z 0-9 . _ -`.
pub fn check_node_id(id: &str) -> Result<(), String> {
    let valid = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    if id.is_empty() || id.len() > MAX_NODE_ID || !id.bytes().all(valid) {
        return Err(format!(
            "node id `{id}` must be 1 to {MAX_NODE_ID} characters of A-Z, a-z, 0-9, `.`, `_` or `-`"
        ));
    }
    Ok(())
}

/// A node id for a node not given one: host name, process id and a random part,
/// so that two nodes on one host (or two runs of one node) differ.
pub fn default_node_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host: String = host
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(40)
        .collect();
    let host = if host.is_empty() { "wisp".into() } else { host };
    // RandomState is seeded from the OS: enough to tell two runs apart.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u16;
    format!("{host}-{}-{random:04x}", std::process::id())
}

/// One message on its way to NATS.
struct Outgoing {
    subject: Subject,
    message: Arc<Message>,
}

/// What the publishers and the outbound task share. The queue itself is
/// unbounded; these counts bound it (exactly, unlike a channel's capacity, which
/// would not count the message the outbound task holds while the link is down).
struct OutboundState {
    /// Messages in the queue, or held by the outbound task.
    messages: AtomicUsize,
    /// Their payload bytes.
    bytes: AtomicUsize,
    limits: QueueLimits,
    /// The server's largest message (0 until connected): larger ones are refused.
    max_payload: AtomicUsize,
    /// The queue refused a message and has not taken one since (to log once).
    refusing: AtomicBool,
}

impl OutboundState {
    /// One message of `size` bytes left the queue.
    fn release(&self, size: usize) {
        self.messages.fetch_sub(1, Ordering::Relaxed);
        self.bytes.fetch_sub(size, Ordering::Relaxed);
    }
}

/// A [`Broker`] for one node of a cluster (see the module docs).
pub struct NatsBroker {
    node: Arc<str>,
    client: Client,
    /// This node's WebSocket clients: fed by local publishes and from NATS.
    sockets: Arc<LocalBroker>,
    /// Function subscriptions that take only this node's messages (`local: true`).
    node_functions: LocalBroker,
    /// The NATS subscriptions, each a task: socket topics, cluster functions.
    links: Mutex<Links>,
    outbound: mpsc::UnboundedSender<Outgoing>,
    state: Arc<OutboundState>,
}

#[derive(Default)]
struct Links {
    sockets: HashMap<String, AbortHandle>,
    functions: HashMap<(String, SinkId), AbortHandle>,
}

impl NatsBroker {
    /// Starts connecting to `config.servers` and returns at once: the client keeps
    /// trying in the background (publishes queue meanwhile). Fails only on bad
    /// settings. Must run inside the tokio runtime.
    pub async fn connect(config: NatsConfig) -> anyhow::Result<Self> {
        check_node_id(&config.node_id).map_err(anyhow::Error::msg)?;
        let servers = config
            .servers
            .iter()
            .map(|url| {
                url.trim()
                    .parse::<ServerAddr>()
                    .map_err(|error| anyhow::anyhow!("cluster URL `{}`: {error}", redact(url)))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        anyhow::ensure!(!servers.is_empty(), "--cluster needs at least one NATS URL");
        let node: Arc<str> = Arc::from(config.node_id.as_str());
        let events_node = node.clone();
        let immediate = servers.len();
        let quiet = Arc::new(AtomicBool::new(false));
        // async-nats does not read credentials from URLs: take them from the first
        // URL that has any (`nats://user:password@host` or `nats://token@host`).
        let mut options = ConnectOptions::new();
        if let Some(addr) = servers.iter().find(|addr| addr.has_user_pass()) {
            let user = addr.username().unwrap_or_default().to_owned();
            options = match addr.password() {
                Some(password) => options.user_and_password(user, password.to_owned()),
                None => options.token(user),
            };
        }
        let client = options
            .name(format!("wisp {node}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .ping_interval(PING_INTERVAL)
            .reconnect_delay_callback(move |attempts| reconnect_delay(attempts, immediate))
            .event_callback(move |event| {
                let node = events_node.clone();
                let quiet = quiet.clone();
                async move { log_event(&node, &quiet, event) }
            })
            .connect(servers)
            .await?;
        let state = Arc::new(OutboundState {
            messages: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            limits: config.queue,
            max_payload: AtomicUsize::new(0),
            refusing: AtomicBool::new(false),
        });
        let (outbound, rx) = mpsc::unbounded_channel();
        tokio::spawn(drain(client.clone(), node.clone(), rx, state.clone()));
        Ok(Self {
            node,
            client,
            sockets: Arc::default(),
            node_functions: LocalBroker::new(),
            links: Mutex::default(),
            outbound,
            state,
        })
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// Queues `message` for NATS, or says why not.
    fn send(&self, topic: &str, message: Arc<Message>) -> Result<(), PublishError> {
        let state = &self.state;
        let size = message.payload.len();
        let max_payload = state.max_payload.load(Ordering::Relaxed);
        if max_payload > 0 && size + HEADER_ROOM > max_payload {
            return Err(PublishError::ClusterTooLarge {
                size,
                limit: max_payload.saturating_sub(HEADER_ROOM),
            });
        }
        let messages = state.messages.fetch_add(1, Ordering::Relaxed) + 1;
        let bytes = state.bytes.fetch_add(size, Ordering::Relaxed) + size;
        let full = if messages > state.limits.messages {
            Some(format!("{} messages", state.limits.messages))
        } else if bytes > state.limits.bytes {
            Some(format!("{} bytes", state.limits.bytes))
        } else {
            None
        };
        if let Some(limit) = full {
            state.release(size);
            if !state.refusing.swap(true, Ordering::Relaxed) {
                tracing::warn!(node = %self.node, %limit, link = ?self.client.connection_state(),
                    "cluster queue full: messages reach this node only until NATS catches up");
            }
            return Err(PublishError::ClusterBacklog(limit));
        }
        let outgoing = Outgoing {
            subject: Subject::from(subject(topic)),
            message,
        };
        if self.outbound.send(outgoing).is_err() {
            state.release(size);
            return Err(PublishError::Unavailable(
                "the NATS link has stopped".into(),
            ));
        }
        // Load first: a swap on every publish would contend for nothing.
        if state.refusing.load(Ordering::Relaxed) && state.refusing.swap(false, Ordering::Relaxed) {
            tracing::info!(node = %self.node, "cluster queue taking messages again");
        }
        Ok(())
    }

    fn lock_links(&self) -> std::sync::MutexGuard<'_, Links> {
        // A poisoned lock only means a panic elsewhere; the maps are intact.
        self.links.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Broker for NatsBroker {
    fn publish(
        &self,
        topic: &str,
        message: Arc<Message>,
        reach: Reach,
    ) -> Result<(), PublishError> {
        self.sockets.deliver(topic, &message);
        self.node_functions.deliver(topic, &message);
        match reach {
            Reach::Node => Ok(()),
            Reach::Cluster => self.send(topic, message),
        }
    }

    fn subscribe(&self, topic: &str, sink: Arc<dyn Sink>, reach: Reach) {
        let id = sink.id();
        match (id, reach) {
            (SinkId::Function(_), Reach::Node) => {
                self.node_functions.add(topic, sink);
            }
            (SinkId::Socket(_), Reach::Node) => {
                self.sockets.add(topic, sink);
            }
            (SinkId::Socket(_), Reach::Cluster) => {
                let mut links = self.lock_links();
                self.sockets.add(topic, sink);
                if !links.sockets.contains_key(topic) {
                    let task = tokio::spawn(feed_sockets(
                        self.client.clone(),
                        topic.to_owned(),
                        self.node.clone(),
                        self.sockets.clone(),
                    ));
                    links.sockets.insert(topic.to_owned(), task.abort_handle());
                }
            }
            (SinkId::Function(_), Reach::Cluster) => {
                let mut links = self.lock_links();
                if let Entry::Vacant(entry) = links.functions.entry((topic.to_owned(), id)) {
                    let group = queue_group(topic, sink.name().unwrap_or("function"));
                    let task = tokio::spawn(feed_function(
                        self.client.clone(),
                        topic.to_owned(),
                        group,
                        sink,
                    ));
                    entry.insert(task.abort_handle());
                }
            }
        }
    }

    fn unsubscribe(&self, topic: &str, id: SinkId) {
        match id {
            SinkId::Socket(_) => {
                let mut links = self.lock_links();
                if self.sockets.remove(topic, id) == Some(0) {
                    // Dropping the NATS subscriber unsubscribes it.
                    if let Some(task) = links.sockets.remove(topic) {
                        task.abort();
                    }
                }
            }
            SinkId::Function(_) => {
                self.node_functions.remove(topic, id);
                if let Some(task) = self.lock_links().functions.remove(&(topic.to_owned(), id)) {
                    task.abort();
                }
            }
        }
    }

    fn cluster_link(&self) -> ClusterLink {
        match self.client.connection_state() {
            State::Connected => ClusterLink::Connected,
            State::Pending | State::Disconnected => ClusterLink::Disconnected,
        }
    }

    fn settle(&self, within: Duration) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let deadline = tokio::time::Instant::now() + within;
            let queued = || self.state.messages.load(Ordering::Relaxed);
            while queued() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(SETTLE_POLL).await;
            }
            if queued() > 0 {
                tracing::warn!(node = %self.node, messages = queued(),
                    "shutting down with messages not yet sent to the other nodes (is NATS reachable?)");
                return;
            }
            // async-nats buffers what it writes: push it out to the server. Without a
            // link there is nothing to push it to, and nothing of ours is waiting.
            if self.cluster_link() != ClusterLink::Connected {
                return;
            }
            if tokio::time::timeout_at(deadline, self.client.flush())
                .await
                .is_err()
            {
                tracing::warn!(node = %self.node, "shutting down before NATS took the last messages");
            }
        })
    }
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        let links = self.lock_links();
        for task in links.sockets.values().chain(links.functions.values()) {
            task.abort();
        }
    }
}

/// Feeds this node's WebSocket clients on `topic` from NATS, skipping what this
/// node published (its clients had it at once).
async fn feed_sockets(client: Client, topic: String, node: Arc<str>, sockets: Arc<LocalBroker>) {
    let channel = channel_of(&topic);
    let mut subscriber = match client.subscribe(subject(&topic)).await {
        Ok(subscriber) => subscriber,
        Err(error) => {
            tracing::error!(%topic, %error, "subscribing to NATS failed; remote messages will not reach this topic's clients");
            return;
        }
    };
    while let Some(received) = subscriber.next().await {
        let origin = Origin::of(received.headers.as_ref());
        if origin.node == Some(&node) {
            continue;
        }
        let message = origin.message(&channel, received.payload);
        sockets.deliver(&topic, &message);
    }
}

/// Feeds one function's subscription to `topic` from its NATS queue group: each
/// message goes to one member of the group, on some node.
async fn feed_function(client: Client, topic: String, group: String, sink: Arc<dyn Sink>) {
    let channel = channel_of(&topic);
    let own = sink.id();
    let mut subscriber = match client.queue_subscribe(subject(&topic), group).await {
        Ok(subscriber) => subscriber,
        Err(error) => {
            tracing::error!(%topic, %error, "subscribing to NATS failed; the function will not run for this topic");
            return;
        }
    };
    while let Some(received) = subscriber.next().await {
        let origin = Origin::of(received.headers.as_ref());
        // A function never receives its own publishes, from whichever node.
        if origin.function.map(SinkId::Function) == Some(own) {
            continue;
        }
        sink.deliver(&origin.message(&channel, received.payload));
    }
}

/// Drains the outbound queue into NATS, in order, holding messages while the link
/// is down (async-nats would otherwise buffer them without our bound).
async fn drain(
    client: Client,
    node: Arc<str>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
    state: Arc<OutboundState>,
) {
    while let Some(outgoing) = rx.recv().await {
        let size = outgoing.message.payload.len();
        if client.connection_state() != State::Connected {
            while client.connection_state() != State::Connected {
                tokio::time::sleep(LINK_POLL).await;
            }
            state
                .max_payload
                .store(client.server_info().max_payload, Ordering::Relaxed);
        } else if state.max_payload.load(Ordering::Relaxed) == 0 {
            state
                .max_payload
                .store(client.server_info().max_payload, Ordering::Relaxed);
        }
        let max_payload = state.max_payload.load(Ordering::Relaxed);
        if max_payload > 0 && size + HEADER_ROOM > max_payload {
            // Queued before the server's limit was known.
            tracing::warn!(%node, size, max_payload, channel = %outgoing.message.channel,
                "message over the NATS server's max_payload; delivered on this node only");
        } else {
            let headers = Origin::header(&node, &outgoing.message);
            let payload = outgoing.message.payload.clone();
            if let Err(error) = client
                .publish_with_headers(outgoing.subject, headers, payload)
                .await
            {
                tracing::warn!(%node, %error, "publishing to NATS failed");
            }
        }
        state.release(size);
    }
}

/// Reconnect backoff: the first `immediate` attempts at once (one per configured
/// server, so losing one server of a NATS cluster costs no wait), then 100 ms
/// doubling to 2 s, plus up to 25% jitter so that a cluster's nodes do not all
/// knock at the same instant.
fn reconnect_delay(attempts: usize, immediate: usize) -> Duration {
    use std::hash::{BuildHasher, Hasher};
    if attempts <= immediate.max(1) {
        return Duration::ZERO;
    }
    let exponent = u32::try_from(attempts - immediate.max(1) - 1)
        .unwrap_or(u32::MAX)
        .min(5);
    let base = Duration::from_millis(100 * (1 << exponent)).min(Duration::from_secs(2));
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    base + base.mul_f64((random % 1000) as f64 / 4000.0)
}

/// Logs the link's ups and downs. `quiet`: a failed attempt was already logged
/// since the last connect, so further ones (one per retry) go to debug.
fn log_event(node: &str, quiet: &AtomicBool, event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => {
            quiet.store(false, Ordering::Relaxed);
            tracing::info!(%node, "cluster link up (NATS connected)");
        }
        Event::Disconnected => {
            tracing::warn!(%node, "cluster link down (NATS disconnected); reconnecting");
        }
        Event::ClientError(error) if quiet.swap(true, Ordering::Relaxed) => {
            tracing::debug!(%node, %error, "NATS connection attempt failed");
        }
        Event::ClientError(error) => {
            tracing::warn!(%node, %error, "NATS connection attempt failed; retrying (further failures at debug level)");
        }
        Event::SlowConsumer(sid) => {
            tracing::warn!(%node, sid, "NATS subscription too slow; messages dropped");
        }
        Event::LameDuckMode => {
            tracing::info!(%node, "NATS server entering lame duck mode; will move");
        }
        other => tracing::info!(%node, event = %other, "NATS event"),
    }
}

/// `url` with any password replaced, for logs.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://***@{host}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked() {
        assert!(check_node_id("node-1.example_2").is_ok());
        assert!(check_node_id(&default_node_id()).is_ok());
        for bad in ["", "a b", "a/b", "ü", &"x".repeat(MAX_NODE_ID + 1)] {
            assert!(check_node_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reconnect_backoff_grows_to_a_cap() {
        assert_eq!(reconnect_delay(1, 1), Duration::ZERO);
        assert!(reconnect_delay(2, 1) >= Duration::from_millis(100));
        assert!(reconnect_delay(2, 1) <= Duration::from_millis(125));
        assert_eq!(reconnect_delay(3, 3), Duration::ZERO);
        assert!(reconnect_delay(4, 3) >= Duration::from_millis(100));
        for attempts in 8..40 {
            let delay = reconnect_delay(attempts, 1);
            assert!(delay >= Duration::from_secs(2) && delay <= Duration::from_millis(2500));
        }
        assert_eq!(redact("nats://u:p@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://h:4222"), "nats://h:4222");
    }
}
