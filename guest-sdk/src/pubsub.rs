//! Pub/sub: open channels, publish and subscribe, and read the messages that trigger functions.
//!
//! ```no_run
//! use wisp_sdk::{pubsub, Event, Result};
//!
//! #[wisp_sdk::function]
//! fn announce(event: Event) -> Result<()> {
//!     let http = event.http()?;
//!     let channel = pubsub::channel("news")?;
//!     channel.publish(b"hello everyone")?;
//!     let url = channel.web_socket().url()?;
//!     http.write(url.as_bytes())?;
//!     Ok(())
//! }
//! ```

use crate::error::{check, Error, Result};
use crate::fetch;
use crate::sys::safe;

/// Opens the channel `name`. Only an empty name is refused here; whether the project's messaging
/// allows the channel is checked when you publish, subscribe or ask for a WebSocket URL.
pub fn channel(name: &str) -> Result<Channel> {
    Channel::new(name.to_owned())
}

/// A pub/sub channel, by name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Channel {
    name: String,
}

impl Channel {
    fn new(name: String) -> Result<Self> {
        if name.is_empty() {
            return Err(Error::new("channel name cannot be empty"));
        }
        Ok(Channel { name })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Subscribes the calling function to this channel: it is then called with a pub/sub event for
    /// each message. Wisp already subscribes functions whose trigger is this channel; calling this
    /// again is harmless.
    pub fn subscribe(&self) -> Result<()> {
        check(safe::subscribe(&self.name), || {
            format!("subscribing to channel `{}`", self.name)
        })
    }

    /// Publishes `data` to every subscriber and WebSocket client of this channel.
    pub fn publish(&self, data: &[u8]) -> Result<()> {
        let code = safe::publish(&self.name, data);
        check(code, || match wisp_abi::Errno::from(code) {
            wisp_abi::Errno::PublishFailed => format!(
                "publishing to channel `{}` (refused: no messaging resource matches the channel, \
                 or the message is over the host's size limit; the host's log says which)",
                self.name
            ),
            _ => format!("publishing to channel `{}`", self.name),
        })
    }

    /// Publishes `data` live only: delivered as [`Self::publish`] delivers, but never kept in
    /// the channel's history (typing indicators, cursors: what is stale a moment later). A
    /// Wisp call (import module `wisp`): Taubyte has none.
    pub fn publish_ephemeral(&self, data: &[u8]) -> Result<()> {
        check(safe::publish_ephemeral(&self.name, data), || {
            format!("publishing an ephemeral message to channel `{}`", self.name)
        })
    }

    /// Who is on the channel now, on every node, the first 1,000 by name: its messaging resource must have
    /// `wisp: {presence: true}`. A member is a user named by the token its WebSocket came in
    /// with, or an anonymous connection (`anon-…`). A Wisp call (import module `wisp`).
    ///
    /// ```no_run
    /// # fn f() -> wisp_sdk::Result<()> {
    /// let room = wisp_sdk::pubsub::channel("private/lobby")?;
    /// for member in room.presence()? {
    ///     println!("{} ({} connections)", member.user, member.connections);
    /// }
    /// # Ok(()) }
    /// ```
    pub fn presence(&self) -> Result<Vec<Member>> {
        let raw = fetch::bytes(
            || format!("who is on channel `{}`", self.name),
            |size| safe::channel_presence_size(&self.name, size),
            safe::channel_presence,
        )?;
        Member::decode(&raw).ok_or_else(|| {
            Error::new(format!(
                "the members of channel `{}` are garbled",
                self.name
            ))
        })
    }

    /// This channel's WebSocket bridge.
    pub fn web_socket(&self) -> WebSocket<'_> {
        WebSocket { channel: self }
    }

    /// What the channel keeps of its messages, oldest first: its messaging resource must
    /// have `wisp: {history: ...}`. A Wisp call (import module `wisp`): Taubyte has none.
    ///
    /// ```no_run
    /// use wisp_sdk::pubsub::{self, Since};
    /// # fn f() -> wisp_sdk::Result<()> {
    /// let room = pubsub::channel("chat/lobby")?;
    /// let recent = room.history(Since::Last(50))?;
    /// for message in &recent.messages {
    ///     println!("{} at {}: {:?}", message.offset, message.time_ms, message.data);
    /// }
    /// // Later: only what came after.
    /// let newer = room.history(Since::Offset(recent.last_offset().unwrap_or(0)))?;
    /// # Ok(()) }
    /// ```
    pub fn history(&self, since: Since) -> Result<History> {
        let (last, offset) = match since {
            Since::Last(n) => (n.min(u32::MAX as usize) as u32, 0),
            Since::Offset(offset) => (0, offset),
        };
        let raw = fetch::bytes(
            || format!("the history of channel `{}`", self.name),
            |size| safe::channel_history_size(&self.name, last, offset, size),
            safe::channel_history,
        )?;
        History::decode(&raw)
            .ok_or_else(|| Error::new(format!("the history of channel `{}` is garbled", self.name)))
    }
}

