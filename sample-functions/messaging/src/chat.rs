//! The guide's chat system: join a room (get its WebSocket URL), send a message to it, and
//! read the room's recent messages, which each send stores in the `chat` database.

use serde::{Deserialize, Serialize};
use serde_json::json;
use wisp_sdk::{database, pubsub, Event, Result};

use crate::reply::{self, required_query, OrStatus};
use crate::unix_time;

/// A message in a room, as sent by the browser (`user`, `text`) and published (with `timestamp`).
#[derive(Debug, Deserialize, Serialize)]
struct ChatMessage {
    #[serde(default)]
    user: String,
    #[serde(default)]
    text: String,
    #[serde(default)]
    timestamp: i64,
}

/// The database the messages are kept in (`config/databases/chat.yaml`).
const DATABASE: &str = "chat";

/// How many messages `GET /api/chat/history` answers: the room's newest.
const HISTORY: usize = 50;

/// `room` with `/` and `%` escaped, so that room `a` never lists the messages of `a/b`.
fn escaped(room: &str) -> String {
    room.replace('%', "%25").replace('/', "%2F")
}

/// The key prefix of room `room`'s messages.
fn room_prefix(room: &str) -> String {
    format!("m/{}/", escaped(room))
}

/// The key of the room's clock: the time of its newest message.
fn clock_key(room: &str) -> String {
    format!("t/{}", escaped(room))
}

/// The key of a message: the room's prefix, then its time (zero-padded, so keys sort by
/// time) and a hash of the message, so that two messages sent at once keep two keys.
fn message_key(room: &str, micros: u128, json: &[u8]) -> String {
    let hash = json.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("{}{micros:020}-{hash:016x}", room_prefix(room))
}

/// Stores `json` as room `room`'s newest message. The room's clock only moves forward, so
/// messages sent one after the other keep their order even within one clock tick.
fn keep(room: &str, json: &[u8]) -> Result<()> {
    let db = database::new(DATABASE)?;
    let clock = clock_key(room);
    let last = db
        .get(&clock)?
        .and_then(|t| String::from_utf8_lossy(&t).parse::<u128>().ok());
    let now = crate::unix_micros().max(last.map_or(0, |t| t + 1));
    db.put(&message_key(room, now, json), json)?;
    db.put(&clock, now.to_string().as_bytes())
}

/// The channel of room `room`.
fn room_channel(room: &str) -> String {
    format!("chat-room-{room}")
}

/// `GET ?room=<room>`: subscribes to `chat-room-<room>` and answers
/// `{"channel":..,"room":..,"websocket_url":..}`.
#[wisp_sdk::function(name = "createChatRoom")]
fn create_chat_room(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let room = required_query(http, "room")?;
        let channel_name = room_channel(&room);

        let channel = pubsub::channel(&channel_name)?;
        channel.subscribe()?;
        let url = channel.web_socket().url()?;

        reply::write_json(
            http,
            &json!({
                "room": room,
                "channel": channel_name,
                "websocket_url": url,
            }),
        )
    })
}

/// `POST ?room=<room>` with `{"user":..,"text":..}`: stamps the message with the time and
/// publishes `{"user":..,"text":..,"timestamp":..}` to `chat-room-<room>`. Answers
/// `Message sent`, or 400 with the parse error for a body that is not such JSON.
#[wisp_sdk::function(name = "sendChatMessage")]
fn send_chat_message(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let room = required_query(http, "room")?;
        let mut message: ChatMessage =
            serde_json::from_slice(&reply::body(http)?).or_status(400)?;
        message.timestamp = unix_time();

        let json = serde_json::to_vec(&message).or_status(500)?;
        pubsub::channel(&room_channel(&room))?.publish(&json)?;

        // Delivered either way; say so when it could not also be kept.
        match keep(&room, &json) {
            Ok(()) => http.write(b"Message sent")?,
            Err(error) => {
                wisp_sdk::log(&format!("chat history not kept: {error}"));
                http.write(b"Message sent (not kept in the history: it is full)")?
            }
        };
        Ok(())
    })
}

/// `GET ?room=<room>`: the room's newest messages (at most 50), oldest first, as a JSON
/// array of `{"user":..,"text":..,"timestamp":..}`.
#[wisp_sdk::function(name = "getChatHistory")]
fn get_chat_history(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let room = required_query(http, "room")?;
        let db = database::new(DATABASE)?;
        let keys = db.list(&room_prefix(&room))?;
        let newest = &keys[keys.len().saturating_sub(HISTORY)..];
        let mut messages = Vec::with_capacity(newest.len());
        for key in newest {
            // A message deleted between the list and the read is simply not shown.
            if let Some(json) = db.get(key)? {
                if let Ok(message) = serde_json::from_slice::<ChatMessage>(&json) {
                    messages.push(message);
                }
            }
        }
        reply::write_json(http, &messages)
    })
}

#[cfg(test)]
mod tests {
    use super::{message_key, room_prefix, ChatMessage};

    #[test]
    fn message_keys_sort_by_time_and_rooms_never_overlap() {
        let early = message_key("a", 9, b"x");
        let late = message_key("a", 10, b"x");
        assert!(early < late, "{early} {late}");
        assert_ne!(message_key("a", 9, b"x"), message_key("a", 9, b"y"));
        assert!(message_key("a", 1, b"x").starts_with(&room_prefix("a")));
        assert!(!message_key("a/b", 1, b"x").starts_with(&room_prefix("a")));
    }

    #[test]
    fn chat_messages_keep_the_field_order() {
        let mut message: ChatMessage =
            serde_json::from_str(r#"{"text":"hi","user":"alice","timestamp":5}"#).unwrap();
        message.timestamp = 42;
        assert_eq!(
            serde_json::to_string(&message).unwrap(),
            r#"{"user":"alice","text":"hi","timestamp":42}"#
        );
    }
}
