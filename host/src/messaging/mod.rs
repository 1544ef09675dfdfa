//! Channels, pub/sub and who may use them.
//!
//! # Layout
//! - [`broker`]: the [`Broker`](broker::Broker) seam and the in-process broker.
//! - [`nats`]: the cluster broker: nodes share channels through NATS.
//! - [`scope`]: messaging resources → which channels are allowed, topics, URLs.
//! - [`functions`]: pub/sub functions as subscribers, invoked in order per channel;
//!   the bound on the subscriptions guests make, and their idle drop.
//!
//! [`Hub`] is what guests' pub/sub calls reach: it implements the ABI's
//! [`Channels`] seam.
//! - [`hash`]: the project hash in topics and WebSocket URLs.
//! - [`history`]: channels' kept messages (`wisp.history`), in step with delivery.
//!
//! The WebSocket bridge itself lives in `server::websocket`; it subscribes each
//! connection here like any other subscriber.

pub mod broker;
pub mod functions;
pub mod hash;
pub mod history;
pub mod nats;
pub mod presence;
pub mod scope;
pub mod token;

use crate::abi::channels::{Channels, Refusal};
use crate::runtime::deployment::Deployment;
use crate::state::{LogMessage, LogRead, Range};
use broker::{Broker, PublishError, Reach, SinkId};
use bytes::Bytes;
use scope::{AccessError, Scopes};
use std::sync::Arc;

/// One published message, shared (never copied) by all its subscribers.
#[derive(Debug)]
pub struct Message {
    pub channel: Arc<str>,
    /// The bytes published: a view into `wire`, so a message is held once.
    pub payload: Bytes,
    /// Whether WebSocket clients get it as a text frame (else binary).
    pub text: bool,
    /// The WebSocket frame as it goes on the wire to every client, encoded once.
    /// (Server frames are unmasked, so every client gets the same bytes.)
    pub wire: Bytes,
    /// The publisher, which does not receive its own message.
    pub origin: Option<SinkId>,
    /// Where the channel's history keeps it, if it does.
    pub kept: Option<Kept>,
    /// The frame enveloped clients get, made on first use.
    envelope: std::sync::OnceLock<Bytes>,
    /// The messaging resource it was published under, when metrics are kept.
    pub resource: Option<Arc<str>>,
}

/// A message's place in its channel's history.
#[derive(Debug, Clone)]
pub struct Kept {
    pub offset: u64,
    pub epoch: Arc<str>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: u64,
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
        let text = match text {
            Some(false) => false,
            _ => std::str::from_utf8(&payload).is_ok(),
        };
        let wire = server_frame(text, &payload);
        Self {
            channel: channel.into(),
            payload: wire.slice(wire.len() - payload.len()..),
            wire,
            text,
            origin,
            kept: None,
            envelope: std::sync::OnceLock::new(),
            resource: None,
        }
    }

    /// Counts this message's delivery to `count` subscribers, if metrics are kept.
    #[inline]
    pub fn count_delivery(&self, count: u64) {
        if let (Some(metrics), Some(resource)) = (crate::metrics::get(), &self.resource) {
            metrics.delivered(resource, count);
        }
    }

    /// The message in a JSON envelope, as a text frame (see [`envelope_frame`]); made once
    /// however many clients get it.
    pub fn envelope(&self) -> &Bytes {
        self.envelope.get_or_init(|| {
            let (offset, epoch, time_ms) = match &self.kept {
                Some(kept) => (Some(kept.offset), Some(&*kept.epoch), kept.time_ms),
                None => (None, None, history::now_ms()),
            };
            envelope_frame(
                &self.channel,
                offset,
                epoch,
                time_ms,
                self.text,
                &self.payload,
            )
        })
    }
}

