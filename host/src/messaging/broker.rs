//! The broker seam: where published messages meet their subscribers.
//!
//! [`Broker`] is the one interface publishers and subscribers use. [`LocalBroker`]
//! delivers inside this process; [`NatsBroker`](super::nats::NatsBroker) implements
//! the same trait and forwards between nodes, without callers changing. Callers say
//! how far a publish or subscription reaches ([`Reach`]); only a cluster broker
//! looks at it.

use super::Message;
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Who a subscriber is, so a publisher is never sent its own message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinkId {
    /// A function, by its index in the loaded project.
    Function(usize),
    /// A WebSocket connection, by its connection number.
    Socket(u64),
}

/// Ids of subscribers that are not functions (sockets, feeds, a socket's subscriptions),
/// unique in the process: a subscriber's id is also the origin of what it publishes.
static NEXT_SINK_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A new [`SinkId::Socket`] number.
pub fn next_sink_id() -> u64 {
    NEXT_SINK_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// How far a publish or a subscription reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// This node only: channels and triggers marked `local: true`.
    Node,
    /// Every node of the cluster; on a single node, the same as [`Reach::Node`].
    Cluster,
}

/// The state of a node's link to its cluster, as the health endpoint reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterLink {
    /// Not clustered: the in-process broker.
    Off,
    Connected,
    /// Clustered, but the link is down (or not up yet); local delivery goes on.
    Disconnected,
}

impl ClusterLink {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
        }
    }
}

/// A subscriber: something that takes messages without blocking the publisher.
pub trait Sink: Send + Sync {
    fn id(&self) -> SinkId;
    /// A name that is the same on every node running the project (a function's
    /// name). A cluster broker groups function subscribers by it, so that one node,
    /// not every node, runs the function for a message.
    fn name(&self) -> Option<&str> {
        None
    }
    /// Queues `message` for this subscriber. Must not block: a slow subscriber
    /// drops or disconnects itself, it never slows the publisher.
    fn deliver(&self, message: &Arc<Message>);
}

/// A publish the broker refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
    /// The cluster link is down or slow and its outbound queue is full. The message
    /// reached this node's WebSocket clients and `local: true` functions, but no
    /// other node and no function subscribed cluster-wide (not even on this node:
    /// those take their messages from the cluster).
    #[error("delivered on this node only: the cluster queue is full ({0})")]
    ClusterBacklog(String),
    /// The message is larger than the cluster's transport takes. As with
    /// [`ClusterBacklog`](Self::ClusterBacklog), it reached this node's WebSocket
    /// clients and `local: true` functions only.
    #[error("delivered on this node only: {size} bytes is over the cluster's {limit}-byte message limit")]
    ClusterTooLarge { size: usize, limit: usize },
}

/// Routes messages by topic to subscribers.
pub trait Broker: Send + Sync {
    /// Delivers `message` to every subscriber of `topic` but its origin, on this
    /// node or (`Reach::Cluster`) on every node.
    fn publish(&self, topic: &str, message: Arc<Message>, reach: Reach)
        -> Result<(), PublishError>;
    /// Adds `sink` to `topic`; a sink already there (same id) is not added twice.
    /// With `Reach::Node` the sink gets only messages published on this node.
    fn subscribe(&self, topic: &str, sink: Arc<dyn Sink>, reach: Reach);
    /// Removes the sink with `id` from `topic`.
    fn unsubscribe(&self, topic: &str, id: SinkId);
    /// Subscribes `sink` to `topic` in place of the sink with its id there, if one is: a
    /// reload's new function taking over from the old. No message between the two goes
    /// to both or to neither, where the broker can make it so.
    fn replace(&self, topic: &str, sink: Arc<dyn Sink>, reach: Reach) {
        let id = sink.id();
        self.unsubscribe(topic, id);
        self.subscribe(topic, sink, reach);
    }
    /// The link to the cluster, if there is one.
    fn cluster_link(&self) -> ClusterLink {
        ClusterLink::Off
    }
    /// At shutdown: waits, up to `within`, until what this node published has left
    /// for the other nodes. Nothing to wait for without a cluster.
    fn settle(&self, within: Duration) -> BoxFuture<'_, ()> {
        let _ = within;
        Box::pin(async {})
    }
}

type Subscribers = Arc<[Arc<dyn Sink>]>;

/// Delivers within this process.
///
/// Each topic's subscriber list is an immutable shared slice, replaced on
/// (un)subscribe: a publish holds the lock only to clone one `Arc`, then fans out
/// with no lock held. The message itself is shared by every subscriber, never
/// copied per subscriber.
#[derive(Default)]
pub struct LocalBroker {
    topics: RwLock<HashMap<String, Subscribers>>,
}

impl LocalBroker {
    pub fn new() -> Self {
        Self::default()
    }

