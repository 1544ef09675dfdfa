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
        check(safe::publish(&self.name, data), || {
            format!("publishing to channel `{}`", self.name)
        })
    }

    /// This channel's WebSocket bridge.
    pub fn web_socket(&self) -> WebSocket<'_> {
        WebSocket { channel: self }
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
mod tests {
    use super::*;

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