/// One member of a channel, as [`Channel::presence`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user: String,
    /// Its WebSocket connections to the channel, on every node.
    pub connections: u32,
}

impl Member {
    /// Reads the host's encoding (see the host's `channelPresence`).
    fn decode(mut raw: &[u8]) -> Option<Vec<Self>> {
        fn u32_of(raw: &mut &[u8]) -> Option<u32> {
            let (head, rest) = raw.split_at_checked(4)?;
            *raw = rest;
            Some(u32::from_le_bytes(head.try_into().ok()?))
        }
        let count = u32_of(&mut raw)?;
        let mut members = Vec::with_capacity(count.min(1 << 16) as usize);
        for _ in 0..count {
            let connections = u32_of(&mut raw)?;
            let len = u32_of(&mut raw)? as usize;
            let (user, rest) = raw.split_at_checked(len)?;
            raw = rest;
            let user = String::from_utf8(user.to_vec()).ok()?;
            members.push(Self { user, connections });
        }
        raw.is_empty().then_some(members)
    }
}

/// Which kept messages [`Channel::history`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// The newest n.
    Last(usize),
    /// Every one after this offset (an offset of 0 reads them all).
    Offset(u64),
}

/// What a channel keeps of its messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    /// Changes when the channel's history is lost or reset: offsets of another epoch mean
    /// nothing now. Empty when nothing was ever kept.
    pub epoch: String,
    /// Oldest first.
    pub messages: Vec<KeptMessage>,
}

/// One kept message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptMessage {
    /// Its place in the channel, from 1, one more per message.
    pub offset: u64,
    /// When it was published, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Sent as text (else binary).
    pub text: bool,
    pub data: Vec<u8>,
}

impl History {
    /// The newest message's offset, to read on from.
    pub fn last_offset(&self) -> Option<u64> {
        self.messages.last().map(|m| m.offset)
    }

    /// Reads the host's encoding (see the host's `channelHistory`).
    fn decode(mut raw: &[u8]) -> Option<Self> {
        fn take<'a>(raw: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if raw.len() < n {
                return None;
            }
            let (head, rest) = raw.split_at(n);
            *raw = rest;
            Some(head)
        }
        fn u32_of(raw: &mut &[u8]) -> Option<u32> {
            Some(u32::from_le_bytes(take(raw, 4)?.try_into().ok()?))
        }
        fn u64_of(raw: &mut &[u8]) -> Option<u64> {
            Some(u64::from_le_bytes(take(raw, 8)?.try_into().ok()?))
        }
        let epoch_len = u32_of(&mut raw)? as usize;
        let epoch = String::from_utf8(take(&mut raw, epoch_len)?.to_vec()).ok()?;
        let count = u32_of(&mut raw)? as usize;
        let mut messages = Vec::with_capacity(count.min(raw.len() / 21));
        for _ in 0..count {
            let offset = u64_of(&mut raw)?;
            let time_ms = u64_of(&mut raw)?;
            let text = take(&mut raw, 1)?[0] == 1;
            let len = u32_of(&mut raw)? as usize;
            let data = take(&mut raw, len)?.to_vec();
            messages.push(KeptMessage {
                offset,
                time_ms,
                text,
                data,
            });
        }
        raw.is_empty().then_some(History { epoch, messages })
    }
}

/// The WebSocket bridge of a [`Channel`].
#[derive(Clone, Copy, Debug)]
pub struct WebSocket<'a> {
    channel: &'a Channel,
}

