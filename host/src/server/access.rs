//! The access log: one line per HTTP request, and one when a WebSocket closes, under
//! the target `wisp::access` at info (`WISP_LOG=wisp::access=off`, or `serve
//! --no-request-log`, leaves them out). A WebSocket's opening is its request's line,
//! status 101. What a client sent (the path) is escaped; a token in the query is never
//! logged, as the query is not.
//!
//! A request's `ms` runs from its head being read to its response head being ready: a
//! streamed body's writing is not in it.

use hyper::{Method, StatusCode};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The target of the access log's lines.
pub const TARGET: &str = "wisp::access";

/// One request, from its head.
pub struct Request {
    started: Instant,
    method: Method,
    path: String,
}

impl Request {
    pub fn begin(method: &Method, path: &str) -> Self {
        Self {
            started: Instant::now(),
            method: method.clone(),
            path: path.to_owned(),
        }
    }

    /// Logs the request as answered with `status`, by `function` if one ran.
    pub fn end(self, peer: SocketAddr, status: StatusCode, function: Option<&str>) {
        let ms = millis(self.started.elapsed());
        let path = self.path.escape_debug();
        let status = status.as_u16();
        match function {
            Some(function) => tracing::info!(target: TARGET, %peer, method = %self.method,
                %path, status, function, ms, "request"),
            None => tracing::info!(target: TARGET, %peer, method = %self.method, %path,
                status, ms, "request"),
        }
    }
}

/// Logs a WebSocket's close: `what` it was joined to (a channel, or the broker
/// protocol), why it ended, and how long it was open.
pub fn socket_closed(peer: SocketAddr, socket: u64, what: &str, reason: &str, opened: Instant) {
    let seconds = opened.elapsed().as_secs_f64();
    tracing::info!(target: TARGET, %peer, socket, on = %what.escape_debug(), reason, seconds,
        "WebSocket closed");
}

/// A WebSocket counted among the open ones (`wisp_websocket_connections`) while it lives.
pub struct CountedSocket(Option<&'static str>);

impl CountedSocket {
    /// `kind`: `channel` or `broker`.
    pub fn open(kind: &'static str) -> Self {
        match crate::metrics::get() {
            Some(metrics) => {
                metrics.socket_opened(kind);
                Self(Some(kind))
            }
            None => Self(None),
        }
    }
}

impl Drop for CountedSocket {
    fn drop(&mut self) {
        if let (Some(kind), Some(metrics)) = (self.0, crate::metrics::get()) {
            metrics.socket_closed(kind);
        }
    }
}

/// Milliseconds, to the microsecond.
fn millis(took: Duration) -> f64 {
    (took.as_micros() as f64) / 1000.0
}
