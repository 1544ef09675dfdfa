//! The node's connection to NATS: connecting (credentials, pings, reconnect
//! backoff, link events in the log), the bounded outbound queue and the task that
//! drains it into NATS, and the subscription tasks that feed messages from NATS
//! to this node's sinks.

use super::settings::{check_node_id, redact, NatsConfig, QueueLimits};
use super::wire::{channel_of, queue_group, subject, Origin, HEADER_ROOM};
use crate::messaging::broker::{ClusterLink, LocalBroker, PublishError, Sink, SinkId};
use crate::messaging::Message;
use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, ServerAddr, Subject};
use futures_util::StreamExt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// How often the client pings the server; two unanswered pings count as a lost
/// link. The client's default (60 s) would leave a silently dead link up for
/// minutes; 10 s notices one within about 30 s at one small frame per 10 s.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// How often the outbound task looks at a link that is down. Looking is reading a
/// watch value, so this only bounds how soon after a reconnect the queue drains.
const LINK_POLL: Duration = Duration::from_millis(50);

/// How often a shutting-down node checks whether its cluster queue is empty.
const SETTLE_POLL: Duration = Duration::from_millis(5);

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

/// A node's link to NATS: the client, and the queue in front of it.
pub(super) struct Link {
    node: Arc<str>,
    pub(super) client: Client,
    outbound: mpsc::UnboundedSender<Outgoing>,
    state: Arc<OutboundState>,
}

impl Link {
    /// Starts connecting to `config.servers` and returns at once: the client keeps
    /// trying in the background (publishes queue meanwhile). Fails only on bad
    /// settings. Must run inside the tokio runtime.
    pub(super) async fn connect(config: NatsConfig) -> anyhow::Result<Self> {
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
            outbound,
            state,
        })
    }

    /// Queues `message` for NATS, or says why not.
    pub(super) fn send(&self, topic: &str, message: Arc<Message>) -> Result<(), PublishError> {
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
            if let Some(metrics) = crate::metrics::get() {
                metrics.queue_drop("cluster");
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

    /// Whether the client is connected to a NATS server now.
    pub(super) fn state(&self) -> ClusterLink {
        match self.client.connection_state() {
            State::Connected => ClusterLink::Connected,
            State::Pending | State::Disconnected => ClusterLink::Disconnected,
        }
    }

    /// Waits, up to `within`, until the outbound queue is empty and the client has
    /// written what it buffered to the server; logs what is left behind.
    pub(super) async fn settle(&self, within: Duration) {
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
        if self.state() != ClusterLink::Connected {
            return;
        }
        if tokio::time::timeout_at(deadline, self.client.flush())
            .await
            .is_err()
        {
            tracing::warn!(node = %self.node, "shutting down before NATS took the last messages");
        }
    }

    /// Subscribes to `topic` on NATS for this node's WebSocket clients in
    /// `sockets`; aborting the returned task unsubscribes.
    pub(super) fn feed_sockets(&self, topic: &str, sockets: Arc<LocalBroker>) -> AbortHandle {
        let task = tokio::spawn(feed_sockets(
            self.client.clone(),
            topic.to_owned(),
            self.node.clone(),
            sockets,
        ));
        task.abort_handle()
    }

    /// Joins `sink`'s NATS queue group for `topic` (see [`queue_group`]); aborting
    /// the returned task leaves it.
    /// Feeds `sink` from `topic`'s queue group; once the server has its subscription,
    /// ends `succeeds` (the subscription it replaces), if any.
    pub(super) fn feed_function(
        &self,
        topic: &str,
        sink: Arc<dyn Sink>,
        succeeds: Option<AbortHandle>,
    ) -> AbortHandle {
        let group = queue_group(topic, sink.name().unwrap_or("function"));
        let task = tokio::spawn(feed_function(
            self.client.clone(),
            topic.to_owned(),
            group,
            sink,
            succeeds,
        ));
        task.abort_handle()
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
        let message = origin.message(&channel, received.payload, received.headers.as_ref());
        sockets.deliver(&topic, &message);
    }
}

/// Feeds one function's subscription to `topic` from its NATS queue group: each
/// message goes to one member of the group, on some node.
async fn feed_function(
    client: Client,
    topic: String,
    group: String,
    sink: Arc<dyn Sink>,
    succeeds: Option<AbortHandle>,
) {
    let channel = channel_of(&topic);
    let own = sink.id();
    let subscribed = client.queue_subscribe(subject(&topic), group).await;
    if let Some(old) = succeeds {
        // Both in one queue group meanwhile: each message went to one of them.
        let _ = client.flush().await;
        old.abort();
    }
    let mut subscriber = match subscribed {
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
        sink.deliver(&origin.message(&channel, received.payload, received.headers.as_ref()));
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

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
