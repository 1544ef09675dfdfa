//! [`NatsBroker`], the [`Broker`] of a clustered node: which subscriber is fed
//! from where (this node's publishes, a plain NATS subscription, a queue group),
//! and which publishes go to NATS. The connection itself is the [`Link`]'s.

use super::link::Link;
use super::settings::NatsConfig;
use crate::messaging::broker::{
    Broker, ClusterLink, LocalBroker, PublishError, Reach, Sink, SinkId,
};
use crate::messaging::Message;
use futures_util::future::BoxFuture;
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::AbortHandle;

/// A [`Broker`] for one node of a cluster (see the module docs).
pub struct NatsBroker {
    link: Link,
    /// This node's WebSocket clients: fed by local publishes and from NATS.
    sockets: Arc<LocalBroker>,
    /// Function subscriptions that take only this node's messages (`local: true`).
    node_functions: LocalBroker,
    /// The NATS subscriptions, each a task: socket topics, cluster functions.
    subscriptions: Mutex<Subscriptions>,
}

#[derive(Default)]
struct Subscriptions {
    /// One per topic with a WebSocket client on this node.
    sockets: HashMap<String, AbortHandle>,
    /// One per (topic, function) subscribed cluster-wide.
    functions: HashMap<(String, SinkId), AbortHandle>,
}

impl NatsBroker {
    /// Starts connecting to `config.servers` and returns at once: the client keeps
    /// trying in the background (publishes queue meanwhile). Fails only on bad
    /// settings. Must run inside the tokio runtime.
    pub async fn connect(config: NatsConfig) -> anyhow::Result<Self> {
        Ok(Self {
            link: Link::connect(config).await?,
            sockets: Arc::default(),
            node_functions: LocalBroker::new(),
            subscriptions: Mutex::default(),
        })
    }

    /// The NATS connection, for the state engine to share (`state::jetstream`).
    pub fn client(&self) -> async_nats::Client {
        self.link.client.clone()
    }

    fn lock_subscriptions(&self) -> std::sync::MutexGuard<'_, Subscriptions> {
        // A poisoned lock only means a panic elsewhere; the maps are intact.
        self.subscriptions.lock().unwrap_or_else(|p| p.into_inner())
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
            Reach::Cluster => self.link.send(topic, message),
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
                let mut subscriptions = self.lock_subscriptions();
                self.sockets.add(topic, sink);
                if !subscriptions.sockets.contains_key(topic) {
                    let task = self.link.feed_sockets(topic, self.sockets.clone());
                    subscriptions.sockets.insert(topic.to_owned(), task);
                }
            }
            (SinkId::Function(_), Reach::Cluster) => {
                let mut subscriptions = self.lock_subscriptions();
                if let Entry::Vacant(entry) = subscriptions.functions.entry((topic.to_owned(), id))
                {
                    entry.insert(self.link.feed_function(topic, sink, None));
                }
            }
        }
    }

    fn unsubscribe(&self, topic: &str, id: SinkId) {
        match id {
            SinkId::Socket(_) => {
                let mut subscriptions = self.lock_subscriptions();
                if self.sockets.remove(topic, id) == Some(0) {
                    // Dropping the NATS subscriber unsubscribes it.
                    if let Some(task) = subscriptions.sockets.remove(topic) {
                        task.abort();
                    }
                }
            }
            SinkId::Function(_) => {
                self.node_functions.remove(topic, id);
                let task = self
                    .lock_subscriptions()
                    .functions
                    .remove(&(topic.to_owned(), id));
                if let Some(task) = task {
                    task.abort();
                }
            }
        }
    }

    /// A function's: a node-only one in one step; a cluster one subscribes the new
    /// sink to NATS before the old's subscription ends. Both are in the topic's queue
    /// group, which gives each message to one of them.
    fn replace(&self, topic: &str, sink: Arc<dyn Sink>, reach: Reach) {
        let id = sink.id();
        match (id, reach) {
            (SinkId::Function(_), Reach::Node) => self.node_functions.put(topic, sink),
            (SinkId::Function(_), Reach::Cluster) => {
                self.node_functions.remove(topic, id);
                let mut subscriptions = self.lock_subscriptions();
                let key = (topic.to_owned(), id);
                let old = subscriptions.functions.remove(&key);
                let task = self.link.feed_function(topic, sink, old);
                subscriptions.functions.insert(key, task);
            }
            (SinkId::Socket(_), _) => {
                self.unsubscribe(topic, id);
                self.subscribe(topic, sink, reach);
            }
        }
    }

    fn cluster_link(&self) -> ClusterLink {
        self.link.state()
    }

    fn settle(&self, within: Duration) -> BoxFuture<'_, ()> {
        Box::pin(self.link.settle(within))
    }
}

impl Drop for NatsBroker {
    fn drop(&mut self) {
        let subscriptions = self.lock_subscriptions();
        for task in subscriptions
            .sockets
            .values()
            .chain(subscriptions.functions.values())
        {
            task.abort();
        }
    }
}