    fn subscribers(&self, topic: &str) -> Option<Subscribers> {
        // A poisoned lock only means a panic elsewhere; the map itself is intact.
        let topics = self.topics.read().unwrap_or_else(|p| p.into_inner());
        topics.get(topic).cloned()
    }

    /// How many subscribers `topic` has. Only this module's tests ask; the health
    /// endpoint reports the cluster link ([`Broker::cluster_link`]), not counts.
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.subscribers(topic).map_or(0, |s| s.len())
    }

    /// Delivers `message` to every subscriber of `topic` but its origin.
    pub fn deliver(&self, topic: &str, message: &Arc<Message>) {
        if let Some(subscribers) = self.subscribers(topic) {
            for sink in subscribers.iter() {
                if Some(sink.id()) != message.origin {
                    sink.deliver(message);
                }
            }
        }
    }

    /// Adds `sink` to `topic` unless a sink with its id is there; returns how many
    /// subscribers `topic` has now.
    pub fn add(&self, topic: &str, sink: Arc<dyn Sink>) -> usize {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let current = topics.get(topic).map(|s| s.to_vec()).unwrap_or_default();
        if current.iter().any(|s| s.id() == sink.id()) {
            return current.len();
        }
        let mut next = current;
        next.push(sink);
        let count = next.len();
        topics.insert(topic.to_owned(), next.into());
        count
    }

    /// Puts `sink` in place of the sink with its id on `topic` (or adds it), in one step.
    pub fn put(&self, topic: &str, sink: Arc<dyn Sink>) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let id = sink.id();
        let mut next: Vec<Arc<dyn Sink>> = match topics.get(topic) {
            Some(current) => current.iter().filter(|s| s.id() != id).cloned().collect(),
            None => Vec::new(),
        };
        next.push(sink);
        topics.insert(topic.to_owned(), next.into());
    }

    /// Removes the sink with `id` from `topic`; returns how many subscribers are
    /// left, or `None` if there was no such sink.
    pub fn remove(&self, topic: &str, id: SinkId) -> Option<usize> {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let current = topics.get(topic)?;
        if !current.iter().any(|s| s.id() == id) {
            return None;
        }
        let next: Vec<Arc<dyn Sink>> = current.iter().filter(|s| s.id() != id).cloned().collect();
        let left = next.len();
        if next.is_empty() {
            topics.remove(topic);
        } else {
            topics.insert(topic.to_owned(), next.into());
        }
        Some(left)
    }
}

impl Broker for LocalBroker {
    fn publish(
        &self,
        topic: &str,
        message: Arc<Message>,
        _reach: Reach,
    ) -> Result<(), PublishError> {
        self.deliver(topic, &message);
        Ok(())
    }

    fn subscribe(&self, topic: &str, sink: Arc<dyn Sink>, _reach: Reach) {
        self.put(topic, sink);
    }

    fn unsubscribe(&self, topic: &str, id: SinkId) {
        self.remove(topic, id);
    }

    fn replace(&self, topic: &str, sink: Arc<dyn Sink>, _reach: Reach) {
        self.put(topic, sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Recorder {
        id: SinkId,
        got: Mutex<Vec<String>>,
    }

    impl Sink for Recorder {
        fn id(&self) -> SinkId {
            self.id
        }
        fn deliver(&self, message: &Arc<Message>) {
            self.got
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&message.payload).into_owned());
        }
    }

    fn recorder(id: SinkId) -> Arc<Recorder> {
        Arc::new(Recorder {
            id,
            got: Mutex::new(Vec::new()),
        })
    }

    #[test]
    fn fans_out_in_order_skipping_the_origin_and_duplicates() {
        let broker = LocalBroker::new();
        let a = recorder(SinkId::Socket(1));
        let b = recorder(SinkId::Function(0));
        broker.subscribe("t", a.clone(), Reach::Cluster);
        broker.subscribe("t", a.clone(), Reach::Cluster);
        broker.subscribe("t", b.clone(), Reach::Node);
        assert_eq!(broker.subscriber_count("t"), 2);
        for (i, origin) in [None, Some(SinkId::Socket(1)), Some(SinkId::Function(0))]
            .into_iter()
            .enumerate()
        {
            let message = Message::new("c", bytes::Bytes::from(format!("m{i}")), None, origin);
            broker
                .publish("t", Arc::new(message), Reach::Cluster)
                .unwrap();
        }
        assert_eq!(*a.got.lock().unwrap(), ["m0", "m2"]);
        assert_eq!(*b.got.lock().unwrap(), ["m0", "m1"]);
        broker.unsubscribe("t", SinkId::Socket(1));
        broker.unsubscribe("t", SinkId::Function(0));
        assert_eq!(broker.subscriber_count("t"), 0);
    }
}
