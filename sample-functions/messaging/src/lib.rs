//! The examples of Taubyte's messaging guide, ported from Go to Rust with `wisp-sdk`. Each export
//! keeps the name the guide gives it, so the guide's YAML and curl commands work unchanged.
//!
//! | export | trigger | does |
//! |---|---|---|
//! | `getWebSocketURL` | HTTP, `?room=` | subscribes to `chat-<md5 of room>`, answers its WebSocket URL as JSON |
//! | `publishMessage` | HTTP, `?channel=` | publishes the request body to the channel |
//! | `handlePubSubEvent` | pub/sub | prints a line per message, by its JSON `type` |
//! | `createChatRoom` | HTTP, `?room=` | subscribes to `chat-room-<room>`, answers its WebSocket URL as JSON |
//! | `sendChatMessage` | HTTP, `?room=` | publishes `{user, text, timestamp}` to `chat-room-<room>` and stores it in database `chat` |
//! | `getChatHistory` | HTTP, `?room=` | the room's newest 50 stored messages, oldest first, as JSON |
//! | `chatSignIn` | HTTP, `{name, room}` | the chat page's sign-in: the URL of private room `private/<room>`, its token naming the user |
//! | `sendNotification` | HTTP, `?user=` | publishes `{title, message, type, timestamp}` to `notifications-<user>` |
//! | `broadcastUpdate` | HTTP | publishes the request body to `live-updates` |
//!
//! A bad query or body answers 400 and a failed channel call 500, with the error as the body
//! (the guide's `handleError`).
//!
//! # Layout
//!
//! - `reply`: running an HTTP handler and answering its failure; query, body and JSON helpers.
//! - `websocket`: `getWebSocketURL`, `publishMessage` (the guide's complete examples).
//! - `events`: `handlePubSubEvent`.
//! - `chat`: `createChatRoom`, `sendChatMessage`, `getChatHistory`.
//! - `signin`: `chatSignIn` (Wisp only: it calls `url_for`, which Taubyte's host lacks).
//! - `notify`: `sendNotification`; `updates`: `broadcastUpdate`.

mod chat;
mod events;
mod notify;
mod reply;
mod signin;
mod updates;
mod websocket;

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, Go's `time.Now().Unix()` (0 for a clock set before 1970).
fn unix_time() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}