/// A message as enveloped WebSocket clients get it, a text frame of
/// `{"channel","offset","epoch","time","data","binary"}`: `offset` and `epoch` are its place
/// in the channel's history (`null` when the channel keeps none), `time` milliseconds since
/// the Unix epoch, `data` the text, or the bytes in base64 with `"binary": true`.
pub fn envelope_frame(
    channel: &str,
    offset: Option<u64>,
    epoch: Option<&str>,
    time_ms: u64,
    text: bool,
    data: &[u8],
) -> Bytes {
    use base64::Engine;
    let (data, binary) = match (text, std::str::from_utf8(data)) {
        (true, Ok(text)) => (serde_json::Value::from(text), false),
        _ => (
            base64::engine::general_purpose::STANDARD
                .encode(data)
                .into(),
            true,
        ),
    };
    let json = serde_json::json!({
        "channel": channel,
        "offset": offset,
        "epoch": epoch,
        "time": time_ms,
        "data": data,
        "binary": binary,
    });
    server_frame(true, json.to_string().as_bytes())
}

/// A whole, unfragmented server-to-client WebSocket frame (RFC 6455, section 5.2).
fn server_frame(text: bool, payload: &[u8]) -> Bytes {
    const FIN: u8 = 0x80;
    let opcode = if text { 0x1 } else { 0x2 };
    let mut frame = Vec::with_capacity(payload.len() + 10);
    frame.push(FIN | opcode);
    match payload.len() {
        len @ 0..=125 => frame.push(len as u8),
        len @ 126..=0xFFFF => {
            frame.push(126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(payload);
    frame.into()
}

/// Counts `messages` as published under `channel`'s resource, and marks them with it
/// for their deliveries to be counted, if metrics are kept.
fn count_published(scope: &scope::Scope, channel: &str, messages: &mut [Message]) {
    let Some(metrics) = crate::metrics::get() else {
        return;
    };
    let Some(resource) = scope.resource_of(channel) else {
        return;
    };
    metrics.published(resource, messages.len() as u64);
    for message in messages {
        message.resource = Some(resource.clone());
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
    #[error(transparent)]
    TooManySubscriptions(#[from] functions::TooManySubscriptions),
    #[error(
        "the channel's history is behind ({0} batches wait to be kept); not published, try again"
    )]
    HistoryBehind(usize),
}

/// The messaging side of a running project: access rules, the broker, and the
/// functions subscribed to channels.
pub struct Hub {
    pub scopes: Scopes,
    /// The largest message anyone may publish, in bytes.
    pub max_message: usize,
    pub broker: Arc<dyn Broker>,
    /// The kept messages of channels with `wisp.history`.
    pub history: Arc<history::Histories>,
    /// The key of private channels' tokens.
    pub tokens: token::Tokens,
    /// Who is on channels with `wisp.presence`.
    pub presence: Arc<presence::Presence>,
    deployment: Arc<Deployment>,
    subscriptions: functions::Subscriptions,
    /// The hub itself, for the subscription workers it starts.
    me: std::sync::Weak<Hub>,
}

impl Hub {
    pub fn new(
        scopes: Scopes,
        broker: Arc<dyn Broker>,
        deployment: Arc<Deployment>,
        max_message: usize,
        subscriptions: functions::SubscriptionLimits,
        history: history::Histories,
        tokens: token::Tokens,
    ) -> Arc<Self> {
        let presence = presence::Presence::start(broker.clone(), &scopes.get(0).hash);
        Arc::new_cyclic(|me| Self {
            presence,
            scopes,
            max_message,
            broker,
            history: Arc::new(history),
            tokens,
            deployment,
            subscriptions: functions::Subscriptions::new(subscriptions),
            me: me.clone(),
        })
    }

    /// A hub for a new deployment of the same project (a reload): its own resources and
    /// functions, this one's broker, history, tokens and presence. It subscribes nothing
    /// yet; [`Self::take_over`] hands this hub's subscriptions to it.
    pub fn successor(&self, scopes: Scopes, deployment: Arc<Deployment>) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            presence: self.presence.clone(),
            scopes,
            max_message: self.max_message,
            broker: self.broker.clone(),
            history: self.history.clone(),
            tokens: self.tokens.clone(),
            deployment,
            subscriptions: functions::Subscriptions::new(self.subscriptions.limits()),
            me: me.clone(),
        })
    }

    /// Once `self` (a [`Self::successor`]) has subscribed its triggers: takes over the
    /// subscriptions `old` made itself (`Subscribe()`), for the functions still there by
    /// name and channels still allowed, and unsubscribes what is left of `old`'s. Each
    /// subscription `self` also has was replaced in the broker at once (see
    /// [`Broker::replace`]), so its channel lost no message; `old`'s workers finish the
    /// messages they hold on the old code.
    pub fn take_over(&self, old: &Hub) {
        let held = old.subscriptions.retire();
        for (function, topic, made) in &held {
            if *made != functions::Made::ByGuest {
                continue;
            }
            let name = &old.deployment.functions[*function].name;
            let Some(now) = self
                .deployment
                .functions
                .iter()
                .position(|f| &f.name == name)
            else {
                continue;
            };
            let channel = topic.split_once('/').map_or(topic.as_str(), |(_, c)| c);
            if let Err(error) = self.subscribe_as(now, channel, Reach::Cluster, *made) {
                tracing::info!(function = %name, channel = %channel.escape_debug(), %error,
                    "a subscription the function made is not kept after the reload");
            }
        }
        let kept = self.subscriptions.keys();
        for (function, topic, _) in held {
            if !kept.contains(&(function, topic.clone())) {
                self.broker.unsubscribe(&topic, SinkId::Function(function));
            }
        }
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
        self.publish_all(scope, channel, vec![(payload, text)], origin)
    }

    /// Publishes `messages` (payload, and whether text) on `channel`, in order, as
    /// [`Self::publish`] one by one would; on a channel that keeps history they are kept in
    /// one step (one SQLite transaction), which is what lets a client that sends many
    /// frames at once publish them at the rate the broker delivers. A message over the size
    /// bound refuses the call before any is published.
    pub fn publish_all(
        &self,
        scope: usize,
        channel: &str,
        messages: Vec<(Bytes, Option<bool>)>,
        origin: Option<SinkId>,
    ) -> Result<(), MessagingError> {
        let scope = self.admit(scope, channel, messages.iter().map(|(p, _)| p.len()))?;
        let mut messages: Vec<Message> = messages
            .into_iter()
            .map(|(payload, text)| Message::new(channel, payload, text, origin))
            .collect();
        count_published(scope, channel, &mut messages);
        let topic = scope.topic(channel);
        let reach = scope.reach(channel);
        // In cluster mode a channel marked `local` keeps no history: its log would be the
        // cluster's, and its messages are this node's.
        let kept = scope
            .history(channel)
            .filter(|_| self.history.immediate() || reach == Reach::Cluster);
        let Some(kept) = kept else {
            for message in messages {
                self.broker.publish(&topic, Arc::new(message), reach)?;
            }
            return Ok(());
        };
        let log = self.history.space(&topic, kept);
        if !self.history.immediate() {
            // Kept by the writer, then published; sockets follow the log (see `history`).
            let batch = history::Batch {
                topic,
                log,
                reach,
                messages,
                broker: self.broker.clone(),
            };
            return self
                .history
                .keep_then_publish(batch)
                .map_err(MessagingError::HistoryBehind);
        }
        // Kept and delivered in one step, so that a client replaying the log and joining
        // the channel sees each message once (see `history`).
        let time_ms = history::now_ms();
        let _order = self.history.lock(&topic);
        let entries: Vec<LogMessage<'_>> = messages
            .iter()
            .map(|message| LogMessage {
                text: message.text,
                data: &message.payload,
                time_ms,
                origin: None,
            })
            .collect();
        match self.history.append(&log, &entries) {
            Ok(appended) => history::keep(&mut messages, appended, time_ms),
            // Delivered all the same: live clients lose nothing for it.
            Err(error) => self.history.not_kept(channel, &error),
        }
        for message in messages {
            self.broker.publish(&topic, Arc::new(message), reach)?;
        }
        Ok(())
    }

    /// Publishes `payload` on `channel` live only: delivered as [`Self::publish`] delivers,
    /// but never kept in the channel's history (typing indicators, cursors: what is stale a
    /// moment later). In cluster mode the WebSocket clients of a channel that keeps history
    /// follow its log, so they do not get it; functions and broker-protocol subscribers do.
    pub fn publish_ephemeral(
        &self,
        scope: usize,
        channel: &str,
        payload: Bytes,
        text: Option<bool>,
        origin: Option<SinkId>,
    ) -> Result<(), MessagingError> {
        let scope = self.admit(scope, channel, std::iter::once(payload.len()))?;
        let mut message = Message::new(channel, payload, text, origin);
        count_published(scope, channel, std::slice::from_mut(&mut message));
        let (topic, reach) = (scope.topic(channel), scope.reach(channel));
        Ok(self.broker.publish(&topic, Arc::new(message), reach)?)
    }

    /// The scope `scope`, if messages of `sizes` may be published on `channel` there.
    fn admit(
        &self,
        scope: usize,
        channel: &str,
        mut sizes: impl Iterator<Item = usize>,
    ) -> Result<&scope::Scope, MessagingError> {
        let scope = self.scopes.get(scope);
        scope.check(channel, false)?;
        match sizes.find(|size| *size > self.max_message) {
            Some(size) => Err(MessagingError::TooLarge(size, self.max_message)),
            None => Ok(scope),
        }
    }

    /// The WebSocket path for `channel`, if its resource enables the bridge; for a private
    /// channel with an anonymous token that may publish, lasting [`token::DEFAULT_TTL`].
    pub fn websocket_path(&self, scope: usize, channel: &str) -> Result<String, MessagingError> {
        let scope = self.scopes.get(scope);
        scope.check(channel, true)?;
        let path = scope.websocket_path(channel);
        if !scope.private(channel) {
            return Ok(path);
        }
        let (ttl, now) = (token::DEFAULT_TTL, token::now_secs());
        let token = self.tokens.issue(&scope.hash, channel, "", ttl, true, now);
        Ok(format!("{path}?token={token}"))
    }

    /// Subscribes function `function` to `channel` in its own scope for its
    /// `trigger.type: pubsub`: a subscription kept for as long as the project runs.
    /// Idempotent: a function is called once per message however often it
    /// subscribes. `Reach::Node` (a trigger marked `local: true`) takes only this
    /// node's messages; so does any subscription to a channel marked `local: true`.
    pub fn subscribe_function(
        &self,
        function: usize,
        channel: &str,
        reach: Reach,
    ) -> Result<(), MessagingError> {
        self.subscribe_as(function, channel, reach, functions::Made::ByTrigger)
    }

    /// Subscribes function `function` to the joins and leaves of `channel` (a trigger with
    /// `wisp.presence-events`; see `presence`), once in the cluster per event.
    pub fn subscribe_presence_events(
        &self,
        function: usize,
        channel: &str,
    ) -> Result<(), MessagingError> {
        let scope = self.scopes.get(self.deployment.scope_of(function));
        scope.check(channel, false)?;
        self.presence.want_events(&scope.topic(channel));
        let topic = scope.presence_events_topic(channel);
        let made = functions::Made::ByTrigger;
        self.subscriptions
            .subscribe(self, function, topic, Reach::Cluster, made)?;
        Ok(())
    }

    fn subscribe_as(
        &self,
        function: usize,
        channel: &str,
        reach: Reach,
        made: functions::Made,
    ) -> Result<(), MessagingError> {
        let scope_index = self.deployment.scope_of(function);
        let scope = self.scopes.get(scope_index);
        scope.check(channel, false)?;
        let topic = scope.topic(channel);
        let reach = match scope.reach(channel) {
            Reach::Node => Reach::Node,
            Reach::Cluster => reach,
        };
        self.subscriptions
            .subscribe(self, function, topic, reach, made)?;
        Ok(())
    }
}

