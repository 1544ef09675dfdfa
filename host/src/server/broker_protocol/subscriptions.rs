//! A socket's channel subscriptions: each formats its channel's messages as `MSG` lines
//! into the socket's outbox, after the channel's kept ones.

use super::auth::Auth;
use super::command::{delivery, encode_channel, shown};
use super::outbox::Outbox;
use super::signals::{presence_lines, Lines, Typing};
use super::MAX_CHANNELS;
use crate::messaging::broker::{Reach, Sink, SinkId};
use crate::messaging::presence::Present;
use crate::messaging::Message;
use crate::server::App;
use crate::state::{LogEntry, Range};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio_tungstenite::tungstenite::Message as Frame;

/// One channel subscription of one socket: formats the channel's messages as `MSG`
/// lines into the socket's outbox.
pub(super) struct Subscription {
    id: u64,
    /// `MSG:<channel>:`
    prefix: String,
    outbox: Arc<Outbox>,
    /// While its kept messages are read (cluster mode): the live ones that came meanwhile,
    /// at most [`MAX_HELD`] (past it, the rest are dropped and the client told).
    held: Mutex<Option<VecDeque<Arc<Message>>>>,
}

/// Live messages a subscription holds while its kept ones are read, at most.
pub const MAX_HELD: usize = 10_000;

impl Sink for Subscription {
    fn id(&self) -> SinkId {
        SinkId::Socket(self.id)
    }

    fn deliver(&self, message: &Arc<Message>) {
        message.count_delivery(1);
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        match held.as_mut() {
            Some(held) if held.len() < MAX_HELD => held.push_back(message.clone()),
            // Told when released (see `release`).
            Some(_) => {}
            None => self
                .outbox
                .push(delivery(&self.prefix, &message.payload, message.text)),
        }
    }
}

impl Subscription {
    fn replay(&self, entry: &LogEntry) {
        self.outbox
            .push(delivery(&self.prefix, &entry.data, entry.text));
    }

    /// Holds live messages from now until [`Self::release`].
    fn hold(&self) {
        *self.held.lock().unwrap_or_else(|p| p.into_inner()) = Some(VecDeque::new());
    }

    /// Sends what was held, but for the messages up to offset `replayed` (which the
    /// replay had), and goes live.
    fn release(&self, replayed: Option<u64>) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let Some(messages) = held.take() else {
            return;
        };
        if messages.len() >= MAX_HELD {
            self.outbox.push(Frame::Text(
                format!("ERROR:live messages were dropped while {MAX_HELD} waited for the channel's history").into(),
            ));
        }
        for message in messages {
            let offset = message.kept.as_ref().map(|kept| kept.offset);
            if offset
                .zip(replayed)
                .is_some_and(|(offset, upto)| offset <= upto)
            {
                continue;
            }
            self.outbox
                .push(delivery(&self.prefix, &message.payload, message.text));
        }
    }
}

/// A socket's subscriptions, by channel; all left when dropped, even on a panic.
pub(super) struct Subscriptions<'a> {
    pub(super) app: &'a App,
    pub(super) scope: usize,
    pub(super) outbox: Arc<Outbox>,
    /// The socket's own number: its anonymous name on presence channels.
    pub(super) socket: u64,
    pub(super) channels: HashMap<String, Subscribed>,
}

/// One channel a socket is subscribed to.
pub(super) struct Subscribed {
    topic: String,
    /// The subscription's id, in the channel's topic, its typing topic and its presence.
    id: u64,
    typing_topic: String,
    typing: Typing,
    /// Counts the socket among the channel's members (`wisp.presence`).
    present: Option<Present>,
}