impl WebSocket<'_> {
    /// The path clients connect to, `ws-<project hash>/<channel>` (no scheme, host or leading
    /// `/`, as on Taubyte). Fails if the channel has no WebSocket bridge.
    pub fn url(&self) -> Result<String> {
        let name = &self.channel.name;
        fetch::string(
            || format!("websocket url of channel `{name}`"),
            |size| safe::web_socket_url_size(name, size),
            |buf| safe::web_socket_url(name, buf),
        )
    }

    /// The path for `user` on a private channel (`wisp: {private: true}`): its token names
    /// the user, lasts `ttl` (1 s to 30 days) and lets the holder publish if `can_publish`.
    /// On a channel that is not private, the plain path. A Wisp call Taubyte's host lacks.
    ///
    /// ```no_run
    /// # fn run() -> wisp_sdk::Result<()> {
    /// use std::time::Duration;
    /// let room = wisp_sdk::pubsub::channel("private/lobby")?;
    /// let url = room.web_socket().url_for("alice", Duration::from_secs(600), true)?;
    /// # Ok(()) }
    /// ```
    pub fn url_for(
        &self,
        user: &str,
        ttl: std::time::Duration,
        can_publish: bool,
    ) -> Result<String> {
        let name = &self.channel.name;
        let raw = fetch::bytes(
            || format!("websocket url of channel `{name}` for `{user}`"),
            |size| safe::web_socket_url_for_size(name, user, ttl.as_secs(), can_publish, size),
            safe::web_socket_url_for,
        )?;
        String::from_utf8(raw).map_err(|_| {
            Error::new(format!(
                "the websocket url of channel `{name}` is not UTF-8"
            ))
        })
    }
}

/// A message on a pub/sub channel, as a function trigger.
///
/// ```no_run
/// use wisp_sdk::{log, Event, Result};
///
/// #[wisp_sdk::function]
/// fn on_message(event: Event) -> Result<()> {
///     let message = event.pubsub()?;
///     let data = message.data()?;
///     log(&format!("{} bytes on {}", data.len(), message.channel()?.name()));
///     Ok(())
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PubSubEvent {
    id: u32,
}

impl PubSubEvent {
    pub(crate) fn from_id(id: u32) -> Self {
        PubSubEvent { id }
    }

    /// The event id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The published bytes.
    pub fn data(&self) -> Result<Vec<u8>> {
        fetch::bytes(
            || "message data".into(),
            |size| safe::message_data_size(self.id, size),
            |buf| safe::message_data(self.id, buf),
        )
    }

    /// The channel the message came on.
    pub fn channel(&self) -> Result<Channel> {
        let name = fetch::string(
            || "message channel".into(),
            |size| safe::message_channel_size(self.id, size),
            |buf| safe::message_channel(self.id, buf),
        )?;
        Channel::new(name)
    }
}

#[cfg(test)]
mod history_tests {
    use super::*;

    #[test]
    fn decodes_the_host_encoding_and_refuses_garbage() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&2u32.to_le_bytes());
        raw.extend_from_slice(b"ep");
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.extend_from_slice(&7u64.to_le_bytes());
        raw.extend_from_slice(&99u64.to_le_bytes());
        raw.push(1);
        raw.extend_from_slice(&2u32.to_le_bytes());
        raw.extend_from_slice(b"hi");
        let history = History::decode(&raw).unwrap();
        assert_eq!(history.epoch, "ep");
        assert_eq!(history.last_offset(), Some(7));
        assert_eq!(history.messages[0].data, b"hi");
        assert!(history.messages[0].text);
        assert!(
            History::decode(&raw[..raw.len() - 1]).is_none(),
            "cut short"
        );
        let mut longer = raw.clone();
        longer.push(0);
        assert!(History::decode(&longer).is_none(), "bytes left over");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_members_and_refuses_garbage() {
        let mut raw = 2u32.to_le_bytes().to_vec();
        for (user, n) in [("alice", 2u32), ("bob", 1)] {
            raw.extend_from_slice(&n.to_le_bytes());
            raw.extend_from_slice(&(user.len() as u32).to_le_bytes());
            raw.extend_from_slice(user.as_bytes());
        }
        let members = Member::decode(&raw).expect("decodes");
        assert_eq!(members[0].user, "alice");
        assert_eq!(members[0].connections, 2);
        assert_eq!(members[1].user, "bob");
        assert!(Member::decode(&raw[..raw.len() - 1]).is_none());
        assert!(Member::decode(&[raw.as_slice(), b"x"].concat()).is_none());
        assert!(Member::decode(&u32::MAX.to_le_bytes()).is_none());
    }

    #[test]
    fn channel_refuses_only_an_empty_name() {
        assert_eq!(
            channel("").unwrap_err().to_string(),
            "channel name cannot be empty"
        );
        assert_eq!(channel("/chat/room").unwrap().name(), "/chat/room");
    }

    #[test]
    fn calls_fail_outside_a_host() {
        let chan = channel("news").unwrap();
        assert_eq!(
            chan.publish(b"x").unwrap_err().to_string(),
            "publishing to channel `news`: event not found (errno 1)"
        );
        assert!(chan.subscribe().is_err());
        assert!(chan.web_socket().url().is_err());
    }
}