/// The guest's side of the hub: what `taubyte/sdk`'s pub/sub calls reach.
impl Channels for Hub {
    fn publish(
        &self,
        function: usize,
        scope: usize,
        channel: &str,
        data: Bytes,
    ) -> Result<(), Refusal> {
        let origin = Some(SinkId::Function(function));
        Ok(Hub::publish(self, scope, channel, data, None, origin)?)
    }

    fn publish_ephemeral(
        &self,
        function: usize,
        scope: usize,
        channel: &str,
        data: Bytes,
    ) -> Result<(), Refusal> {
        let origin = Some(SinkId::Function(function));
        Ok(Hub::publish_ephemeral(
            self, scope, channel, data, None, origin,
        )?)
    }

    fn presence(&self, scope: usize, channel: &str) -> Result<Vec<(String, u32)>, Refusal> {
        let scope = self.scopes.get(scope);
        scope.check(channel, false)?;
        if !scope.presence(channel) {
            let refused = format!(
                "channel `{channel}` keeps no presence: give its messaging resource `wisp: {{presence: true}}`"
            );
            return Err(refused.into());
        }
        let members = self.presence.list(&scope.topic(channel));
        Ok(members
            .into_iter()
            .map(|m| (m.user, m.connections))
            .collect())
    }

    /// A guest's own `Subscribe()`: counted against its bound, dropped when idle
    /// (see [`functions::SubscriptionLimits`]).
    fn subscribe(&self, function: usize, channel: &str) -> Result<(), Refusal> {
        let made = functions::Made::ByGuest;
        Ok(self.subscribe_as(function, channel, Reach::Cluster, made)?)
    }

