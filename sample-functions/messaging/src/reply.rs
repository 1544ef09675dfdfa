//! Running an HTTP handler and answering its failure: the guide's `handleError(h, err, code)`.

use std::fmt::Display;
use std::io::Read;

use serde::Serialize;
use wisp_sdk::{Event, EventType, HttpEvent};

/// Why a request failed: the status and the message the client gets.
#[derive(Debug)]
pub struct Failure {
    status: u16,
    message: String,
}

impl Failure {
    pub fn new(status: u16, message: impl Display) -> Self {
        Failure {
            status,
            message: message.to_string(),
        }
    }
}

/// A channel or response call that failed is the server's problem: 500, as in the guide.
impl From<wisp_sdk::Error> for Failure {
    fn from(err: wisp_sdk::Error) -> Self {
        Failure::new(500, err)
    }
}

/// Gives an error the status it answers with: `body(http).or_status(400)?`.
pub trait OrStatus<T> {
    fn or_status(self, status: u16) -> Result<T, Failure>;
}

impl<T, E: Display> OrStatus<T> for Result<T, E> {
    fn or_status(self, status: u16) -> Result<T, Failure> {
        self.map_err(|err| Failure::new(status, err))
    }
}

/// Runs `handler` for an HTTP event; a [`Failure`] is answered with its status and message.
///
/// The guide's `handleError` writes the message, then sets the status; on Taubyte the first
/// write sends a 200 and the status is lost. Here the status is set first, so it holds anywhere.
///
/// A pub/sub event is ignored: `getWebSocketURL` and `createChatRoom` subscribe themselves to the
/// channel they hand out, as in the guide, so they are also called for every message on it.
pub fn handle(
    event: Event,
    handler: impl FnOnce(&HttpEvent) -> Result<(), Failure>,
) -> wisp_sdk::Result<()> {
    if event.event_type() == EventType::PubSub {
        return Ok(());
    }
    let http = event.http()?;
    if let Err(failure) = handler(&http) {
        http.return_code(failure.status)?;
        http.write(failure.message.as_bytes())?;
    }
    Ok(())
}

/// Query parameter `name`; a missing or empty one is a 400.
pub fn required_query(http: &HttpEvent, name: &str) -> Result<String, Failure> {
    match http.query().get(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(Failure::new(
            400,
            format!("missing query parameter `{name}`"),
        )),
    }
}

/// The whole request body; a body that cannot be read is a 400.
pub fn body(http: &HttpEvent) -> Result<Vec<u8>, Failure> {
    let mut data = Vec::new();
    http.body().read_to_end(&mut data).or_status(400)?;
    Ok(data)
}

/// Answers `value` as JSON with `Content-Type: application/json`.
pub fn write_json(http: &HttpEvent, value: &impl Serialize) -> Result<(), Failure> {
    let json = serde_json::to_vec(value).or_status(500)?;
    http.headers().set("Content-Type", "application/json")?;
    http.write(&json)?;
    Ok(())
}
