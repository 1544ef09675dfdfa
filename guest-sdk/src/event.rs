//! The event a function is called with.

use crate::error::{Error, Result};
use crate::http::HttpEvent;
use crate::pubsub::PubSubEvent;
use crate::sys::safe;

/// What triggered a function call.
///
/// Convert with `as u32` to get Taubyte's numeric value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EventType {
    /// 0: not a known kind of event (also any value this SDK does not know).
    Undefined = 0,
    /// 1: an HTTP request.
    Http = 1,
    /// 2: a message on a pub/sub channel.
    PubSub = 2,
    /// 3: a peer-to-peer command.
    P2p = 3,
}

impl From<u32> for EventType {
    fn from(value: u32) -> Self {
        match value {
            1 => EventType::Http,
            2 => EventType::PubSub,
            3 => EventType::P2p,
            _ => EventType::Undefined,
        }
    }
}

/// The event a function is called with: a handle the host gave the guest.
///
/// Look at its [type](Event::event_type), or turn it into the event you expect with
/// [`http`](Event::http) or [`pubsub`](Event::pubsub).
///
/// ```no_run
/// use wisp_sdk::Event;
///
/// #[wisp_sdk::function]
/// fn hello(event: Event) -> wisp_sdk::Result<()> {
///     let http = event.http()?;
///     http.write(b"hello")?;
///     http.return_code(200)
/// }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    id: u32,
}

impl Event {
    /// Wraps the event id the host passed to the export. The `#[function]` macro does this for
    /// you.
    pub fn from_id(id: u32) -> Self {
        Event { id }
    }

    /// The event id.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// What kind of event this is.
    pub fn event_type(&self) -> EventType {
        EventType::from(safe::event_type(self.id))
    }

    /// This event as an HTTP request, or an error if it is not one.
    pub fn http(&self) -> Result<HttpEvent> {
        match self.event_type() {
            EventType::Http => Ok(HttpEvent::from_id(self.id)),
            _ => Err(Error::new("not an http event")),
        }
    }

    /// This event as a pub/sub message, or an error if it is not one.
    pub fn pubsub(&self) -> Result<PubSubEvent> {
        match self.event_type() {
            EventType::PubSub => Ok(PubSubEvent::from_id(self.id)),
            _ => Err(Error::new("not a pubsub event")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_type_values() {
        assert_eq!(EventType::from(0), EventType::Undefined);
        assert_eq!(EventType::from(1), EventType::Http);
        assert_eq!(EventType::from(2), EventType::PubSub);
        assert_eq!(EventType::from(3), EventType::P2p);
        assert_eq!(EventType::from(9), EventType::Undefined);
        assert_eq!(EventType::PubSub as u32, 2);
    }

    #[test]
    fn outside_a_host_there_is_no_event() {
        let event = Event::from_id(7);
        assert_eq!(event.id(), 7);
        assert_eq!(event.event_type(), EventType::Undefined);
        assert_eq!(event.http().unwrap_err().to_string(), "not an http event");
        assert_eq!(
            event.pubsub().unwrap_err().to_string(),
            "not a pubsub event"
        );
    }
}
