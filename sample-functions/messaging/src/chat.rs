//! The guide's chat system: join a room (get its WebSocket URL), send a message to it, and
//! read the room's recent messages, which the room's channel keeps (`wisp.history` in
//! `config/messaging/chat_rooms.yaml`).

use serde::{Deserialize, Serialize};
use serde_json::json;
use wisp_sdk::pubsub::{self, Since};
use wisp_sdk::{Event, Result};

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

/// How many messages `GET /api/chat/history` answers: the room's newest.
const HISTORY: usize = 50;

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
        // The channel keeps it too (`wisp.history`), for the history below.
        pubsub::channel(&room_channel(&room))?.publish(&json)?;
        http.write(b"Message sent")?;
        Ok(())
    })
}

/// `GET ?room=<room>`: the room's newest messages (at most 50), oldest first, as a JSON
/// array of `{"user":..,"text":..,"timestamp":..}`.
#[wisp_sdk::function(name = "getChatHistory")]
fn get_chat_history(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let room = required_query(http, "room")?;
        let kept = pubsub::channel(&room_channel(&room))?.history(Since::Last(HISTORY))?;
        let messages: Vec<ChatMessage> = kept
            .messages
            .iter()
            .filter_map(|m| serde_json::from_slice(&m.data).ok())
            .collect();
        reply::write_json(http, &messages)
    })
}

#[cfg(test)]
mod tests {
    use super::ChatMessage;

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