    fn websocket_path(&self, scope: usize, channel: &str) -> Result<String, Refusal> {
        Ok(Hub::websocket_path(self, scope, channel)?)
    }

    fn max_message(&self) -> usize {
        self.max_message
    }

    fn websocket_url_for(
        &self,
        scope: usize,
        channel: &str,
        user: &str,
        ttl: std::time::Duration,
        can_publish: bool,
    ) -> Result<String, Refusal> {
        let scope = self.scopes.get(scope);
        scope.check(channel, true).map_err(MessagingError::from)?;
        let path = scope.websocket_path(channel);
        if !scope.private(channel) {
            return Ok(path);
        }
        if user.len() > token::MAX_USER {
            return Err(format!(
                "a user name of {} bytes; at most {}",
                user.len(),
                token::MAX_USER
            )
            .into());
        }
        if ttl.is_zero() || ttl > token::MAX_TTL {
            return Err(format!("a token lifetime of {ttl:?}; give 1 s to 30 days").into());
        }
        let token = self.tokens.issue(
            &scope.hash,
            channel,
            user,
            ttl,
            can_publish,
            token::now_secs(),
        );
        Ok(format!("{path}?token={token}"))
    }

    fn history<'a>(
        &'a self,
        scope: usize,
        channel: &'a str,
        range: Range,
    ) -> futures_util::future::BoxFuture<'a, Result<LogRead, Refusal>> {
        Box::pin(async move {
            let scope = self.scopes.get(scope);
            scope.check(channel, false)?;
            let kept = scope
                .history(channel)
                .ok_or_else(|| format!("channel `{channel}` keeps no history (`wisp.history`)"))?;
            let log = self.history.space(&scope.topic(channel), kept);
            let read = self.history.read_later(&log, range).await;
            read.map_err(|error| -> Refusal {
                Box::new(crate::state::StateError::Unavailable(error))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;

    /// The frame tungstenite would write for the same message.
    fn tungstenite_frame(text: bool, payload: &[u8]) -> Vec<u8> {
        let opcode = OpCode::Data(if text { Data::Text } else { Data::Binary });
        let mut out = Vec::new();
        Frame::message(payload.to_vec(), opcode, true)
            .format(&mut out)
            .unwrap();
        out
    }

    #[test]
    fn wire_frames_match_tungstenite_at_every_length_boundary() {
        for len in [0, 1, 125, 126, 127, 65_535, 65_536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let text = Message::new("c", payload.clone().into(), None, None);
            assert!(text.text);
            assert_eq!(text.payload[..], payload[..]);
            assert_eq!(
                text.wire[..],
                tungstenite_frame(true, &payload)[..],
                "{len}"
            );
            let binary = Message::new("c", payload.clone().into(), Some(false), None);
            assert!(!binary.text);
            assert_eq!(
                binary.wire[..],
                tungstenite_frame(false, &payload)[..],
                "{len}"
            );
        }
        let invalid = Message::new("c", Bytes::from_static(&[0xff, 0xfe]), None, None);
        assert!(!invalid.text, "bytes that are not UTF-8 go out as binary");
        assert_eq!(invalid.wire[0], 0x82);
    }
}
