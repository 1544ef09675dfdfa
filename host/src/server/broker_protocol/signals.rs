//! What reaches a socket beside its channels' messages: private messages to its user
//! (`PUBLISH:@<user>:`), typing indicators (`USER_TYPING:`) and presence events (`JOIN:`,
//! `LEAVE:`). None is ever kept: they are live or lost.
//!
//! Private messages and typing indicators travel through the broker on topics of their own
//! (see `Scope::user_topic` and `Scope::typing_topic`), so they reach every node; their
//! payload is the protocol line itself, made once by the sender's node.

use super::command::encode_channel;
use super::outbox::Outbox;
use crate::messaging::broker::{Reach, Sink, SinkId};
use crate::messaging::presence::{Event, Watcher};
use crate::messaging::Message;
use crate::server::App;
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::{Message as Frame, Utf8Bytes};

/// Typing indicators forwarded per channel and socket: one an interval, the rest dropped.
pub const TYPING_INTERVAL: Duration = Duration::from_secs(1);

/// A subscriber that hands its messages to the socket as they are: they are lines already.
pub(super) struct Lines {
    pub(super) id: u64,
    pub(super) outbox: Arc<Outbox>,
}

impl Sink for Lines {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        self.outbox
            .push(line(message.payload.clone(), message.text));
    }
}

/// A frame of `payload` (shared, not copied): text if it is and may be.
fn line(payload: Bytes, text: bool) -> Frame {
    if !text {
        return Frame::Binary(payload);
    }
    match Utf8Bytes::try_from(payload.clone()) {
        Ok(text) => Frame::Text(text),
        Err(_) => Frame::Binary(payload),
    }
}

/// A socket's private messages: subscribed to its user's topic while it lives.
pub(super) struct Inbox<'a> {
    app: &'a App,
    topic: String,
    id: u64,
}

impl<'a> Inbox<'a> {
    pub(super) fn open(app: &'a App, scope: usize, user: &str, outbox: &Arc<Outbox>) -> Self {
        let topic = app.hub().scopes.get(scope).user_topic(user);
        let lines = Arc::new(Lines {
            id: crate::server::feed::next_id(),
            outbox: outbox.clone(),
        });
        let id = lines.id;
        app.hub().broker.subscribe(&topic, lines, Reach::Cluster);
        Self { app, topic, id }
    }
}

impl Drop for Inbox<'_> {
    fn drop(&mut self) {
        self.app
            .hub()
            .broker
            .unsubscribe(&self.topic, SinkId::Socket(self.id));
    }
}

/// Sends `content` from `from` to every socket signed in as `to`, on any node, as
/// `MSG:@<from>:<content>`. Nobody signed in as `to`: nobody gets it, and the sender is not
/// told (the broker knows subscribers, not who is away).
pub(super) fn send_private(
    app: &App,
    scope: usize,
    from: &str,
    to: &str,
    content: &[u8],
    text: bool,
) -> Result<(), String> {
    let hub = &app.hub();
    if content.len() > hub.max_message {
        return Err(format!(
            "a message of {} bytes; at most {}",
            content.len(),
            hub.max_message
        ));
    }
    let prefix = format!("MSG:@{}:", encode_channel(from));
    let mut payload = Vec::with_capacity(prefix.len() + content.len());
    payload.extend_from_slice(prefix.as_bytes());
    payload.extend_from_slice(content);
    let text = text && std::str::from_utf8(content).is_ok();
    let message = Message::new(to, payload.into(), Some(text), None);
    let topic = hub.scopes.get(scope).user_topic(to);
    hub.broker
        .publish(&topic, Arc::new(message), Reach::Cluster)
        .map_err(|e| e.to_string())
}

/// A socket's typing indicators on one channel: whether the next may go yet.
#[derive(Default)]
pub(super) struct Typing {
    last: Option<Instant>,
}

impl Typing {
    /// Tells the channel's other subscribers that `who` is typing, at most once per
    /// [`TYPING_INTERVAL`]; `origin` (the socket's subscription) does not get it.
    pub(super) fn send(
        &mut self,
        app: &App,
        to: (&str, Reach),
        channel: &str,
        who: &str,
        origin: u64,
    ) {
        let now = Instant::now();
        if self
            .last
            .is_some_and(|last| now.duration_since(last) < TYPING_INTERVAL)
        {
            return;
        }
        self.last = Some(now);
        let line = format!("USER_TYPING:{}:{who}", encode_channel(channel));
        let message = Message::new(
            channel,
            line.into(),
            Some(true),
            Some(SinkId::Socket(origin)),
        );
        let (topic, reach) = to;
        if let Err(error) = app.hub().broker.publish(topic, Arc::new(message), reach) {
            tracing::debug!(%error, "typing indicator not sent");
        }
    }
}

/// A presence watcher that writes `JOIN:<channel>:<who>` and `LEAVE:<channel>:<who>`.
pub(super) fn presence_lines(channel: &str, outbox: &Arc<Outbox>) -> Watcher {
    let channel = encode_channel(channel);
    let outbox = outbox.clone();
    Arc::new(move |event, who: &str| {
        let verb = match event {
            Event::Join => "JOIN",
            Event::Leave => "LEAVE",
        };
        outbox.push(Frame::Text(format!("{verb}:{channel}:{who}").into()));
    })
}