impl Subscriptions<'_> {
    /// Who the socket is on its channels: its user, else its anonymous name.
    fn who(&self, auth: &Auth) -> String {
        match auth.user() {
            Some(user) => user.to_owned(),
            None => self.app.hub().presence.anonymous(self.socket),
        }
    }

    /// Tells the channel's other subscribers that the socket is typing (see `Typing`).
    pub(super) fn typing(&mut self, channel: &str, auth: &Auth) -> Result<(), String> {
        let who = self.who(auth);
        let Some(subscribed) = self.channels.get_mut(channel) else {
            return Err(format!(
                "not subscribed to `{}`: SUBSCRIBE to a channel before typing in it",
                shown(channel.as_bytes())
            ));
        };
        let reach = self.app.hub().scopes.get(self.scope).reach(channel);
        let to = (subscribed.typing_topic.as_str(), reach);
        subscribed
            .typing
            .send(self.app, to, channel, &who, subscribed.id);
        Ok(())
    }

    /// Subscribes to `channel` after queueing its kept messages.
    pub(super) async fn subscribe(
        &mut self,
        channel: String,
        auth: &mut Auth,
    ) -> Result<(), String> {
        if self.channels.contains_key(&channel) {
            return Ok(());
        }
        if self.channels.len() >= MAX_CHANNELS {
            return Err(format!(
                "a socket may subscribe to at most {MAX_CHANNELS} channels; UNSUBSCRIBE from one first"
            ));
        }
        super::open(self.app, self.scope, auth, &channel, false)?;
        let hub = self.app.hub();
        let scope = hub.scopes.get(self.scope);
        let topic = scope.topic(&channel);
        let subscription = Arc::new(Subscription {
            id: crate::server::feed::next_id(),
            prefix: format!("MSG:{}:", encode_channel(&channel)),
            outbox: self.outbox.clone(),
            held: Mutex::new(None),
        });
        let id = subscription.id;
        let broker = &hub.broker;
        let history = &hub.history;
        let reach = scope.reach(&channel);
        match scope.history(&channel) {
            None => broker.subscribe(&topic, subscription, reach),
            // Cluster mode: one log for every node. Subscribed first, holding the live
            // messages, then the kept ones read; the held ones the read had are dropped by
            // their offset (every node's messages carry it).
            Some(kept) if !history.immediate() && reach == Reach::Cluster => {
                let log = history.space(&topic, kept);
                subscription.hold();
                broker.subscribe(&topic, subscription.clone(), reach);
                let read = history.read_later(&log, Range::Last(kept.size)).await;
                let replayed = match read {
                    Ok(read) => {
                        read.entries.iter().for_each(|e| subscription.replay(e));
                        read.entries.last().map(|e| e.offset)
                    }
                    Err(error) => {
                        tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read; the client gets live messages only");
                        None
                    }
                };
                subscription.release(replayed);
            }
            Some(kept) => {
                // Read and subscribed under the lock every publish on the channel takes,
                // so that the kept and the live messages meet without a gap or a repeat.
                let log = history.space(&topic, kept);
                let _order = history.lock(&topic);
                match history.read(&log, Range::Last(kept.size)) {
                    Ok(read) => read.entries.iter().for_each(|e| subscription.replay(e)),
                    Err(error) => {
                        tracing::warn!(topic = %topic.escape_debug(), %error, "channel history could not be read; the client gets live messages only");
                    }
                }
                broker.subscribe(&topic, subscription, reach);
            }
        }
        let typing_topic = scope.typing_topic(&channel);
        let lines = Arc::new(Lines {
            id,
            outbox: self.outbox.clone(),
        });
        broker.subscribe(&typing_topic, lines, reach);
        // Watched before entering, so that the socket is told of its own join too.
        let present = scope.presence(&channel).then(|| {
            let presence = &self.app.hub().presence;
            presence.watch(&topic, id, presence_lines(&channel, &self.outbox));
            presence.enter(&topic, id, &self.who(auth))
        });
        let subscribed = Subscribed {
            topic,
            id,
            typing_topic,
            typing: Typing::default(),
            present,
        };
        self.channels.insert(channel, subscribed);
        Ok(())
    }

    pub(super) fn unsubscribe(&mut self, channel: &str) -> Result<(), String> {
        let Some(subscribed) = self.channels.remove(channel) else {
            return Err(format!("not subscribed to `{}`", shown(channel.as_bytes())));
        };
        self.leave(subscribed);
        Ok(())
    }

    fn leave(&self, subscribed: Subscribed) {
        let (hub, id) = (&self.app.hub(), SinkId::Socket(subscribed.id));
        hub.broker.unsubscribe(&subscribed.topic, id);
        hub.broker.unsubscribe(&subscribed.typing_topic, id);
        if subscribed.present.is_some() {
            hub.presence.unwatch(&subscribed.topic, subscribed.id);
        }
    }
}

impl Drop for Subscriptions<'_> {
    fn drop(&mut self) {
        for (_, subscribed) in std::mem::take(&mut self.channels) {
            self.leave(subscribed);
        }
    }
}
