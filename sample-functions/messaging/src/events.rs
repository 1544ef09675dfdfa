//! The guide's pub/sub event handler: one printed line per message, chosen by its JSON `type`.

use serde_json::{Map, Value};
use wisp_sdk::{Event, Result};

/// Called for each message on the channel its trigger names. Prints (to stdout, which the host
/// logs) what [`describe`] says about the message.
#[wisp_sdk::function(name = "handlePubSubEvent")]
fn handle_pub_sub_event(event: Event) -> Result<()> {
    let message = event.pubsub()?;
    let data = message.data()?;
    println!("{}", describe(&data));
    Ok(())
}

/// The line printed for a message:
///
/// - not a JSON object: `Received raw message: <data>`
/// - no `type`: `Received message without type: <json>`
/// - `chat`: `Chat from <user>: <text>`
/// - `notification`: `Notification: <title>: <message>`
/// - `system`: `System message: <message>`
/// - anything else: `Unknown message type: <type>`
fn describe(data: &[u8]) -> String {
    let Ok(message) = serde_json::from_slice::<Map<String, Value>>(data) else {
        return format!("Received raw message: {}", String::from_utf8_lossy(data));
    };
    match message.get("type") {
        None => format!("Received message without type: {}", Value::Object(message)),
        Some(Value::String(kind)) => match kind.as_str() {
            "chat" => chat(&message),
            "notification" => notification(&message),
            "system" => system(&message),
            other => format!("Unknown message type: {other}"),
        },
        Some(other) => format!("Unknown message type: {other}"),
    }
}

/// A chat message; where it could also be forwarded to other channels or stored.
fn chat(message: &Map<String, Value>) -> String {
    match (text(message, "user"), text(message, "text")) {
        (Some(user), Some(text)) => format!("Chat from {user}: {text}"),
        // Go's type assertions would panic here; say what is wrong instead.
        _ => format!("Chat message without user or text: {}", json(message)),
    }
}

fn notification(message: &Map<String, Value>) -> String {
    match (text(message, "title"), text(message, "message")) {
        (Some(title), Some(body)) => format!("Notification: {title}: {body}"),
        _ => format!("Notification without title or message: {}", json(message)),
    }
}

fn system(message: &Map<String, Value>) -> String {
    match text(message, "message") {
        Some(body) => format!("System message: {body}"),
        None => format!("System message: {}", json(message)),
    }
}

/// The string field `key`, if the message has one.
fn text<'a>(message: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    message.get(key).and_then(Value::as_str)
}

fn json(message: &Map<String, Value>) -> String {
    Value::Object(message.clone()).to_string()
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn describes_each_kind_of_message() {
        let cases: [(&[u8], &str); 10] = [
            (
                br#"{"type":"chat","user":"alice","text":"hi"}"#,
                "Chat from alice: hi",
            ),
            (
                br#"{"type":"chat","user":"alice"}"#,
                r#"Chat message without user or text: {"type":"chat","user":"alice"}"#,
            ),
            (
                br#"{"type":"notification","title":"Build","message":"done"}"#,
                "Notification: Build: done",
            ),
            (
                br#"{"type":"system","message":"restarting"}"#,
                "System message: restarting",
            ),
            (
                br#"{"type":"system"}"#,
                r#"System message: {"type":"system"}"#,
            ),
            (
                br#"{"type": "test", "message": "Hello, World!"}"#,
                "Unknown message type: test",
            ),
            (br#"{"type":7}"#, "Unknown message type: 7"),
            (br#"{"a":1}"#, r#"Received message without type: {"a":1}"#),
            (b"test message", "Received raw message: test message"),
            (b"[1,2]", "Received raw message: [1,2]"),
        ];
        for (data, line) in cases {
            assert_eq!(describe(data), line);
        }
    }
}
