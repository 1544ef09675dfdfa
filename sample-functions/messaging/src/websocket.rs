//! The guide's complete examples: a WebSocket URL per room, and publishing to any channel.

use std::fmt::Write as _;

use md5::{Digest, Md5};
use serde_json::json;
use wisp_sdk::{pubsub, Event, Result};

use crate::reply::{self, required_query};

/// `GET ?room=<room>`: subscribes to `chat-<md5 hex of room>` and answers
/// `{"channel":..,"room":..,"websocket_url":..}`. Hashing the room keeps any room name a valid,
/// fixed-length channel name.
#[wisp_sdk::function(name = "getWebSocketURL")]
fn get_web_socket_url(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let room = required_query(http, "room")?;
        let channel_name = format!("chat-{}", md5_hex(room.as_bytes()));

        let channel = pubsub::channel(&channel_name)?;
        channel.subscribe()?;
        let url = channel.web_socket().url()?;

        reply::write_json(
            http,
            &json!({
                "websocket_url": url,
                "channel": channel_name,
                "room": room,
            }),
        )?;
        http.return_code(200)?;
        Ok(())
    })
}

/// `POST ?channel=<name>`: publishes the request body to the channel and answers
/// `{"channel":..,"status":"published"}`.
#[wisp_sdk::function(name = "publishMessage")]
fn publish_message(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let channel_name = required_query(http, "channel")?;
        let message = reply::body(http)?;

        pubsub::channel(&channel_name)?.publish(&message)?;

        reply::write_json(
            http,
            &json!({
                "status": "published",
                "channel": channel_name,
            }),
        )?;
        http.return_code(200)?;
        Ok(())
    })
}

/// The MD5 digest of `data` in lower-case hex, Go's `hex.EncodeToString(md5.Sum(data))`.
fn md5_hex(data: &[u8]) -> String {
    Md5::digest(data)
        .iter()
        .fold(String::with_capacity(32), |mut hex, byte| {
            // Writing to a String cannot fail.
            let _ = write!(hex, "{byte:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::md5_hex;

    #[test]
    fn md5_hex_matches_go() {
        assert_eq!(md5_hex(b"test"), "098f6bcd4621d373cade4e832627b4f6");
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }
}
