//! The guide's notification system: a channel per user.

use serde::{Deserialize, Serialize};
use wisp_sdk::{pubsub, Event, Result};

use crate::reply::{self, required_query, OrStatus};
use crate::unix_time;

/// A notification, as posted (`title`, `message`, `type`) and published (with `timestamp`).
#[derive(Debug, Deserialize, Serialize)]
struct Notification {
    #[serde(default)]
    title: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    timestamp: i64,
}

/// `POST ?user=<user>` with `{"title":..,"message":..,"type":..}`: stamps it with the time and
/// publishes `{"title":..,"message":..,"type":..,"timestamp":..}` to `notifications-<user>`.
/// Answers `Notification sent`, or 400 with the parse error.
#[wisp_sdk::function(name = "sendNotification")]
fn send_notification(event: Event) -> Result<()> {
    reply::handle(event, |http| {
        let user = required_query(http, "user")?;
        let mut notification: Notification =
            serde_json::from_slice(&reply::body(http)?).or_status(400)?;
        notification.timestamp = unix_time();

        let json = serde_json::to_vec(&notification).or_status(500)?;
        pubsub::channel(&format!("notifications-{user}"))?.publish(&json)?;

        http.write(b"Notification sent")?;
        Ok(())
    })
}
