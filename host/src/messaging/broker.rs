//! The broker seam: where published messages meet their subscribers.
//!
//! [`Broker`] is the one interface publishers and subscribers use. [`LocalBroker`]
//! delivers inside this process; a cluster backplane implements the same trait and
//! forwards between nodes, without callers changing.

use super::Message;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Who a subscriber is, so a publisher is never sent its own message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SinkId {
    /// A function, by its index in the loaded project.
    Function(usize),
    /// A WebSocket connection, by its connection number.
    Socket(u64),
}

/// A subscriber: something that takes messages without blocking the publisher.
pub trait Sink: Send + Sync {
    fn id(&self) -> SinkId;
    /// Queues `message` for this subscriber. Must not block: a slow subscriber
    /// drops or disconnects itself, it never slows the publisher.
    fn deliver(&self, message: &Arc<Message>);
}

/// A publish the broker refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
}

/// Routes messages by topic to subscribers.
pub trait Broker: Send + Sync {
    /// Delivers `message` to every subscriber of `topic` but its origin.
    fn publish(&self, topic: &str, message: Arc<Message>) -> Result<(), PublishError>;
    /// Adds `sink` to `topic`; a sink already there (same id) is not added twice.
    fn subscribe(&self, topic: &str, sink: Arc<dyn Sink>);
    /// Removes the sink with `id` from `topic`.
    fn unsubscribe(&self, topic: &str, id: SinkId);
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

    /// How many subscribers `topic` has (for health and tests).
    pub fn subscriber_count(&self, topic: &str) -> usize {
        self.subscribers(topic).map_or(0, |s| s.len())
    }
}

impl Broker for LocalBroker {
    fn publish(&self, topic: &str, message: Arc<Message>) -> Result<(), PublishError> {
        if let Some(subscribers) = self.subscribers(topic) {
            for sink in subscribers.iter() {
                if Some(sink.id()) != message.origin {
                    sink.deliver(&message);
                }
            }
        }
        Ok(())
    }

    fn subscribe(&self, topic: &str, sink: Arc<dyn Sink>) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let current = topics.get(topic).map(|s| s.to_vec()).unwrap_or_default();
        if current.iter().any(|s| s.id() == sink.id()) {
            return;
        }
        let mut next = current;
        next.push(sink);
        topics.insert(topic.to_owned(), next.into());
    }

    fn unsubscribe(&self, topic: &str, id: SinkId) {
        let mut topics = self.topics.write().unwrap_or_else(|p| p.into_inner());
        let Some(current) = topics.get(topic) else {
            return;
        };
        let next: Vec<Arc<dyn Sink>> = current.iter().filter(|s| s.id() != id).cloned().collect();
        if next.is_empty() {
            topics.remove(topic);
        } else {
            topics.insert(topic.to_owned(), next.into());
        }
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
        broker.subscribe("t", a.clone());
        broker.subscribe("t", a.clone());
        broker.subscribe("t", b.clone());
        assert_eq!(broker.subscriber_count("t"), 2);
        for (i, origin) in [None, Some(SinkId::Socket(1)), Some(SinkId::Function(0))]
            .into_iter()
            .enumerate()
        {
            let message = Message::new("c", bytes::Bytes::from(format!("m{i}")), None, origin);
            broker.publish("t", Arc::new(message)).unwrap();
        }
        assert_eq!(*a.got.lock().unwrap(), ["m0", "m2"]);
        assert_eq!(*b.got.lock().unwrap(), ["m0", "m1"]);
        broker.unsubscribe("t", SinkId::Socket(1));
        broker.unsubscribe("t", SinkId::Function(0));
        assert_eq!(broker.subscriber_count("t"), 0);
    }
}
