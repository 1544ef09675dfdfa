//! Pub/sub functions: each (function, channel) subscription is a subscriber with a
//! queue of its own and one worker, so a function sees a channel's messages in
//! publish order, while different subscriptions run concurrently up to a bound.

use super::broker::{Reach, Sink, SinkId};
use super::{Hub, Message};
use crate::runtime::function::GuestFunction;
use crate::runtime::invoke::InvokeError;
use crate::runtime::state::{EventData, GuestEnv, PubSubEvent};
use crate::runtime::Runtime;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};

/// Messages waiting for one subscription's function. Past this the function is
/// too far behind: new messages for it are dropped, with a warning, rather than
/// held without bound.
const SUBSCRIPTION_QUEUE: usize = 1024;

/// Pub/sub invocations running at once, across all subscriptions.
const MAX_PUBSUB_INVOCATIONS: usize = 64;

/// How many invocations run at once, and how many may wait for a slot.
#[derive(Clone, Copy, Debug)]
pub struct InvocationLimits {
    /// Invocations running at once (every one holds a wasm instance).
    pub concurrent: usize,
    /// HTTP requests waiting for a slot; past this they get 503 at once.
    pub queue: usize,
    /// How long an HTTP request waits for a slot before it gets 503.
    pub queue_wait: std::time::Duration,
}

impl Default for InvocationLimits {
    fn default() -> Self {
        Self {
            concurrent: 1000,
            queue: 1000,
            queue_wait: std::time::Duration::from_secs(5),
        }
    }
}

/// The loaded functions and the runtime that runs them.
pub struct Deployment {
    pub runtime: Runtime,
    pub functions: Vec<Arc<GuestFunction>>,
    /// Each function's messaging scope (index into `Hub::scopes`).
    scopes: Vec<usize>,
    limits: InvocationLimits,
    slots: Arc<Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    pubsub_slots: Arc<Semaphore>,
}

impl Deployment {
    /// `functions` pairs each function with its messaging scope.
    pub fn new(
        runtime: Runtime,
        functions: Vec<(Arc<GuestFunction>, usize)>,
        limits: InvocationLimits,
    ) -> Self {
        let (functions, scopes) = functions.into_iter().unzip();
        Self {
            runtime,
            functions,
            scopes,
            slots: Arc::new(Semaphore::new(limits.concurrent)),
            limits,
            waiting: Default::default(),
            pubsub_slots: Arc::new(Semaphore::new(MAX_PUBSUB_INVOCATIONS)),
        }
    }

    /// A slot to run one HTTP invocation: at once, after a bounded wait in a
    /// bounded queue, or `Busy`.
    async fn http_slot(&self) -> Result<OwnedSemaphorePermit, InvokeError> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.limits.queue {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(InvokeError::Busy);
        }
        let waited =
            tokio::time::timeout(self.limits.queue_wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(InvokeError::Busy),
        }
    }

    pub fn scope_of(&self, function: usize) -> usize {
        self.scopes[function]
    }

    /// Runs `function` on an HTTP `event` once a slot is free (see
    /// [`InvocationLimits`]), with `hub` for its pub/sub calls.
    pub async fn invoke_http(
        &self,
        hub: &Arc<Hub>,
        function: usize,
        event: EventData,
    ) -> Result<EventData, InvokeError> {
        let _slot = self.http_slot().await?;
        self.invoke(hub, function, event).await
    }

    /// Runs `function` on `event` now, with `hub` for its pub/sub calls.
    async fn invoke(
        &self,
        hub: &Arc<Hub>,
        function: usize,
        event: EventData,
    ) -> Result<EventData, InvokeError> {
        let env = GuestEnv {
            hub: hub.clone(),
            function,
            scope: self.scopes[function],
        };
        self.runtime
            .invoke(&self.functions[function], event, env)
            .await
    }
}

/// The (function, topic) pairs already subscribed.
#[derive(Default)]
pub struct Subscriptions {
    active: Mutex<HashSet<(usize, String)>>,
}

impl Subscriptions {
    /// Subscribes `function` to `topic` once; later calls do nothing.
    pub fn subscribe(&self, hub: &Arc<Hub>, function: usize, topic: String, reach: Reach) {
        {
            let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
            if !active.insert((function, topic.clone())) {
                return;
            }
        }
        let (tx, rx) = mpsc::channel(SUBSCRIPTION_QUEUE);
        tokio::spawn(run(Arc::downgrade(hub), function, rx));
        let name = hub.deployment().functions[function].name.clone();
        tracing::info!(function = %name, %topic, ?reach, "function subscribed");
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
        let Ok(_pubsub_slot) = deployment.pubsub_slots.clone().acquire_owned().await else {
            return;
        };
        let Ok(_slot) = deployment.slots.clone().acquire_owned().await else {
            return;
        };
        let event = EventData::PubSub(PubSubEvent {
            channel: message.channel.clone(),
            data: message.payload.clone(),
        });
        if let Err(error) = deployment.invoke(&hub, function, event).await {
            let name = &deployment.functions[function].name;
            tracing::warn!(function = %name, channel = %message.channel, %error, "pub/sub function failed");
        }
    }
}
