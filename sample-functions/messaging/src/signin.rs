//! Signing in to the chat page's private rooms: a name and a room in, the room's WebSocket
//! URL out, carrying a token that names the user (a Wisp call, `url_for`).
//!
//! The rooms are channels `private/<room>` (`config/messaging/private_rooms.yaml`: private,
//! with history and presence), so a WebSocket client gets in only with such a URL; the
//! token also signs the user in on the broker protocol's socket, for private messages,
//! the online list and typing indicators. There are no passwords: this is a sample, and
//! whoever asks for a name gets it.

use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use wisp_sdk::{pubsub, Event, Result};

use crate::reply::{self, Failure, OrStatus};

/// How long a sign-in lasts: the token's lifetime.
const SIGN_IN_TTL: Duration = Duration::from_secs(24 * 3600);

/// The longest name or room.
const MAX_NAME: usize = 32;

/// The channel of private room `room`.
fn private_room_channel(room: &str) -> String {
    format!("private/{room}")
}

/// What the page posts.
#[derive(Debug, Deserialize)]
struct SignIn {
    #[serde(default)]
    name: String,
    #[serde(default)]
    room: String,
}

/// `POST` with `{"name":"alice","room":"general"}`: answers
/// `{"user":"alice","room":"general","channel":"private/general","url":"ws-<hash>/private/general?token=…"}`,
/// the URL's token naming `alice`, valid for a day and allowed to publish. A name or room
/// that is not 1 to 32 letters, digits, `-` or `_` (or a name starting with `anon-`, which
/// anonymous sockets are called) is a 400 saying so, as is a body that is not such JSON.
#[wisp_sdk::function(name = "chatSignIn")]
fn chat_sign_in(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let request: SignIn = serde_json::from_slice(&reply::body(http)?).or_status(400)?;
        let user = valid("name", request.name.trim())?;
        let room = valid("room", request.room.trim())?;
        if user.starts_with("anon-") {
            return Err(Failure::new(
                400,
                "a name may not start with `anon-`: anonymous connections are called that",
            ));
        }
        let channel_name = private_room_channel(room);
        let url = pubsub::channel(&channel_name)?
            .web_socket()
            .url_for(user, SIGN_IN_TTL, true)?;
        reply::write_json(
            http,
            &json!({
                "user": user,
                "room": room,
                "channel": channel_name,
                "url": url,
            }),
        )
    })
}

/// `value` if it is 1 to 32 of `[A-Za-z0-9_-]`, else a 400 naming `what`.
fn valid<'a>(what: &str, value: &'a str) -> std::result::Result<&'a str, Failure> {
    let ok = (1..=MAX_NAME).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(value)
    } else {
        Err(Failure::new(
            400,
            format!("the {what} must be 1 to {MAX_NAME} letters, digits, `-` or `_`"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::valid;

    #[test]
    fn names_are_short_plain_words() {
        for good in ["alice", "a", "Bob_2", "x-y", &"z".repeat(32)] {
            assert_eq!(valid("name", good).ok(), Some(good));
        }
        for bad in ["", "a b", "al:ce", "ünï", "a/b", "a%20", &"z".repeat(33)] {
            assert!(valid("name", bad).is_err(), "{bad:?}");
        }
    }
}
