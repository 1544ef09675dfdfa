//! Channels, pub/sub and who may use them.
//!
//! # Layout
//! - [`broker`]: the [`Broker`](broker::Broker) seam and the in-process broker.
//! - [`nats`]: the cluster broker: nodes share channels through NATS.
//! - [`scope`]: messaging resources → which channels are allowed, topics, URLs.
//! - [`functions`]: pub/sub functions as subscribers, invoked in order per channel.
//! - [`hash`]: the project hash in topics and WebSocket URLs.
//!
//! The WebSocket bridge itself lives in `server::websocket`; it subscribes each
//! connection here like any other subscriber.

pub mod broker;
pub mod functions;
pub mod hash;
pub mod nats;
pub mod scope;

use broker::{Broker, PublishError, Reach, SinkId};
use bytes::Bytes;
use scope::{AccessError, Scopes};
use std::sync::Arc;
use tokio_tungstenite::tungstenite::protocol::frame::Utf8Bytes;
use tokio_tungstenite::tungstenite::Message as Frame;

pub use functions::Deployment;

/// One published message, shared (never copied) by all its subscribers.
#[derive(Debug)]
pub struct Message {
    pub channel: Arc<str>,
    pub payload: Bytes,
    /// The WebSocket frame, built once: text if the payload is text, else binary.
    pub frame: Frame,
    /// The publisher, which does not receive its own message.
    pub origin: Option<SinkId>,
}

impl Message {
    /// A message on `channel`. `text` says whether a WebSocket client sent a text
    /// frame; `None` (a function or HTTP publish) means text when the bytes are
    /// UTF-8, binary otherwise.
    pub fn new(
        channel: impl Into<Arc<str>>,
        payload: Bytes,
        text: Option<bool>,
        origin: Option<SinkId>,
    ) -> Self {
        let frame = match text {
            Some(false) => Frame::Binary(payload.clone()),
            _ => match Utf8Bytes::try_from(payload.clone()) {
                Ok(text) => Frame::Text(text),
                Err(_) => Frame::Binary(payload.clone()),
            },
        };
        Self {
            channel: channel.into(),
            payload,
            frame,
            origin,
        }
    }
}

/// Why a pub/sub call failed.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("message of {0} bytes is over the {1}-byte limit")]
    TooLarge(usize, usize),
}

/// The messaging side of a running project: access rules, the broker, and the
/// functions subscribed to channels.
pub struct Hub {
    pub scopes: Scopes,
    /// The largest message anyone may publish, in bytes.
    pub max_message: usize,
    pub broker: Arc<dyn Broker>,
    deployment: Arc<Deployment>,
    subscriptions: functions::Subscriptions,
}

impl Hub {
    pub fn new(
        scopes: Scopes,
        broker: Arc<dyn Broker>,
        deployment: Arc<Deployment>,
        max_message: usize,
    ) -> Arc<Self> {
        Arc::new(Self {
            scopes,
            max_message,
            broker,
            deployment,
            subscriptions: functions::Subscriptions::default(),
        })
    }

    pub fn deployment(&self) -> &Arc<Deployment> {
        &self.deployment
    }

    /// Publishes `payload` on `channel` as seen from `scope`.
    pub fn publish(
        &self,
        scope: usize,
        channel: &str,
        payload: Bytes,
        text: Option<bool>,
        origin: Option<SinkId>,
    ) -> Result<(), MessagingError> {
        let scope = self.scopes.get(scope);
        scope.check(channel, false)?;
        if payload.len() > self.max_message {
            return Err(MessagingError::TooLarge(payload.len(), self.max_message));
        }
        let message = Arc::new(Message::new(channel, payload, text, origin));
        self.broker
            .publish(&scope.topic(channel), message, scope.reach(channel))?;
        Ok(())
    }

    /// The WebSocket path for `channel`, if its resource enables the bridge.
    pub fn websocket_path(&self, scope: usize, channel: &str) -> Result<String, MessagingError> {
        let scope = self.scopes.get(scope);
        scope.check(channel, true)?;
        Ok(scope.websocket_path(channel))
    }

    /// Subscribes function `function` to `channel` in its own scope. Idempotent:
    /// a function is called once per message however often it subscribes.
    /// `Reach::Node` (a trigger marked `local: true`) takes only this node's
    /// messages; so does any subscription to a channel marked `local: true`.
    pub fn subscribe_function(
        self: &Arc<Self>,
        function: usize,
        channel: &str,
        reach: Reach,
    ) -> Result<(), MessagingError> {
        let scope_index = self.deployment.scope_of(function);
        let scope = self.scopes.get(scope_index);
        scope.check(channel, false)?;
        let topic = scope.topic(channel);
        let reach = match scope.reach(channel) {
            Reach::Node => Reach::Node,
            Reach::Cluster => reach,
        };
        self.subscriptions.subscribe(self, function, topic, reach);
        Ok(())
    }
}
