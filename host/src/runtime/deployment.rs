//! The loaded functions, and when an invocation may run.
//!
//! Admission lives here, beside the runtime it protects: every invocation holds one of
//! `concurrent` slots (each slot is a wasm instance of the pool). HTTP requests wait for a
//! slot in a bounded queue for a bounded time, else get [`InvokeError::Busy`] (503);
//! pub/sub invocations also take one of [`MAX_PUBSUB_INVOCATIONS`] slots of their own, so
//! a burst of messages cannot take every instance from HTTP.

use super::function::GuestFunction;
use super::invoke::InvokeError;
use super::Runtime;
use crate::abi::{Channels, EventData, GuestEnv};
use crate::egress::Client;
use crate::state::{Catalog, FunctionState, StateEngine};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Pub/sub invocations running at once, across all subscriptions.
pub const MAX_PUBSUB_INVOCATIONS: usize = 64;

/// How many invocations run at once, and how many may wait for a slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InvocationLimits {
    /// Invocations running at once (every one holds a wasm instance).
    pub concurrent: usize,
    /// HTTP requests waiting for a slot; past this they get 503 at once.
    pub queue: usize,
    /// How long an HTTP request waits for a slot before it gets 503.
    pub queue_wait: Duration,
}

impl Default for InvocationLimits {
    fn default() -> Self {
        Self {
            concurrent: 1000,
            queue: 1000,
            queue_wait: Duration::from_secs(5),
        }
    }
}

/// Who a function is, for its state: its application (`""` at project level) and name.
pub type Owner = (Arc<str>, Arc<str>);

/// The loaded functions and the runtime that runs them.
pub struct Deployment {
    pub runtime: Runtime,
    pub functions: Vec<Arc<GuestFunction>>,
    /// Each function's messaging scope.
    scopes: Vec<usize>,
    /// Each function's application (`""` at project level) and name.
    owners: Vec<Owner>,
    /// Each function's databases, storages and globals, once [`Deployment::attach_state`]
    /// gave them an engine; before that, state calls fail.
    state: Vec<Option<Arc<FunctionState>>>,
    /// Each function's outbound HTTP client, once [`Deployment::attach_egress`] gave them
    /// one; before that, sends fail.
    egress: Vec<Option<Arc<Client>>>,
    limits: InvocationLimits,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    pubsub_slots: Arc<Semaphore>,
}

impl Deployment {
    /// `functions` pairs each function with its messaging scope and its owner: its
    /// application (`""` at project level) and name.
    pub fn new(
        runtime: Runtime,
        functions: Vec<(Arc<GuestFunction>, usize, Owner)>,
        limits: InvocationLimits,
    ) -> Self {
        let mut scopes = Vec::with_capacity(functions.len());
        let mut owners = Vec::with_capacity(functions.len());
        let functions = functions
            .into_iter()
            .map(|(function, scope, owner)| {
                scopes.push(scope);
                owners.push(owner);
                function
            })
            .collect::<Vec<_>>();
        Self {
            state: vec![None; functions.len()],
            egress: vec![None; functions.len()],
            runtime,
            functions,
            scopes,
            owners,
            slots: Arc::new(Semaphore::new(limits.concurrent)),
            limits,
            waiting: Default::default(),
            pubsub_slots: Arc::new(Semaphore::new(MAX_PUBSUB_INVOCATIONS)),
        }
    }

    /// Gives every function its view of `engine`: the project's databases and storages in
    /// `catalog`, and its globals.
    pub fn attach_state(&mut self, engine: Arc<dyn StateEngine>, catalog: Arc<Catalog>) {
        self.state = self
            .owners
            .iter()
            .map(|(application, name)| {
                Some(Arc::new(FunctionState {
                    engine: engine.clone(),
                    catalog: catalog.clone(),
                    application: application.clone(),
                    function: format!("{application}/{name}").into(),
                }))
            })
            .collect();
    }

    /// Gives each function its outbound HTTP client: `clients[i]` is function `i`'s.
    pub fn attach_egress(&mut self, clients: Vec<Arc<Client>>) {
        assert_eq!(
            clients.len(),
            self.functions.len(),
            "one client per function"
        );
        self.egress = clients.into_iter().map(Some).collect();
    }

    /// Function `function`'s messaging scope.
    pub fn scope_of(&self, function: usize) -> usize {
        self.scopes[function]
    }

    /// Runs `function` on an HTTP `event` once a slot is free (see [`InvocationLimits`]),
    /// with `channels` for its pub/sub calls.
    pub async fn invoke_http(
        &self,
        channels: Arc<dyn Channels>,
        function: usize,
        event: EventData,
    ) -> Result<EventData, InvokeError> {
        let _slot = match self.http_slot().await {
            Ok(slot) => slot,
            Err(busy) => {
                if let Some(metrics) = crate::metrics::get() {
                    metrics.invocation(&self.functions[function].name, busy.outcome());
                }
                return Err(busy);
            }
        };
        self.invoke(channels, function, event).await
    }

    /// Runs `function` on a pub/sub `event` once both a pub/sub slot and an invocation
    /// slot are free; messages wait in their subscription's bounded queue meanwhile.
    pub async fn invoke_pubsub(
        &self,
        channels: Arc<dyn Channels>,
        function: usize,
        event: EventData,
    ) -> Result<EventData, InvokeError> {
        // Neither semaphore is ever closed, so acquiring only waits.
        let _pubsub_slot = self.pubsub_slots.clone().acquire_owned().await;
        let _slot = self.slots.clone().acquire_owned().await;
        self.invoke(channels, function, event).await
    }

    /// A slot to run one HTTP invocation: at once, after a bounded wait in a bounded
    /// queue, or `Busy`.
    async fn http_slot(&self) -> Result<OwnedSemaphorePermit, InvokeError> {
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

    /// Runs `function` on `event` now.
    async fn invoke(
        &self,
        channels: Arc<dyn Channels>,
        function: usize,
        event: EventData,
    ) -> Result<EventData, InvokeError> {
        let env = GuestEnv {
            channels,
            function,
            scope: self.scopes[function],
            state: self.state[function].clone(),
            egress: self.egress[function].clone(),
        };
        self.runtime
            .invoke(&self.functions[function], event, env)
            .await
    }
}
