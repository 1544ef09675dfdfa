//! Pub/sub functions: each (function, channel) subscription is a subscriber with a
//! queue of its own and one worker, so a function sees a channel's messages in
//! publish order, while different subscriptions run concurrently up to a bound
//! (the runtime's `Deployment::invoke_pubsub`).

use super::broker::{ClusterLink, Reach, Sink, SinkId};
use super::{Hub, Message};
use crate::abi::{EventData, PubSubEvent};
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::mpsc;

/// Messages waiting for one subscription's function. Past this the function is
/// too far behind: new messages for it are dropped, with a warning, rather than
/// held without bound.
const SUBSCRIPTION_QUEUE: usize = 1024;

/// The (function, topic) pairs already subscribed.
#[derive(Default)]
pub struct Subscriptions {
    active: Mutex<HashSet<(usize, String)>>,
}

impl Subscriptions {
    /// Subscribes `function` to `topic` once; later calls do nothing.
    pub fn subscribe(&self, hub: &Hub, function: usize, topic: String, reach: Reach) {
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if !active.insert((function, topic.clone())) {
                return;
            }
        }
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        tokio::spawn(run(hub.me.clone(), function, rx));
        let name = hub.deployment().functions[function].name.clone();
        // Reach means something only in a cluster.
        match hub.broker.cluster_link() {
            ClusterLink::Off => tracing::info!(function = %name, %topic, "function subscribed"),
            _ => tracing::info!(function = %name, %topic, ?reach, "function subscribed"),
        }
        hub.broker
            .subscribe(&topic, Arc::new(FunctionSink { function, name, tx }), reach);
    }
}

struct FunctionSink {
    function: usize,
    name: Arc<str>,
    tx: mpsc::Sender<Arc<Message>>,
}

impl Sink for FunctionSink {
    fn id(&self) -> SinkId {
        SinkId::Function(self.function)
    }

    fn name(&self) -> Option<&str> {
        Some(&self.name)
    }

    fn deliver(&self, message: &Arc<Message>) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(message.clone()) {
            tracing::warn!(function = %self.name, channel = %message.channel,
                "function is {SUBSCRIPTION_QUEUE} messages behind; message dropped");
        }
    }
}

/// Invokes the function for each message of one subscription, in order.
async fn run(hub: Weak<Hub>, function: usize, mut rx: mpsc::Receiver<Arc<Message>>) {
    while let Some(message) = rx.recv().await {
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let deployment = hub.deployment().clone();
        let event = EventData::PubSub(PubSubEvent {
            channel: message.channel.clone(),
            data: message.payload.clone(),
        });
        if let Err(error) = deployment.invoke_pubsub(hub, function, event).await {
            let name = &deployment.functions[function].name;
            tracing::warn!(function = %name, channel = %message.channel, %error, "pub/sub function failed");
        }
    }
}
