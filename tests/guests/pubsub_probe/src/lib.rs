//! Probes for the pub/sub host calls. What the pub/sub-triggered exports observe is published as
//! UTF-8 text to channel `probe-out`, where a test's WebSocket client listens; the HTTP exports
//! answer in plain text.
//!
//! | export | trigger | does |
//! |---|---|---|
//! | `relay` | pub/sub | publishes `seen:<channel>:<data>` to `probe-out` |
//! | `publish` | HTTP, `?channel=` | publishes the request body; `published`, or 500 and the error |
//! | `subscribe` | HTTP, `?channel=` | subscribes itself; `subscribed`, or 500 and the error |
//! | `wsurl` | HTTP, `?channel=` | answers the channel's WebSocket URL, or 500 and the error |
//! | `wsurl_for` | HTTP, `?channel=&user=&ttl=&publish=` | answers `url_for(user, ttl seconds, publish == "yes")`, or 500 and the error |
//! | `ephemeral` | HTTP, `?channel=` | publishes the request body, never kept; `published`, or 500 and the error |
//! | `presence` | HTTP, `?channel=` | answers the channel's members as `user:connections` lines, or 500 and the error |
//! | `dual` | HTTP, `?channel=` | subscribes itself (twice: it must be idempotent); `subscribed` |
//! | `dual` | pub/sub | publishes `dual:<channel>:<data>` to `probe-out` |
//! | `echo_back` | pub/sub | publishes the data back to its channel, and `self:<data>` to `probe-out` |
//!
//! `<data>` is the message as UTF-8 (invalid bytes replaced). An error's text is wisp-sdk's
//! `Display`, which ends with `(errno N)` when a host call failed. `echo_back` proves that a
//! function's own publishes are not delivered back to it: one `self:` line per message, not a loop.

use std::io::Read;

use wisp_sdk::{pubsub, Event, HttpEvent, PubSubEvent, Result};

/// Where the pub/sub exports report what they saw.
const PROBE_OUT: &str = "probe-out";

/// Publishes `line` to [`PROBE_OUT`].
fn report(line: &str) -> Result<()> {
    pubsub::channel(PROBE_OUT)?.publish(line.as_bytes())
}

/// `<channel>:<data>` of a message, the data as UTF-8 (invalid bytes replaced).
fn describe(message: &PubSubEvent) -> Result<String> {
    let channel = message.channel()?;
    let data = message.data()?;
    Ok(format!(
        "{}:{}",
        channel.name(),
        String::from_utf8_lossy(&data)
    ))
}

/// Answers `Ok(text)` with 200 and `text`, `Err(err)` with 500 and the error's text.
fn answer(http: &HttpEvent, outcome: Result<String>) -> Result<()> {
    let (code, text) = match outcome {
        Ok(text) => (200, text),
        Err(err) => (500, err.to_string()),
    };
    http.return_code(code)?;
    http.write(text.as_bytes())?;
    Ok(())
}

/// The channel named by query parameter `channel`.
fn query_channel(http: &HttpEvent) -> Result<pubsub::Channel> {
    pubsub::channel(&http.query().get("channel")?)
}

#[wisp_sdk::function]
fn relay(event: Event) -> Result<()> {
    let message = event.pubsub()?;
    report(&format!("seen:{}", describe(&message)?))
}

/// Publishes the request body on `?channel=`, kept or (`ephemeral`) not.
fn publish_body(event: Event, ephemeral: bool) -> Result<()> {
    let http = event.http()?;
    let outcome = query_channel(&http).and_then(|channel| {
        let mut body = Vec::new();
        http.body()
            .read_to_end(&mut body)
            .map_err(|err| wisp_sdk::Error::new(format!("reading the request body: {err}")))?;
        match ephemeral {
            true => channel.publish_ephemeral(&body)?,
            false => channel.publish(&body)?,
        }
        Ok("published".to_owned())
    });
    answer(&http, outcome)
}

#[wisp_sdk::function]
fn publish(event: Event) -> Result<()> {
    publish_body(event, false)
}

#[wisp_sdk::function]
fn ephemeral(event: Event) -> Result<()> {
    publish_body(event, true)
}

#[wisp_sdk::function]
fn presence(event: Event) -> Result<()> {
    let http = event.http()?;
    let outcome = query_channel(&http).and_then(|channel| {
        let lines: Vec<String> = channel
            .presence()?
            .iter()
            .map(|m| format!("{}:{}", m.user, m.connections))
            .collect();
        Ok(lines.join("\n"))
    });
    answer(&http, outcome)
}

#[wisp_sdk::function]
fn subscribe(event: Event) -> Result<()> {
    let http = event.http()?;
    let outcome = query_channel(&http)
        .and_then(|channel| channel.subscribe())
        .map(|()| "subscribed".to_owned());
    answer(&http, outcome)
}

#[wisp_sdk::function]
fn wsurl(event: Event) -> Result<()> {
    let http = event.http()?;
    let outcome = query_channel(&http).and_then(|channel| channel.web_socket().url());
    answer(&http, outcome)
}

#[wisp_sdk::function]
fn wsurl_for(event: Event) -> Result<()> {
    let http = event.http()?;
    let query = http.query();
    let outcome = query_channel(&http).and_then(|channel| {
        let user = query.get("user")?;
        let ttl = query.get("ttl")?.parse().unwrap_or(0);
        let can_publish = query.get("publish")? == "yes";
        let ttl = std::time::Duration::from_secs(ttl);
        channel.web_socket().url_for(&user, ttl, can_publish)
    });
    answer(&http, outcome)
}

#[wisp_sdk::function]
fn dual(event: Event) -> Result<()> {
    if let Ok(message) = event.pubsub() {
        return report(&format!("dual:{}", describe(&message)?));
    }
    let http = event.http()?;
    let outcome = query_channel(&http).and_then(|channel| {
        // Twice on purpose: a second subscribe must not make the function run twice per message.
        channel.subscribe()?;
        channel.subscribe()?;
        Ok("subscribed".to_owned())
    });
    answer(&http, outcome)
}

#[wisp_sdk::function]
fn echo_back(event: Event) -> Result<()> {
    let message = event.pubsub()?;
    let data = message.data()?;
    message.channel()?.publish(&data)?;
    report(&format!("self:{}", String::from_utf8_lossy(&data)))
}
